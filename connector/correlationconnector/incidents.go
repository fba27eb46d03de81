package correlationconnector

import (
	"slices"
	"strings"
	"sync"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

// evictReason names the cap that forced state out early.
type evictReason uint8

const (
	evictSpans evictReason = iota
	evictProblemEvents
	evictIncidents
	evictIncidentEvents
	evictPeers
	evictMetricSeries
	evictHealthKeys
	evictReasonCount
)

var evictReasonNames = [evictReasonCount]string{
	evictSpans:          "max_events_spans",
	evictProblemEvents:  "max_events_problem_events",
	evictIncidents:      "max_incidents",
	evictIncidentEvents: "max_events_per_incident",
	evictPeers:          "max_peers",
	evictMetricSeries:   "max_metric_series",
	evictHealthKeys:     "max_peers_health",
}

// emitTrigger says why a correlation record was emitted.
type emitTrigger uint8

const (
	emitDecision emitTrigger = iota
	emitClose
	emitEviction
	emitShutdown
	emitTriggerCount
)

var emitTriggerNames = [emitTriggerCount]string{
	emitDecision: "decision",
	emitClose:    "close",
	emitEviction: "eviction",
	emitShutdown: "shutdown",
}

// keyKind is what a link key is made of.
type keyKind uint8

const (
	keyTrace keyKind = iota + 1
	keyEntity
	keyPod
	keyService
	keyDestination
	// keyDestinationOnHost is a loopback destination on a host, whatever the network namespace:
	// a span names 127.0.0.1:8080 without saying in which namespace its process runs, so it
	// finds the kernel's failures to that address in any namespace of the host — but two kernel
	// events in two namespaces never join through it (see keyUse).
	keyDestinationOnHost
	// keyHostDisk is a host whose disk failed: an I/O error binds it, a process crash looks it
	// up, within clock_skew (linkHost).
	keyHostDisk
)

// keyUse says whether an event looks incidents up by a key, binds itself to it, or both.
type keyUse uint8

const (
	useBoth keyUse = iota
	useLookupOnly
	useBindOnly
)

// linkKey is one piece of evidence an event shares with others: a trace, an entity, a pod, a
// service, an address clients failed to reach. Events sharing a key (inside the window, for all
// but traces) belong to one incident.
type linkKey struct {
	kind  keyKind
	trace pcommon.TraceID
	name  string
	port  int64
	scope string // of a destination: see peerKey
}

type binding struct {
	incident *incident
	last     int64 // time of the latest event bound through this key
}

// incident is one open correlation: a connected group of problem events. Its events slice is
// append-only — no element is written after it is appended — so a snapshot of it (the slice
// header) can be read without the book's lock while new events keep joining.
type incident struct {
	id           string
	version      int64
	lastEvidence int64 // clock time the latest event joined
	dirtySince   int64 // clock time of the first evidence not yet emitted
	events       []problemEvent
	eventCount   int
	told         int // events whose links are already counted in self-telemetry
	keys         []linkKey
	mergedIDs    []string
	dirty        bool
	// eligible: the group holds an observed consequence or an event serious on its own
	// (IncidentPolicy); only then is it emitted. Until then its events stay events.
	eligible bool
	// outsideRequests spans the failed calls made outside any request in the group (kept or only
	// counted): such calls make the group an incident once they span recovery_delay.
	outsideRequests timeSpan
	prev, next      *incident // least recently updated first
	closed          bool
	// firstSeq is the write-ahead log entry that holds the incident's oldest evidence: entries
	// below the lowest firstSeq of all open incidents are no longer needed (persistence only).
	firstSeq uint64
}

// snapshot is what a correlation record is built from: taken under the book's lock, read without
// it.
type snapshot struct {
	id         string
	version    int64
	eventCount int
	events     []problemEvent
	told       int
	mergedIDs  []string
	trigger    emitTrigger
}

// incidentBook is the incident state machine: problem events join the incident their keys lead
// to (opening or merging incidents as needed), caps evict the least recently updated, and the
// flush decides which incidents are emitted or closed. It hands out snapshots and never builds or
// emits a record itself.
//
// Snapshots must reach the record builder in the order they were taken, so every method that
// returns snapshots takes a handoff lock — the next stage's — before it releases its own.
type incidentBook struct {
	cfg           *Config
	window        int64
	skew          int64
	recoveryDelay int64
	health        *healthLedger
	// intern copies what an incident keeps of an event (keep); its lock nests inside mu.
	intern *interner

	mu       sync.Mutex // guards everything below
	bindings bindingTable
	// memo spares a joinAll call repeated lookups of the keys its events share.
	memo bindingMemo
	// alike spares a joinAll call the whole join of events alike an earlier one of the call.
	alike   alikeJoins
	oldest  *incident
	newest  *incident
	open    int
	held    int        // problem events held by open incidents
	pending []snapshot // of incidents evicted while joining, handed out after the join
	// rec collects what the call in progress changed, for the write-ahead log; nil when the
	// connector does not persist its state.
	rec *walOps
	// replaying indexes incidents by id while the write-ahead log is replayed at start; nil
	// otherwise.
	replaying map[string]*incident
	// keepOpenAtShutdown: with persistence, the final flush emits what is due but keeps incidents
	// open, so that after a restart they go on taking evidence under the same id.
	keepOpenAtShutdown bool
}

func newIncidentBook(cfg *Config, health *healthLedger, intern *interner) *incidentBook {
	return &incidentBook{
		cfg:           cfg,
		window:        int64(cfg.Window),
		skew:          int64(cfg.ClockSkew),
		recoveryDelay: int64(cfg.Incidents.RecoveryDelay),
		health:        health,
		intern:        intern,
		bindings:      newBindingTable(),
	}
}

// joinAll takes prepared problem events into their incidents. It returns the snapshots of
// incidents that caps evicted meanwhile; when there are any, handoff is locked before the book is
// unlocked. With a write-ahead log w, what the call changed is recorded in ops and w's lock is
// taken before the book is unlocked (and released by w.writeLocked), so that entries are written
// in the order the book took their events; the returned seq is the entry's.
func (b *incidentBook) joinAll(events []pendingEvent, now int64, t *tally, handoff sync.Locker, ops *walOps, w *walLog) []snapshot {
	b.mu.Lock()
	defer b.mu.Unlock()
	if w != nil {
		b.rec = ops
	}
	b.memo.begin()
	b.alike.reset()
	// One working space for the call's joins, on this goroutine's stack: zeroed once, not per
	// event, and written without the heap's write barriers.
	var scratch joinScratch
	for i := range events {
		e := &events[i].problemEvent
		if b.joinAlike(e, int32(i), now, t) {
			continue
		}
		b.writeAlikeBindings()
		inc := b.join(e, int32(i), now, t, &scratch)
		b.learnAlike(e, inc, &scratch)
	}
	b.writeAlikeBindings()
	b.alike.reset()
	b.memo.end()
	b.rec = nil
	snaps := b.pending
	b.pending = nil
	if w != nil {
		w.mu.Lock()
		ops.assignFirstSeq(w.nextLocked())
	}
	if len(snaps) > 0 {
		handoff.Lock()
	}
	return snaps
}

// due emits incidents that have been quiet for decision_wait (or have kept changing for
// max_decision_delay) and closes those quiet for incident_timeout; final (Shutdown) emits
// everything not yet emitted and closes it, unless the book keeps incidents open at shutdown
// (persistence). It returns the snapshots to build; when there are any, handoff is locked before
// the book is unlocked. ops, when not nil, records the emissions and closes for the write-ahead
// log.
func (b *incidentBook) due(now int64, final bool, t *tally, handoff sync.Locker, ops *walOps) []snapshot {
	wait, timeout := int64(b.cfg.DecisionWait), int64(b.cfg.IncidentTimeout)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rec = ops
	snaps := b.pending
	b.pending = nil
	for inc := b.oldest; inc != nil; {
		next := inc.next
		quiet := now - inc.lastEvidence
		switch {
		case final && !b.keepOpenAtShutdown:
			if inc.dirty && inc.eligible {
				snaps = append(snaps, b.takeSnapshot(inc, emitShutdown))
			}
			b.closeRecorded(inc, t)
		case quiet >= timeout:
			if inc.dirty && inc.eligible {
				snaps = append(snaps, b.takeSnapshot(inc, emitClose))
			}
			b.closeRecorded(inc, t)
		case final:
			if inc.dirty && inc.eligible {
				snaps = append(snaps, b.takeSnapshot(inc, emitShutdown))
			}
		case inc.dirty && inc.eligible && (quiet >= wait || now-inc.dirtySince >= int64(b.cfg.updateDelay(inc.version))):
			snaps = append(snaps, b.takeSnapshot(inc, emitDecision))
		}
		inc = next
	}
	b.rec = nil
	if len(snaps) > 0 {
		handoff.Lock()
	}
	return snaps
}

// imagesOfOldest records, in ops, images of the open incidents (at most limit) that hold entries
// below keepFrom, and takes w's lock before the book's is released, so that the images take their
// place in the log's order. Each imaged incident's firstSeq becomes the images' entry. It reports
// whether it recorded any (and so holds w.mu).
func (b *incidentBook) imagesOfOldest(keepFrom uint64, limit int, ops *walOps, w *walLog) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for inc := b.oldest; inc != nil && len(ops.ops) < limit; inc = inc.next {
		if inc.firstSeq >= keepFrom {
			continue
		}
		img := &incidentImage{
			version: inc.version, lastEvidence: inc.lastEvidence, dirtySince: inc.dirtySince,
			eventCount: int64(inc.eventCount), told: int64(inc.told), dirty: inc.dirty, eligible: inc.eligible,
			mergedIDs: slices.Clone(inc.mergedIDs),
			// Events are append-only: the slice header is a snapshot.
			events: inc.events[:len(inc.events):len(inc.events)],
		}
		for _, k := range inc.keys {
			if bd, ok := b.bindings.get(&k); ok && bd.incident == inc {
				img.keys = append(img.keys, boundKey{key: k, last: bd.last})
			}
		}
		ops.add(walOp{kind: walOpImage, id: inc.id, image: img, opened: inc, prevFirstSeq: inc.firstSeq})
	}
	if len(ops.ops) == 0 {
		return false
	}
	w.mu.Lock()
	for i := range ops.ops {
		ops.ops[i].opened.firstSeq = w.nextLocked()
	}
	return true
}

