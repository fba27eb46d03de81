package correlationconnector

// bindingMemo remembers, for the length of one joinAll call, what the book's recent lookups found:
// the binding of a link key and when the health ledger last saw the key healthy. Events of one
// batch share most of their keys — in an error storm every failed call names the same entity,
// service and destination — and a lookup in the bindings map hashes the whole key (two strings)
// while a health lookup takes the ledger's lock: the storm profile spent a third of the join
// there. Interned key strings make a comparison here a pointer check.
//
// It is owned by the incidentBook and used under its lock. Bindings written while it is active
// are written through it (set); anything that rewrites bindings wholesale (a merge, a close)
// forgets it. Health times may be up to one call old, as if the call had joined a moment earlier.
type bindingMemo struct {
	active bool
	// Keys other than traces, which recur across a batch; when full, the oldest gives way. Trace
	// keys are looked up in their own map (bindingTable), which costs about as little as a look
	// here.
	entries [16]memoEntry
	n, next int
}

type memoEntry struct {
	key   linkKey
	bd    binding
	bound bool
	// healthy is when the ledger last saw the key healthy (0: never); healthyRead says it was read.
	healthy     int64
	healthyRead bool
}

// begin activates the memo for one call, empty.
func (m *bindingMemo) begin() {
	m.forget()
	m.active = true
}

// end deactivates the memo: outside joinAll every lookup goes to the map.
func (m *bindingMemo) end() {
	m.forget()
	m.active = false
}

// forget drops everything remembered (the bindings changed under it).
func (m *bindingMemo) forget() {
	m.n, m.next = 0, 0
}

// entry returns the remembered entry of k, or nil.
func (m *bindingMemo) entry(k *linkKey) *memoEntry {
	for i := 0; i < m.n; i++ {
		if e := &m.entries[i]; e.key == *k {
			return e
		}
	}
	return nil
}

// add remembers k, replacing the oldest entry when full, and returns its entry.
func (m *bindingMemo) add(k *linkKey, bd binding, bound bool) *memoEntry {
	var e *memoEntry
	if m.n < len(m.entries) {
		e = &m.entries[m.n]
		m.n++
	} else {
		e = &m.entries[m.next]
		m.next = (m.next + 1) % len(m.entries)
	}
	*e = memoEntry{key: *k, bd: bd, bound: bound}
	return e
}

// lookup returns the binding of k: from the memo when active and remembered, else from the table
// (remembered when active). It runs under b.mu.
func (b *incidentBook) lookup(k *linkKey) (binding, bool) {
	if !b.memo.active || k.kind == keyTrace {
		return b.bindings.get(k)
	}
	if e := b.memo.entry(k); e != nil {
		return e.bd, e.bound
	}
	bd, ok := b.bindings.get(k)
	b.memo.add(k, bd, ok)
	return bd, ok
}

// bind writes the binding of k, in the table and in the memo. It runs under b.mu.
func (b *incidentBook) bind(k *linkKey, bd binding) {
	b.bindings.set(k, bd)
	if !b.memo.active || k.kind == keyTrace {
		return
	}
	if e := b.memo.entry(k); e != nil {
		e.bd, e.bound = bd, true
		return
	}
	b.memo.add(k, bd, true)
}

// lastHealthy is when the health ledger last saw k healthy, remembered for the call when active.
func (b *incidentBook) lastHealthy(k *linkKey) int64 {
	if !b.memo.active {
		return b.health.lastHealthy(*k)
	}
	e := b.memo.entry(k)
	if e == nil {
		bd, ok := b.bindings.get(k)
		e = b.memo.add(k, bd, ok)
	}
	if !e.healthyRead {
		e.healthy, e.healthyRead = b.health.lastHealthy(*k), true
	}
	return e.healthy
}
