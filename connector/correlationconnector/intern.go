package correlationconnector

import (
	"strings"
	"sync"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

// internCap bounds the intern tables; past it a table starts afresh, and strings still held by
// events stay alive through those events alone.
const internCap = 1 << 16

// interner copies the strings of pending events out of their pdata batch before the events are
// kept: low-cardinality strings are shared through its tables, narratives are cloned. Concurrent
// Consume calls overlap this with each other's joins, because it needs only this lock.
type interner struct {
	mu    sync.Mutex // guards the tables
	strs  map[string]string
	pods  map[podRef]string
	peers *peerDirectory
	// recent remembers the last few strings interned: the events of a batch repeat their
	// entity, service and peer, and a comparison (a pointer check when the strings are the same
	// pdata value) costs less than hashing into strs.
	recent     [4]string
	recentNext int
}

func newInterner(peers *peerDirectory) *interner {
	return &interner{strs: map[string]string{}, pods: map[podRef]string{}, peers: peers}
}

// prepareAll makes what every pending event's keys are made of independent of its batch, and
// resolves its peer. The rest of an event — the narrative and the details only its record shows —
// is copied by keep, for the events an incident keeps: in an error storm an incident is full
// after max_events_per_incident events, and the rest are counted, not kept.
func (in *interner) prepareAll(events []pendingEvent) {
	in.mu.Lock()
	defer in.mu.Unlock()
	var peer resolvedPeer
	for i := range events {
		in.prepare(&events[i], &peer)
	}
}

// resolvedPeer remembers the last peer a prepareAll call resolved: a storm's failed calls name
// one address, and an unknown one costs the directory's lock and up to five map lookups. The
// directory may learn the address meanwhile; the call's events then resolve it as they would
// have a moment earlier.
type resolvedPeer struct {
	key    peerKey
	target string
	via    peerSource
	ok     bool
	set    bool
}

// prepare runs under in.mu. The event's details still point into p (and their strings, but for
// those of keys, into the batch) until keep copies them.
func (in *interner) prepare(p *pendingEvent, peer *resolvedPeer) {
	e := &p.problemEvent
	e.entity = in.str(e.entity)
	e.service = in.str(e.service)
	e.pod = in.pod(p.podNamespace, p.podName)
	e.peerAddr = in.str(e.peerAddr)
	if p.details != (eventDetails{}) {
		d := &p.details
		in.internAll(d.keyStrings())
		e.details = d
	}
	if e.peerAddr != "" {
		key := peerKey{e.peerAddr, int64(e.peerPort), e.facts().peerScope}
		if !peer.set || peer.key != key {
			target, via, ok := in.peers.resolve(key)
			*peer = resolvedPeer{key: key, via: via, ok: ok, set: true}
			if ok {
				peer.target = in.str(target)
			}
		}
		if peer.ok {
			e.peerTarget, e.peerVia = peer.target, peer.via
		}
	}
	if e.class&classCrash != 0 && in.peers.serves(e.entity) {
		e.class |= classServing
	}
}

// keep makes a prepared event independent of its batch before an incident keeps it: the
// narrative is cloned, the details copied with their strings interned.
func (in *interner) keep(e *problemEvent) {
	e.narrative = strings.Clone(unifiedevent.Truncate(e.narrative, unifiedevent.DefaultMaxNarrativeBytes))
	if e.details == nil {
		return
	}
	d := *e.details
	in.mu.Lock()
	in.internAll(d.shownStrings())
	in.mu.Unlock()
	e.details = &d
}

// internAll interns each of the strings in place. It runs under in.mu.
func (in *interner) internAll(fields []*string) {
	for _, f := range fields {
		*f = in.str(*f)
	}
}

// pod returns the interned "namespace/name" of a pod without building the string when it is
// already known.
func (in *interner) pod(namespace, name string) string {
	if name == "" {
		return ""
	}
	key := podRef{namespace, name}
	if v, ok := in.pods[key]; ok {
		return v
	}
	if len(in.pods) >= internCap {
		in.pods = make(map[podRef]string, internCap/4)
	}
	v := namespace + "/" + name
	in.pods[podRef{strings.Clone(namespace), strings.Clone(name)}] = v
	return v
}

func (in *interner) str(s string) string {
	if s == "" {
		return ""
	}
	for i := range in.recent {
		if in.recent[i] == s {
			return in.recent[i]
		}
	}
	v, ok := in.strs[s]
	if !ok {
		if len(in.strs) >= internCap {
			in.strs = make(map[string]string, internCap/4)
		}
		v = strings.Clone(s)
		in.strs[v] = v
	}
	// Remembered as interned (v), not as read: s may point into a pdata batch.
	in.recent[in.recentNext] = v
	in.recentNext = (in.recentNext + 1) % len(in.recent)
	return v
}

// restore interns the strings of an event decoded from the write-ahead log, so that restored
// events share them with the events that come after.
func (in *interner) restore(e *problemEvent) {
	in.mu.Lock()
	defer in.mu.Unlock()
	e.entity = in.str(e.entity)
	e.service = in.str(e.service)
	e.pod = in.str(e.pod)
	e.peerAddr = in.str(e.peerAddr)
	e.peerTarget = in.str(e.peerTarget)
	if d := e.details; d != nil {
		in.internAll(d.keyStrings())
		in.internAll(d.shownStrings())
	}
}
