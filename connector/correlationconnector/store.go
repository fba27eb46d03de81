package correlationconnector

import (
	"encoding/binary"
	"sync"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// maxShards bounds the shards setting; more would only waste memory.
const maxShards = 1024

// bucketsPerWindow is how finely time is cut for expiry: state lives for the window plus at most
// one bucket, and expiry drops whole buckets, so no event carries a timer of its own.
const bucketsPerWindow = 8

// spanNode is one span's place in its trace: enough to walk from a failed span up to the failed
// span it made fail, through any number of unremarkable spans in between.
type spanNode struct {
	trace   pcommon.TraceID
	span    pcommon.SpanID
	parent  pcommon.SpanID
	prev    nodeRef // the previous node of the same trace; the trace index holds the newest
	problem bool
}

// nodeRef addresses a node: bucket sequence number in the high 32 bits, index in the low 32.
// Sequence numbers start at 1, so the zero ref means none.
type nodeRef uint64

func makeRef(seq uint32, i int) nodeRef { return nodeRef(uint64(seq)<<32 | uint64(uint32(i))) }
func (r nodeRef) seq() uint32           { return uint32(r >> 32) }
func (r nodeRef) index() int            { return int(uint32(r)) }

type bucket struct {
	seq   uint32
	start int64
	nodes []spanNode
}

// spanStore is the trace structure of every recent span, sharded by trace id so that concurrent
// Consume calls rarely meet on a lock. Each shard is a ring of time buckets plus a map from trace
// id to the newest node of that trace; nodes of one trace are chained newest to oldest.
type spanStore struct {
	shards      []*shard
	mask        uint64
	window      int64
	bucketWidth int64
	shardCap    int
}

type shard struct {
	mu      sync.Mutex
	traces  traceIndex
	buckets []*bucket // oldest first; sequence numbers are consecutive
	nextSeq uint32
	count   int
	free    [][]spanNode
	_       [64]byte // keep shards' hot fields on different cache lines
}

// storeChange is what one insert or expiry did, for self-telemetry.
type storeChange struct {
	inserted int
	expired  int
	evicted  int
}

func newSpanStore(shards int, window int64, maxEvents int) *spanStore {
	n := 1
	for n < shards {
		n <<= 1
	}
	s := &spanStore{
		shards:      make([]*shard, n),
		mask:        uint64(n - 1),
		window:      window,
		bucketWidth: max(window/bucketsPerWindow, 1),
		shardCap:    max(maxEvents/n, 1),
	}
	for i := range s.shards {
		s.shards[i] = &shard{traces: newTraceIndex(), nextSeq: 1}
	}
	return s
}

// shardOf picks a shard from the random low half of the trace id.
func (s *spanStore) shardOf(t pcommon.TraceID) int {
	return int(binary.LittleEndian.Uint64(t[8:]) & s.mask)
}

// insert adds the nodes routed to each shard, one lock per shard.
func (s *spanStore) insert(perShard [][]spanNode, now int64) storeChange {
	var ch storeChange
	for i, nodes := range perShard {
		if len(nodes) == 0 {
			continue
		}
		sh := s.shards[i]
		var run traceRun
		sh.mu.Lock()
		for j := range nodes {
			ch.evicted += sh.add(&nodes[j], now, s.bucketWidth, s.shardCap, &run)
		}
		sh.indexRun(&run)
		sh.mu.Unlock()
		ch.inserted += len(nodes)
	}
	return ch
}

// traceRun is the newest node of the trace added last, not yet in the trace index: the spans of
// a trace mostly arrive one after another, and after the first each saves a lookup and a write
// of the index (a map of every recent trace, where an access is mostly a cache miss).
type traceRun struct {
	trace pcommon.TraceID
	ref   nodeRef
	open  bool
}

// indexRun writes a run's newest node to the trace index.
func (sh *shard) indexRun(r *traceRun) {
	if r.open {
		sh.traces.set(r.trace, r.ref)
		r.open = false
	}
}

// add appends one node, first evicting the oldest bucket when the shard is at its cap. The
// caller indexes the run when it is done adding (indexRun).
func (sh *shard) add(n *spanNode, now, width int64, capacity int, run *traceRun) (evicted int) {
	cur := sh.current(now, width)
	for sh.count >= capacity && len(sh.buckets) > 0 {
		sh.indexRun(run) // eviction reads the index
		if sh.buckets[0] == cur {
			// The only bucket is full: start a fresh one so that the oldest can go.
			cur = sh.open(now)
		}
		evicted += sh.dropOldest()
	}
	if run.open && run.trace == n.trace {
		n.prev = run.ref
	} else {
		sh.indexRun(run)
		n.prev = sh.traces.get(n.trace)
	}
	ref := makeRef(cur.seq, len(cur.nodes))
	cur.nodes = append(cur.nodes, *n)
	*run = traceRun{trace: n.trace, ref: ref, open: true}
	sh.count++
	return evicted
}

func (sh *shard) current(now, width int64) *bucket {
	if k := len(sh.buckets); k > 0 {
		if b := sh.buckets[k-1]; now < b.start+width {
			return b
		}
	}
	return sh.open(now)
}

func (sh *shard) open(now int64) *bucket {
	b := &bucket{seq: sh.nextSeq, start: now}
	sh.nextSeq++
	if k := len(sh.free); k > 0 {
		b.nodes = sh.free[k-1][:0]
		sh.free = sh.free[:k-1]
	} else if k := len(sh.buckets); k > 0 {
		// Traffic is steady more often than not: room for as many spans as the last bucket took
		// saves the copies of growing to it.
		b.nodes = make([]spanNode, 0, len(sh.buckets[k-1].nodes))
	}
	sh.buckets = append(sh.buckets, b)
	return b
}

// dropOldest removes the oldest bucket and every trace index entry that points into it.
func (sh *shard) dropOldest() int {
	b := sh.buckets[0]
	for i := range b.nodes {
		n := &b.nodes[i]
		sh.traces.deleteIf(n.trace, makeRef(b.seq, i))
	}
	dropped := len(b.nodes)
	sh.count -= dropped
	copy(sh.buckets, sh.buckets[1:])
	sh.buckets[len(sh.buckets)-1] = nil
	sh.buckets = sh.buckets[:len(sh.buckets)-1]
	if len(sh.free) < 4 {
		clear(b.nodes)
		sh.free = append(sh.free, b.nodes[:0])
	}
	return dropped
}

func (sh *shard) node(ref nodeRef) (*spanNode, bool) {
	if ref == 0 || len(sh.buckets) == 0 {
		return nil, false
	}
	first := sh.buckets[0].seq
	if ref.seq() < first {
		return nil, false
	}
	k := int(ref.seq() - first)
	if k >= len(sh.buckets) || ref.index() >= len(sh.buckets[k].nodes) {
		return nil, false
	}
	return &sh.buckets[k].nodes[ref.index()], true
}

// expire drops every bucket that ended more than a window before now.
func (s *spanStore) expire(now int64) storeChange {
	var ch storeChange
	for _, sh := range s.shards {
		sh.mu.Lock()
		for len(sh.buckets) > 0 && sh.buckets[0].start+s.bucketWidth <= now-s.window {
			ch.expired += sh.dropOldest()
		}
		sh.traces.shrinkIfSparse()
		sh.mu.Unlock()
	}
	return ch
}

// len returns the number of nodes held.
func (s *spanStore) len() int {
	total := 0
	for _, sh := range s.shards {
		sh.mu.Lock()
		total += sh.count
		sh.mu.Unlock()
	}
	return total
}

// traceShape is the parent and problem flag of each known span of one trace.
type traceShape map[pcommon.SpanID]spanShape

type spanShape struct {
	parent  pcommon.SpanID
	problem bool
}

// shapeOf fills shape with every node of trace t still held.
func (s *spanStore) shapeOf(t pcommon.TraceID, shape traceShape) {
	sh := s.shards[s.shardOf(t)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for ref := sh.traces.get(t); ref != 0; {
		n, ok := sh.node(ref)
		if !ok {
			return
		}
		if old, seen := shape[n.span]; !seen || !old.problem {
			shape[n.span] = spanShape{parent: n.parent, problem: n.problem || old.problem}
		}
		ref = n.prev
	}
}