// restoreFirstSeq gives imaged incidents back the firstSeq they had, when the images could not be
// written.
func (b *incidentBook) restoreFirstSeq(ops *walOps) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range ops.ops {
		if inc := ops.ops[i].opened; inc != nil {
			inc.firstSeq = min(inc.firstSeq, ops.ops[i].prevFirstSeq)
		}
	}
}

// lowestFirstSeq is the oldest write-ahead log entry an open incident still needs, or limit when
// none needs one below it.
func (b *incidentBook) lowestFirstSeq(limit uint64) uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	low := limit
	for inc := b.oldest; inc != nil; inc = inc.next {
		low = min(low, inc.firstSeq)
	}
	return low
}

// takeSnapshot marks inc emitted at its next version and returns what its record is built from.
// It runs under b.mu.
func (b *incidentBook) takeSnapshot(inc *incident, trigger emitTrigger) snapshot {
	inc.version++
	inc.dirty = false
	s := snapshot{
		id:         inc.id,
		version:    inc.version,
		eventCount: inc.eventCount,
		events:     inc.events[:len(inc.events):len(inc.events)],
		told:       inc.told,
		mergedIDs:  slices.Clone(inc.mergedIDs),
		trigger:    trigger,
	}
	inc.told = len(inc.events)
	if b.rec != nil && trigger != emitEviction {
		// An eviction is recorded as such (evict); the others as the version they emitted.
		b.rec.add(walOp{kind: walOpEmit, id: inc.id, version: inc.version, count: int64(inc.eventCount)})
	}
	return s
}

