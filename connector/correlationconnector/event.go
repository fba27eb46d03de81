package correlationconnector

import (
	"encoding/hex"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

// problemEvent is the compact summary of one event that can open or join an incident: what the
// chain, the links and the output record need, and nothing of the pdata batch it came from. Its
// strings are interned (or, for the narrative, copied) before it is kept.
type problemEvent struct {
	time    int64 // unix nanoseconds
	eventID [16]byte
	trace   pcommon.TraceID
	span    pcommon.SpanID
	parent  pcommon.SpanID

	name  unifiedevent.Name
	layer unifiedevent.Layer
	kind  ptrace.SpanKind

	hasEventID bool
	isSpan     bool
	linksTold  bool // its link was counted in self-telemetry
	joinReason linkReason
	peerVia    peerSource

	httpStatus int32
	duration   int64 // span duration, nanoseconds

	entity       string
	service      string
	podNamespace string
	podName      string
	route        string
	spanName     string
	errorType    string
	peerAddr     string
	peerPort     int64
	peerTarget   string // the entity serving peerAddr:peerPort, when the directory knows it
	endUser      string
	user         string
	session      string
	narrative    string

	// Threshold breaches only.
	rule          int32 // index into the threshold rules, -1 otherwise
	metricValue   float64
	exemplarTrace []pcommon.TraceID
}

func (e *problemEvent) eventIDString() string {
	if !e.hasEventID {
		return ""
	}
	return hex.EncodeToString(e.eventID[:])
}

// parseEventID reads a 32-hex-digit event id without allocating.
func parseEventID(s string, into *[16]byte) bool {
	if !unifiedevent.ValidEventID(s) {
		return false
	}
	for i := 0; i < 16; i++ {
		into[i] = unhex(s[2*i])<<4 | unhex(s[2*i+1])
	}
	return true
}

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'a' + 10
}

// peerSource says how the peer directory learnt which entity serves an address.
type peerSource uint8

const (
	peerUnknown peerSource = iota
	peerFromListen
	peerFromPodIP
	peerFromSpan
	peerFromServiceName
)

var peerSourceWords = [...]string{
	peerUnknown:         "an earlier event",
	peerFromListen:      "a listen event",
	peerFromPodIP:       "the pod IP",
	peerFromSpan:        "a SERVER span",
	peerFromServiceName: "the service name",
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
}

func (r linkReason) String() string { return linkReasonNames[r] }

// confidence returns the configured confidence of a link reason.
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
	}
	return 1
}

// isKubernetesPair reports whether a link between layers a and b is the kubernetes link of the
// design: a Kubernetes event about the pod of a kernel or container event.
func isKubernetesPair(a, b unifiedevent.Layer) bool {
	low := func(l unifiedevent.Layer) bool { return l == unifiedevent.LayerKernel || l == unifiedevent.LayerContainer }
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
