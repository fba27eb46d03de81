package correlationconnector

// The incident book's side of the write-ahead log's replay (wal.go): each recorded change is
// applied as it was decided, so the book comes back as it was, whatever the peer directory,
// health ledger or clock say now.

func (b *incidentBook) beginReplay() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.replaying = map[string]*incident{}
}

func (b *incidentBook) endReplay() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.replaying = nil
}

// replayEntry applies one entry's ops in order; events holds the problem events of its join ops
// (op.event indexes it). seq is the entry's, now the clock time its call or flush ran at.
// It reports how many ops named an incident the book no longer holds (a close already applied,
// or an incident whose older entries were truncated after it closed).
func (b *incidentBook) replayEntry(ops []walOp, events []problemEvent, seq uint64, now int64, t *tally) (unknown int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range ops {
		if !b.replayOp(&ops[i], events, seq, now, t) {
			unknown++
		}
	}
	return unknown
}

// replayOp runs under b.mu.
func (b *incidentBook) replayOp(op *walOp, events []problemEvent, seq uint64, now int64, t *tally) bool {
	inc := b.replaying[op.id]
	switch op.kind {
	case walOpJoin:
		if inc == nil {
			// Opened here, or by an earlier call whose write failed and whose events were
			// sent again: either way this is the incident's oldest evidence still logged.
			inc = b.newIncident(op.id, seq, t)
			b.replaying[op.id] = inc
		}
		e := &events[op.event]
		inc.eventCount += e.events()
		kept := op.flags&walJoinKept != 0 && len(inc.events) < b.cfg.MaxEventsPerIncident
		if kept {
			inc.events = append(inc.events, *e)
			b.held++
			t.problems++
		}
		b.replayBindings(inc, e, kept, now)
		return true
	case walOpCount:
		if inc == nil {
			return false // a counted run never opens its incident
		}
		inc.eventCount += int(op.count)
		b.replayBindings(inc, &events[op.event], false, now)
		return true
	case walOpMerge:
		gone := b.replaying[op.other]
		if inc == nil || gone == nil || inc == gone {
			return false
		}
		b.mergeInto(inc, gone, op.flags&walMergeListed != 0, t)
		delete(b.replaying, op.other)
		return true
	case walOpEmit:
		if inc == nil {
			return false
		}
		inc.version = max(inc.version, op.version)
		if int64(inc.eventCount) == op.count {
			// Nothing joined after that version: it is what the exporter holds.
			inc.dirty = false
			inc.told = len(inc.events)
		}
		return true
	case walOpImage:
		if inc != nil {
			// What came before the image is superseded by it.
			b.close(inc, t)
		}
		b.replaying[op.id] = b.restoreImage(op.id, op.image, seq, t)
		return true
	case walOpEvict, walOpClose:
		if inc == nil {
			return false
		}
		// The record of an eviction or close left before its entry was written: closing is all
		// there is to replay.
		b.close(inc, t)
		delete(b.replaying, op.id)
		return true
	}
	return false
}

// replayBindings binds a replayed event's keys to the incident it joined, as join did. It runs
// under b.mu.
func (b *incidentBook) replayBindings(inc *incident, e *problemEvent, kept bool, now int64) {
	var keys [maxKeys]keyWithReason
	var seen [maxKeys]binding
	n := keysOf(e, &keys)
	for i, k := range keys[:n] {
		if k.use != useBindOnly {
			seen[i], _ = b.bindings.get(&k.key)
		}
	}
	b.settle(inc, e, &keys, n, &seen, kept, now)
}

// restoreImage opens the incident an image describes and binds its keys. It runs under b.mu.
func (b *incidentBook) restoreImage(id string, img *incidentImage, seq uint64, t *tally) *incident {
	inc := b.newIncident(id, seq, t)
	inc.version, inc.lastEvidence, inc.dirtySince = img.version, img.lastEvidence, img.dirtySince
	inc.eventCount, inc.told = int(img.eventCount), int(img.told)
	inc.dirty, inc.eligible = img.dirty, img.eligible
	inc.mergedIDs = img.mergedIDs
	inc.events = img.events
	// The image keeps no span of the calls outside any request: the kept events give it (the
	// earliest is among them; a later call only counted extends it again when it repeats).
	for i := range img.events {
		if img.events[i].class&classOutsideRequest != 0 {
			inc.outsideRequests.add(img.events[i].time)
		}
	}
	b.held += len(img.events)
	t.problems += int64(len(img.events))
	for _, k := range img.keys {
		b.bindings.set(&k.key, binding{incident: inc, last: k.last})
		inc.keys = append(inc.keys, k.key)
	}
	return inc
}