// join takes a prepared problem event (the idx-th of its call) into the incident its keys lead
// to, opening one or merging several as needed, and returns that incident; the event's keys are
// left in scratch. It runs under b.mu.
func (b *incidentBook) join(e *problemEvent, idx int32, now int64, t *tally, scratch *joinScratch) *incident {
	keys, seen, found := &scratch.keys, &scratch.seen, &scratch.found
	n := keysOf(e, keys)
	scratch.n = n

	// Find the incidents these keys lead to.
	nFound := 0
	best := linkNone
	// A client failure's earlier evidence, by any key but the trace, has recovered when the
	// address it failed to reach has since served healthy traffic: the client's own earlier
	// failures there (a refused start-up probe, say) no longer explain this one.
	dest := linkKey{kind: keyDestination, name: e.peerAddr, port: int64(e.peerPort), scope: e.facts().peerScope}
	for i := range keys[:n] {
		k := &keys[i]
		seen[i] = binding{}
		if k.use == useBindOnly {
			continue
		}
		bd, ok := b.lookup(&k.key)
		seen[i] = bd
		if !ok || bd.incident.closed {
			continue
		}
		if k.key.kind != keyTrace && absDiff(e.time, bd.last) > b.window {
			continue
		}
		if k.key.kind == keyHostDisk && (e.time < bd.last || e.time-bd.last > b.skew) {
			continue // a crash is explained by an I/O error just before it, not after
		}
		if k.key.kind != keyTrace && (b.recovered(&k.key, bd.last) || (e.peerAddr != "" && b.recovered(&dest, bd.last))) {
			e.class |= classAfterRecovery
			continue
		}
		if b.cfg.Links.stronger(k.reason, best) {
			best = k.reason
		}
		dup := false
		for _, f := range found[:nFound] {
			dup = dup || f == bd.incident
		}
		if !dup {
			found[nFound] = bd.incident
			nFound++
		}
	}
	e.joinReason = best

	var inc *incident
	opened := nFound == 0
	switch nFound {
	case 0:
		inc = b.openIncident(t)
	default:
		inc = found[0]
		for _, other := range found[1:nFound] {
			inc = b.merge(inc, other, t)
		}
	}

	inc.eventCount += e.events()
	// Make room by closing the least recently updated other incidents; an incident that alone
	// fills the cap keeps counting events but stops keeping them.
	for b.held >= b.cfg.MaxEvents {
		victim := b.oldest
		if victim == inc {
			victim = inc.next
		}
		if victim == nil {
			break
		}
		b.evict(victim, evictProblemEvents, t)
	}
	kept := false
	switch {
	case b.held >= b.cfg.MaxEvents:
		t.evicted[evictProblemEvents]++
	case len(inc.events) >= b.cfg.MaxEventsPerIncident:
		t.evicted[evictIncidentEvents]++
	default:
		b.intern.keep(e)
		inc.events = append(inc.events, *e)
		b.held++
		t.problems++
		kept = true
	}
	if b.rec != nil {
		op := walOp{kind: walOpJoin, id: inc.id, event: idx}
		if opened {
			op.flags |= walJoinOpened
			op.opened = inc
		}
		if kept {
			op.flags |= walJoinKept
		}
		b.rec.add(op)
	}
	b.settle(inc, e, keys, n, seen, kept, now)
	return inc
}

