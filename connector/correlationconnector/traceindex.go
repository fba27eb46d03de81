package correlationconnector

import (
	"encoding/binary"
	"math/bits"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// traceIndex maps a trace id to the newest node of that trace in a shard: an open-addressing
// table with linear probing, kept at most half full, whose deletions shift the following entries
// back instead of leaving tombstones. The store inserts and deletes one entry per trace as fast
// as spans arrive; a Go map under that churn fills with tombstones and its lookups walk several
// groups, each a cache miss in a table of a million traces. Here a lookup is one probe run in
// one or two cache lines.
type traceIndex struct {
	slots []traceSlot
	mask  uint64
	shift uint8 // 64 - log2(len(slots)), for Fibonacci hashing
	count int
	// touched keeps the reads of touch from being optimised away.
	touched nodeRef
}

// traceSlot is one entry; ref 0 marks an empty slot.
type traceSlot struct {
	trace pcommon.TraceID
	ref   nodeRef
}

// minTraceSlots is the size a shard's index starts at; it doubles as the shard fills.
const minTraceSlots = 1024

func newTraceIndex() traceIndex {
	return makeTraceIndex(minTraceSlots)
}

func makeTraceIndex(size int) traceIndex {
	return traceIndex{slots: make([]traceSlot, size), mask: uint64(size - 1), shift: uint8(64 - bits.TrailingZeros(uint(size)))}
}

// home is the first slot a trace is looked for in. Both halves of the id are mixed: not every
// tracer fills the high half at random (some start it with a timestamp), and the low half also
// picks the shard.
func (x *traceIndex) home(t pcommon.TraceID) uint64 {
	h := binary.LittleEndian.Uint64(t[:8]) ^ binary.LittleEndian.Uint64(t[8:])
	return (h * 0x9E3779B97F4A7C15) >> x.shift
}

// touch reads the slot each node's trace is looked for in first, before any insert uses it. The
// reads do not depend on one another, so the processor has many of their cache misses in flight
// at once, and the inserts that follow find the lines in cache: an index of a million recent
// traces is far larger than the caches, and one lookup after another each waited for memory
// alone.
func (x *traceIndex) touch(nodes []spanNode) {
	var sum nodeRef
	for i := range nodes {
		sum += x.slots[x.home(nodes[i].trace)].ref
	}
	x.touched += sum
}

// get returns the ref held for a trace, 0 when none.
func (x *traceIndex) get(t pcommon.TraceID) nodeRef {
	for i := x.home(t); ; i = (i + 1) & x.mask {
		s := &x.slots[i]
		if s.ref == 0 {
			return 0
		}
		if s.trace == t {
			return s.ref
		}
	}
}

// set makes ref the one held for a trace; ref must not be 0.
func (x *traceIndex) set(t pcommon.TraceID, ref nodeRef) {
	if 2*(x.count+1) > len(x.slots) {
		x.grow()
	}
	for i := x.home(t); ; i = (i + 1) & x.mask {
		s := &x.slots[i]
		if s.ref == 0 {
			*s = traceSlot{trace: t, ref: ref}
			x.count++
			return
		}
		if s.trace == t {
			s.ref = ref
			return
		}
	}
}

// deleteIf removes a trace's entry if it holds ref (a newer node of the trace keeps it).
func (x *traceIndex) deleteIf(t pcommon.TraceID, ref nodeRef) {
	i := x.home(t)
	for {
		s := &x.slots[i]
		if s.ref == 0 {
			return
		}
		if s.trace == t {
			if s.ref != ref {
				return
			}
			break
		}
		i = (i + 1) & x.mask
	}
	// Backward shift: move up every entry of the run after the hole that may live there, so
	// that no lookup meets an empty slot before its entry.
	hole := i
	for j := (i + 1) & x.mask; x.slots[j].ref != 0; j = (j + 1) & x.mask {
		home := x.home(x.slots[j].trace)
		// The entry at j may fill the hole when its home is not in (hole, j], cyclically.
		if (j-home)&x.mask >= (j-hole)&x.mask {
			x.slots[hole] = x.slots[j]
			hole = j
		}
	}
	x.slots[hole] = traceSlot{}
	x.count--
}

func (x *traceIndex) grow() { x.rehash(2 * len(x.slots)) }

// shrinkIfSparse gives memory back after a storm: a table an eighth full is halved (never below
// its start size), so a quiet shard does not keep a storm's table.
func (x *traceIndex) shrinkIfSparse() {
	if len(x.slots) > minTraceSlots && 8*x.count <= len(x.slots) {
		x.rehash(len(x.slots) / 2)
	}
}

// rehash moves every entry into a table of size slots.
func (x *traceIndex) rehash(size int) {
	old := x.slots
	*x = makeTraceIndex(size)
	for i := range old {
		if s := &old[i]; s.ref != 0 {
			j := x.home(s.trace)
			for x.slots[j].ref != 0 {
				j = (j + 1) & x.mask
			}
			x.slots[j] = *s
			x.count++
		}
	}
}

func (x *traceIndex) len() int { return x.count }
