package correlationconnector

import "math"

// alikeJoins spares a joinAll call the whole join of events an incident only counts. In an error
// storm every failed call of a workload names the same entity, service and destination; once its
// incident holds max_events_per_incident events the rest are counted, not kept, and the join of
// each would look up the same keys, find the same incident, check the same clocks and write the
// same bindings, event after event: the storm profile spent a third of the connector there.
//
// A class is made of an event the call joined the whole way, once every key it binds but its
// trace leads to the incident it joined, none has recovered, and it looks up no key it does not
// bind (a crash's host, which an I/O error binds) that is bound. A later event of the call that
// binds alike (bindsAlike: the same keys but for its trace, the same class) would then find that
// incident by those keys and no other, and joinAlike takes it so when nothing could make join
// decide otherwise:
//
//   - the incident is full (join would not keep the event, so it binds no new trace) and the book
//     is under max_events (no eviction to make room);
//   - the event's own trace leads nowhere;
//   - its time is within the window of every binding of the class's keys. Those bindings were
//     known when the class was made; since then only the call's events moved them, so the call's
//     latest time bounds them from above;
//   - none of the keys can have recovered: none had when the class was made, and a binding's time
//     only grows (health times are read once a call, see bindingMemo).
//
// What such a join changes in the keys' bindings — their latest time — is written once, before
// the next join that reads bindings the whole way and at the end of the call: the bindings then
// hold what one-by-one joins would have left (the argument the write-ahead log's counted classes
// rest on, see countedClasses). A class lasts while its keys surely lead to its incident: a join
// into another incident may bind a shared key there, and a merge or a close rewrites bindings
// wholesale, so those forget it, as does an event binding a key it does not look up (an I/O
// error's host, which a crash of the class would look up).
//
// It is owned by the incidentBook and used under its lock, within one joinAll call.
type alikeJoins struct {
	classes [maxAlikeClasses]alikeClass
	n       int
	next    int   // the class a new one replaces when all are in use
	latest  int64 // the latest time of an event the call joined
	// off makes every event join the whole way, and taken counts the joins taken the short way:
	// the tests compare the two ways.
	off   bool
	taken int
}

// maxAlikeClasses bounds the classes of a call: a storm's batch alternates few (telemetrygen's
// CLIENT and SERVER spans, a service's calls to two dependencies).
const maxAlikeClasses = 4

type alikeClass struct {
	like   *problemEvent
	inc    *incident
	reason linkReason
	// keys are the keys other than its trace that the class's events bind.
	keys [maxKeys]linkKey
	n    int
	// earliest and latest are the times of those keys' bindings when the class was made.
	earliest, latest int64
	// pending is the latest time of the class's joins not yet written to its keys' bindings.
	pending    int64
	hasPending bool
}

func (a *alikeJoins) reset() {
	a.n, a.next, a.latest = 0, 0, 0
}

// joinAlike takes e (the idx-th event of its call) into the incident of a class it binds alike,
// when join would do the same; it reports whether it did. It runs under b.mu.
func (b *incidentBook) joinAlike(e *problemEvent, idx int32, now int64, t *tally) bool {
	a := &b.alike
	if a.n == 0 || a.off || e.breach != nil || b.held >= b.cfg.MaxEvents {
		return false
	}
	var c *alikeClass
	for i := range a.classes[:a.n] {
		if bindsAlike(a.classes[i].like, e) {
			c = &a.classes[i]
			break
		}
	}
	if c == nil {
		return false
	}
	inc := c.inc
	if len(inc.events) < b.cfg.MaxEventsPerIncident {
		return false // join keeps it, and binds its trace
	}
	if max(c.latest, a.latest)-e.time > b.window || e.time-c.earliest > b.window {
		return false
	}
	if !e.trace.IsEmpty() {
		if bd, ok := b.lookup(&linkKey{kind: keyTrace, trace: e.trace}); ok && !bd.incident.closed {
			return false
		}
	}
	e.joinReason = c.reason
	inc.eventCount += e.events()
	t.evicted[evictIncidentEvents]++
	if b.rec != nil {
		b.rec.add(walOp{kind: walOpJoin, id: inc.id, event: idx})
	}
	if !c.hasPending || e.time > c.pending {
		c.pending, c.hasPending = e.time, true
	}
	a.latest = max(a.latest, e.time)
	a.taken++
	b.settleClocks(inc, e, now)
	return true
}

// writeAlikeBindings writes the latest times of the classes' joins to their keys' bindings, as
// settle would have event by event. It runs under b.mu.
func (b *incidentBook) writeAlikeBindings() {
	a := &b.alike
	for i := range a.classes[:a.n] {
		c := &a.classes[i]
		if !c.hasPending {
			continue
		}
		for j := range c.keys[:c.n] {
			// While the class lasts its keys lead to its incident (the differential test holds
			// the bindings left to those of one-by-one joins).
			k := &c.keys[j]
			if bd, ok := b.lookup(k); ok && bd.incident == c.inc && bd.last < c.pending {
				bd.last = c.pending
				b.bind(k, bd)
			}
		}
		c.hasPending = false
	}
}

// learnAlike updates the classes after join took e the whole way into inc; scratch holds e's
// keys. It runs under b.mu, after writeAlikeBindings.
func (b *incidentBook) learnAlike(e *problemEvent, inc *incident, scratch *joinScratch) {
	a := &b.alike
	a.latest = max(a.latest, e.time)
	keys := scratch.keys[:scratch.n]
	bindsOnly := false
	for i := range keys {
		bindsOnly = bindsOnly || keys[i].use == useBindOnly
	}
	// Keep the classes of inc alone: e may have bound a key another incident's class shares. An
	// event that binds a key it does not look up may have bound one a class looks up.
	w := 0
	for i := range a.classes[:a.n] {
		if !bindsOnly && a.classes[i].inc == inc {
			a.classes[w] = a.classes[i]
			w++
		}
	}
	if w != a.n {
		a.n, a.next = w, 0
	}
	if e.breach != nil || bindsOnly {
		return
	}
	// A class e binds alike stays valid, but e's bindings are newer: e takes its place.
	slot := -1
	for i := range a.classes[:a.n] {
		if bindsAlike(a.classes[i].like, e) {
			slot = i
		}
	}
	c := alikeClass{like: e, inc: inc, reason: linkNone, earliest: math.MaxInt64, latest: math.MinInt64}
	dest := linkKey{kind: keyDestination, name: e.peerAddr, port: int64(e.peerPort), scope: e.facts().peerScope}
	for i := range keys {
		k := &keys[i]
		if k.key.kind == keyTrace {
			continue
		}
		bd, ok := b.lookup(&k.key)
		if k.use == useLookupOnly {
			if ok {
				return // a crash near an I/O error: the skew decides, event by event
			}
			continue
		}
		if !ok || bd.incident != inc || b.recovered(&k.key, bd.last) || (e.peerAddr != "" && b.recovered(&dest, bd.last)) {
			return // a key another event's join would set aside
		}
		c.keys[c.n] = k.key
		c.n++
		// e found its incident by the keys bound then; the class's events find it by all of them.
		if b.cfg.Links.stronger(k.reason, c.reason) {
			c.reason = k.reason
		}
		c.earliest, c.latest = min(c.earliest, bd.last), max(c.latest, bd.last)
	}
	if c.n == 0 {
		return // nothing but its trace joined it: each event of the kind opens its own
	}
	switch {
	case slot >= 0:
		a.classes[slot] = c
	case a.n < len(a.classes):
		a.classes[a.n] = c
		a.n++
	default:
		a.classes[a.next] = c
		a.next = (a.next + 1) % len(a.classes)
	}
}
