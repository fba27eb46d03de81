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

// bucket holds the nodes added in one time slice, in chunks of fixed size: a bucket grows by a
// chunk, never by copying what it holds (a storm's bucket holds hundreds of thousands of nodes).
type bucket struct {
	seq    uint32
	start  int64
	chunks [][]spanNode
	count  int
}

// chunkBits sets the nodes per chunk: 4096 nodes, 192 KiB.
const (
	chunkBits  = 12
	chunkNodes = 1 << chunkBits
)

func (b *bucket) at(i int) *spanNode { return &b.chunks[i>>chunkBits][i&(chunkNodes-1)] }

// spanStore is the trace structure of every recent span, sharded by trace id so that concurrent
// Consume calls rarely meet on a lock. Each shard is a ring of time buckets plus an index from trace
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
	// free holds chunks of dropped buckets for the next ones: a steady stream reuses its memory.
	free [][]spanNode
	_    [64]byte // keep shards' hot fields on different cache lines
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
		sh.traces.touch(nodes)
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
	ref := makeRef(cur.seq, cur.count)
	sh.append(cur, n)
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
	sh.buckets = append(sh.buckets, b)
	return b
}

// append adds a node at the end of a bucket, starting a chunk when the last is full.
func (sh *shard) append(b *bucket, n *spanNode) {
	if b.count&(chunkNodes-1) == 0 {
		var c []spanNode
		if k := len(sh.free); k > 0 {
			c = sh.free[k-1]
			sh.free = sh.free[:k-1]
		} else {
			c = make([]spanNode, chunkNodes)
		}
		b.chunks = append(b.chunks, c)
	}
	*b.at(b.count) = *n
	b.count++
}

// dropOldest removes the oldest bucket and every trace index entry that points into it.
func (sh *shard) dropOldest() int {
	b := sh.buckets[0]
	for i := 0; i < b.count; i++ {
		sh.traces.deleteIf(b.at(i).trace, makeRef(b.seq, i))
	}
	dropped := b.count
	sh.count -= dropped
	copy(sh.buckets, sh.buckets[1:])
	sh.buckets[len(sh.buckets)-1] = nil
	sh.buckets = sh.buckets[:len(sh.buckets)-1]
	// Chunks hold no pointers: they are reused as they are, up to a bucket's worth (expire trims
	// the rest once traffic falls).
	for _, c := range b.chunks {
		if len(sh.free) >= len(b.chunks) {
			break
		}
		sh.free = append(sh.free, c)
	}
	return dropped
}

// trimFree keeps no more free chunks than the newest bucket took: when traffic falls, the memory
// of a storm's buckets goes back.
func (sh *shard) trimFree() {
	keep := 1
	if k := len(sh.buckets); k > 0 {
		keep = max(keep, len(sh.buckets[k-1].chunks))
	}
	if len(sh.free) > keep {
		clear(sh.free[keep:])
		sh.free = sh.free[:keep]
	}
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
	if k >= len(sh.buckets) || ref.index() >= sh.buckets[k].count {
		return nil, false
	}
	return sh.buckets[k].at(ref.index()), true
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
		sh.trimFree()
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