// joinScratch is the working space of one join.
type joinScratch struct {
	keys  [maxKeys]keyWithReason
	n     int
	seen  [maxKeys]binding
	found [maxKeys]*incident
}

// settle binds an event's keys to the incident it joined and updates the incident's clocks:
// what join does once the incident is chosen, and what a replay of the write-ahead log does with
// the incident it recorded. seen holds the bindings the keys had before the event.
func (b *incidentBook) settle(inc *incident, e *problemEvent, keys *[maxKeys]keyWithReason, n int, seen *[maxKeys]binding, kept bool, now int64) {
	for i := range keys[:n] {
		k := &keys[i]
		if k.use == useLookupOnly {
			continue
		}
		if seen[i].incident == inc && seen[i].last >= e.time {
			continue // bound here already, and no later: nothing to write
		}
		if !kept && k.key.kind == keyTrace && seen[i].incident != inc {
			// An event not kept binds no new trace: trace ids are the one unbounded key.
			continue
		}
		bd, ok := b.lookup(&k.key)
		if !ok || bd.incident != inc {
			inc.keys = append(inc.keys, k.key)
			bd = binding{incident: inc}
		}
		bd.last = max(bd.last, e.time)
		b.bind(&k.key, bd)
	}
	b.settleClocks(inc, e, now)
}

