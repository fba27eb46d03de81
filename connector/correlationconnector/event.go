package correlationconnector

import (
	"encoding/hex"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

// problemEvent is the compact summary of one event that can open or join an incident: what the
// chain, the links and the output record need, and nothing of the pdata batch it came from. Its
// strings are interned (or, for the narrative, copied) before it is kept. Facts that only some
// events carry live behind pointers, so that an event without them pays 8 bytes, not 100.
type problemEvent struct {
	time    int64 // unix nanoseconds
	eventID [16]byte
	trace   pcommon.TraceID
	span    pcommon.SpanID
	parent  pcommon.SpanID

	name       unifiedevent.Name
	entity     string
	service    string
	pod        string // namespace/name, when the resource names a pod
	peerAddr   string
	peerTarget string // the entity serving peerAddr:peerPort, when the directory knows it
	narrative  string

	details *eventDetails // spans, and logs with a route, error type or user
	breach  *breachFacts  // threshold breaches only

	peerPort int32
	// repeats is how many more events this one stands for: a log record that merged repeats of
	// one event (log_count − 1). Wherever events are counted, it counts as events().
	repeats    uint32
	layer      unifiedevent.Layer
	hasEventID bool
	isSpan     bool
	joinReason linkReason
	peerVia    peerSource
	class      eventClass
}

// eventDetails are the facts of spans (and of some logs) that the chain shows and an impact
// exporter needs: route, span kind and outcome, and the users affected.
type eventDetails struct {
	kind       ptrace.SpanKind
	httpStatus int32
	duration   int64 // span duration, nanoseconds
	route      string
	spanName   string
	errorType  string
	endUser    string
	user       string
	session    string
	// peerScope is the host and network namespace a loopback or wildcard peer address means
	// (localScope); empty for any other address.
	peerScope string
	// dbSystem is the database system a CLIENT span called (db.system.name, db.system).
	dbSystem string
	// host is the host of an I/O error or a crash, for the host link (linkHost).
	host string
	// sender is the workload that sent the signal a kernel event reports, when another did.
	sender string
}

// keyStrings are the details' strings that make link keys: interned before the join.
func (d *eventDetails) keyStrings() []*string {
	return []*string{&d.peerScope, &d.host, &d.sender}
}

// shownStrings are the details' strings only the record shows: interned when an incident keeps
// the event (interner.keep).
func (d *eventDetails) shownStrings() []*string {
	return []*string{&d.route, &d.spanName, &d.errorType, &d.endUser, &d.user, &d.session, &d.dbSystem}
}

// breachFacts describe a metric threshold breach.
type breachFacts struct {
	rule      int // index into the threshold rules
	value     float64
	exemplars []pcommon.TraceID
}

// pendingEvent is a problem event as read from pdata, before it is interned and kept: its strings
// still point into the batch.
type pendingEvent struct {
	problemEvent
	details      eventDetails
	podNamespace string
	podName      string
}

var noDetails = &eventDetails{}

// events is how many events e stands for: 1, or a merged record's log_count.
func (e *problemEvent) events() int {
	return 1 + int(e.repeats)
}

// facts returns the event's details, or an empty set.
func (e *problemEvent) facts() *eventDetails {
	if e.details == nil {
		return noDetails
	}
	return e.details
}

func (e *problemEvent) eventIDString() string {
	if !e.hasEventID {
		return ""
	}
	return hex.EncodeToString(e.eventID[:])
}

// parseEventID reads a 32-hex-digit event id (the shape unifiedevent.ValidEventID accepts: lower
// case) in one pass, without allocating.
func parseEventID(s string, into *[16]byte) bool {
	if len(s) != 32 {
		return false
	}
	var bad byte
	for i := 0; i < 16; i++ {
		hi, lo := hexValue[s[2*i]], hexValue[s[2*i+1]]
		bad |= hi | lo
		into[i] = hi<<4 | lo&0x0f
	}
	return bad&0xf0 == 0
}

// hexValue maps a lower-case hex digit to its value and every other byte to 0xff.
var hexValue = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c-'a') + 10
	}
	return t
}()

// peerSource says how the peer directory learnt which entity serves an address.
type peerSource uint8

const (
	peerUnknown peerSource = iota
	peerFromListen
	peerFromPodIP
	peerFromSpan
	peerFromServiceName
	peerFromAccepted
)

var peerSourceWords = [...]string{
	peerUnknown:         "an earlier event",
	peerFromListen:      "a listen event",
	peerFromPodIP:       "the pod IP",
	peerFromSpan:        "a SERVER span",
	peerFromServiceName: "the service name",
	peerFromAccepted:    "a connection its listener accepted",
}

// linkReason is the kind of evidence that links two events, in order of preference when two
// links are equally confident.
type linkReason uint8

const (
	linkNone linkReason = iota
	linkTraceParent
	linkTrace
	linkExemplar
	linkKubernetes
	linkEntity
	linkPeer
	linkService
	// linkHost: a process crashed on the host just after an I/O error there — the disk it wrote
	// to failed under it. Block I/O is issued by kernel threads, so no entity or peer links the
	// error to the process; the link holds within clock_skew only.
	linkHost
	linkReasonCount
)

var linkReasonNames = [linkReasonCount]string{
	linkNone:        "root",
	linkTraceParent: "trace.parent",
	linkTrace:       "trace",
	linkExemplar:    "exemplar",
	linkKubernetes:  "kubernetes",
	linkEntity:      "entity",
	linkPeer:        "peer",
	linkService:     "service",
	linkHost:        "host",
}

func (r linkReason) String() string { return linkReasonNames[r] }

// of returns the configured confidence of a link reason.
func (l LinkConfidences) of(r linkReason) float64 {
	switch r {
	case linkTraceParent, linkTrace, linkExemplar:
		return l.Trace
	case linkKubernetes:
		return l.Kubernetes
	case linkEntity:
		return l.Entity
	case linkPeer:
		return l.Peer
	case linkService:
		return l.Service
	case linkHost:
		return l.Host
	}
	return 1
}

// stronger reports whether r is a better reason to join than best, the best found so far
// (linkNone: none yet). Between equals the first found stays.
func (l LinkConfidences) stronger(r, best linkReason) bool {
	return best == linkNone || l.of(r) > l.of(best)
}

// isKubernetesPair reports whether a link between layers a and b is the kubernetes link of the
// design: a Kubernetes event about the pod of a kernel or container event.
func isKubernetesPair(a, b unifiedevent.Layer) bool {
	low := func(l unifiedevent.Layer) bool {
		return l == unifiedevent.LayerKernel || l == unifiedevent.LayerContainer
	}
	return a == unifiedevent.LayerKubernetes && low(b) || b == unifiedevent.LayerKubernetes && low(a)
}

// isClientFailure reports whether an event is a client's failure to reach a peer.
func isClientFailure(name unifiedevent.Name) bool {
	switch name {
	case unifiedevent.ConnectionRefused, unifiedevent.ConnectionTimeout, unifiedevent.ConnectionReset,
		unifiedevent.TCPRetransmit, unifiedevent.DependencyError:
		return true
	}
	return false
}