// settleClocks updates an incident's clocks and standing for an event that joined it, kept or
// only counted.
func (b *incidentBook) settleClocks(inc *incident, e *problemEvent, now int64) {
	inc.lastEvidence = now
	if !inc.dirty {
		inc.dirty, inc.dirtySince = true, now
	}
	if e.class&classOutsideRequest != 0 {
		inc.outsideRequests.add(e.time)
	}
	if !inc.eligible && (e.makesIncident() || b.outsideRequestsPersist(inc)) {
		// The first consequence starts the decision clock: the first version leaves at most
		// max_decision_delay later, however long the evidence before it had waited.
		inc.eligible, inc.dirtySince = true, now
	}
	b.touch(inc)
}

// outsideRequestsPersist reports whether inc's failed calls outside any request span
// recovery_delay: the calls kept failing, so it is an outage rather than a dependency's restart
// that nobody's request met.
func (b *incidentBook) outsideRequestsPersist(inc *incident) bool {
	return inc.outsideRequests.set && inc.outsideRequests.last-inc.outsideRequests.first >= b.recoveryDelay
}

// timeSpan is the earliest and latest of some times.
type timeSpan struct {
	first, last int64
	set         bool
}

func (s *timeSpan) add(t int64) {
	if !s.set {
		*s = timeSpan{first: t, last: t, set: true}
		return
	}
	s.first, s.last = min(s.first, t), max(s.last, t)
}

func (s *timeSpan) merge(o timeSpan) {
	if o.set {
		s.add(o.first)
		s.add(o.last)
	}
}

// recovered reports whether healthy traffic reached k at least recovery_delay after the last
// evidence bound through it: that evidence no longer explains failures there.
func (b *incidentBook) recovered(k *linkKey, lastEvidence int64) bool {
	if b.recoveryDelay <= 0 || k.kind == keyPod {
		return false
	}
	return b.lastHealthy(k)-lastEvidence >= b.recoveryDelay
}

// maxKeys bounds the keys of one event: trace, exemplar traces, entity, pod, service, peer.
const maxKeys = 8 + maxExemplarTraces

type keyWithReason struct {
	key    linkKey
	reason linkReason
	use    keyUse
}

// keysOf lists the evidence an event offers, with the link each key stands for.
func keysOf(e *problemEvent, keys *[maxKeys]keyWithReason) int {
	l := keyList{keys: keys}
	if !e.trace.IsEmpty() {
		l.add(linkKey{kind: keyTrace, trace: e.trace}, linkTrace, useBoth)
	}
	if e.breach != nil {
		for _, t := range e.breach.exemplars {
			l.add(linkKey{kind: keyTrace, trace: t}, linkExemplar, useBoth)
		}
	}
	if e.entity != "" {
		l.add(linkKey{kind: keyEntity, name: e.entity}, linkEntity, useBoth)
	}
	d := e.facts()
	if d.host != "" {
		use := useLookupOnly
		if e.name == unifiedevent.IOError {
			use = useBindOnly
		}
		l.add(linkKey{kind: keyHostDisk, name: d.host}, linkHost, use)
	}
	if d.sender != "" && d.sender != e.entity {
		// A signal joins the events of the workload that sent it.
		l.add(linkKey{kind: keyEntity, name: d.sender}, linkEntity, useBoth)
	}
	if e.pod != "" {
		l.add(linkKey{kind: keyPod, name: e.pod}, linkKubernetes, useBoth)
	}
	if e.service != "" {
		l.add(linkKey{kind: keyService, name: e.service}, linkService, useBoth)
	}
	if e.peerAddr != "" {
		l.add(linkKey{kind: keyDestination, name: e.peerAddr, port: int64(e.peerPort), scope: d.peerScope}, linkPeer, useBoth)
		if host, use := onHost(e); use != useBoth {
			l.add(linkKey{kind: keyDestinationOnHost, name: e.peerAddr, port: int64(e.peerPort), scope: host}, linkPeer, use)
		}
		if e.peerTarget != "" {
			l.add(linkKey{kind: keyEntity, name: e.peerTarget}, linkPeer, useBoth)
		} else if !looksLikeIP(e.peerAddr) {
			l.add(linkKey{kind: keyService, name: firstLabel(e.peerAddr)}, linkPeer, useBoth)
		}
	}
	return l.n
}

// keyList fills an event's key array; keys past its length are dropped.
type keyList struct {
	keys *[maxKeys]keyWithReason
	n    int
}

func (l *keyList) add(k linkKey, r linkReason, use keyUse) {
	if l.n < len(l.keys) {
		l.keys[l.n] = keyWithReason{k, r, use}
		l.n++
	}
}

// onHost says how a loopback client failure uses its host-wide destination key: a kernel event
// in a namespace other than the collector's binds it; telemetry that names no namespace (spans,
// logs) looks it up. It returns the host, and useBoth for events that have no such key.
func onHost(e *problemEvent) (string, keyUse) {
	scope := e.facts().peerScope
	if scope == "" {
		return "", useBoth
	}
	if host, _, inNamespace := strings.Cut(scope, "|"); inNamespace {
		return host, useBindOnly
	}
	if e.layer != unifiedevent.LayerKernel && e.layer != unifiedevent.LayerNetwork {
		return scope, useLookupOnly
	}
	return "", useBoth
}

func absDiff(a, b int64) int64 {
	if a > b {
		return a - b
	}
	return b - a
}

func (b *incidentBook) openIncident(t *tally) *incident {
	for b.open >= b.cfg.MaxIncidents && b.oldest != nil {
		b.evict(b.oldest, evictIncidents, t)
	}
	return b.newIncident(unifiedevent.NewEventID(), unassignedSeq, t)
}

// newIncident opens an incident with the given id.
func (b *incidentBook) newIncident(id string, firstSeq uint64, t *tally) *incident {
	inc := &incident{id: id, firstSeq: firstSeq}
	b.open++
	t.openDelta++
	b.append(inc)
	return inc
}

// merge joins two incidents that new evidence connected. The one already emitted at the higher
// version (or else the first) keeps its id; the other's id is listed in merged_ids.
func (b *incidentBook) merge(a, c *incident, t *tally) *incident {
	keep, gone := a, c
	if c.version > a.version {
		keep, gone = c, a
	}
	listed := gone.version > 0
	if b.rec != nil {
		op := walOp{kind: walOpMerge, id: keep.id, other: gone.id}
		if listed {
			op.flags |= walMergeListed
		}
		b.rec.add(op)
	}
	b.mergeInto(keep, gone, listed, t)
	return keep
}

// mergeInto moves gone's events and keys into keep; listed names gone in keep's merged_ids (it
// was emitted, so its record is to be replaced).
func (b *incidentBook) mergeInto(keep, gone *incident, listed bool, t *tally) {
	for i := range gone.events {
		if len(keep.events) < b.cfg.MaxEventsPerIncident {
			keep.events = append(keep.events, gone.events[i])
		} else {
			b.held--
			t.problems--
			t.evicted[evictIncidentEvents]++
		}
	}
	keep.eventCount += gone.eventCount
	b.memo.forget()
	b.alike.reset()
	for _, k := range gone.keys {
		if bd, ok := b.bindings.get(&k); ok && bd.incident == gone {
			bd.incident = keep
			b.bindings.set(&k, bd)
			keep.keys = append(keep.keys, k)
		}
	}
	if listed {
		keep.mergedIDs = append(keep.mergedIDs, gone.id)
	}
	keep.mergedIDs = append(keep.mergedIDs, gone.mergedIDs...)
	if !keep.dirty {
		keep.dirty, keep.dirtySince = true, gone.dirtySince
	}
	if gone.dirty {
		keep.dirtySince = min(keep.dirtySince, gone.dirtySince)
	}
	keep.lastEvidence = max(keep.lastEvidence, gone.lastEvidence)
	keep.outsideRequests.merge(gone.outsideRequests)
	keep.eligible = keep.eligible || gone.eligible // or by their calls outside any request: settle decides
	keep.firstSeq = min(keep.firstSeq, gone.firstSeq)
	gone.events, gone.keys, gone.closed = nil, nil, true
	b.unlink(gone)
	b.open--
	t.openDelta--
}

// evict closes an incident early because a cap was reached; evidence not yet emitted is handed
// out with the snapshots of the call that caused the eviction, never dropped.
func (b *incidentBook) evict(inc *incident, reason evictReason, t *tally) {
	if b.rec != nil {
		b.rec.add(walOp{kind: walOpEvict, id: inc.id})
	}
	if inc.dirty && inc.eligible {
		b.pending = append(b.pending, b.takeSnapshot(inc, emitEviction))
	}
	if reason == evictIncidents {
		t.evicted[reason]++
	} else {
		t.evicted[reason] += int64(len(inc.events))
	}
	b.close(inc, t)
}

// closeRecorded closes an incident at a flush and records it for the write-ahead log.
func (b *incidentBook) closeRecorded(inc *incident, t *tally) {
	if b.rec != nil {
		b.rec.add(walOp{kind: walOpClose, id: inc.id})
	}
	b.close(inc, t)
}

// close forgets an incident and the keys that lead to it. A group that never became an incident
// is counted, event by event, as events without consequence.
func (b *incidentBook) close(inc *incident, t *tally) {
	if !inc.eligible && len(inc.events) > 0 {
		if t.withoutConsequence == nil {
			t.withoutConsequence = map[unifiedevent.Name]int64{}
		}
		for i := range inc.events {
			t.withoutConsequence[inc.events[i].name] += int64(inc.events[i].events())
		}
	}
	b.memo.forget()
	b.alike.reset()
	for _, k := range inc.keys {
		if bd, ok := b.bindings.get(&k); ok && bd.incident == inc {
			b.bindings.remove(&k)
		}
	}
	b.held -= len(inc.events)
	t.problems -= int64(len(inc.events))
	inc.events, inc.keys, inc.closed = nil, nil, true
	b.unlink(inc)
	b.open--
	t.openDelta--
}

func (b *incidentBook) append(inc *incident) {
	inc.prev, inc.next = b.newest, nil
	if b.newest != nil {
		b.newest.next = inc
	} else {
		b.oldest = inc
	}
	b.newest = inc
}

func (b *incidentBook) unlink(inc *incident) {
	if inc.prev != nil {
		inc.prev.next = inc.next
	} else if b.oldest == inc {
		b.oldest = inc.next
	}
	if inc.next != nil {
		inc.next.prev = inc.prev
	} else if b.newest == inc {
		b.newest = inc.prev
	}
	inc.prev, inc.next = nil, nil
}

// touch moves an incident to the newest end of the list.
func (b *incidentBook) touch(inc *incident) {
	if b.newest == inc {
		return
	}
	b.unlink(inc)
	b.append(inc)
}
