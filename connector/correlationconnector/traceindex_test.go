package correlationconnector

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// TestTraceIndexAgreesWithAMap drives the index and a Go map with the same random sets and
// deletes — many ids colliding on few home slots, across growth and shrinking — and compares
// every lookup: a deletion that broke a probe run would lose an entry behind it.
func TestTraceIndexAgreesWithAMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	x := newTraceIndex()
	want := map[pcommon.TraceID]nodeRef{}
	ids := make([]pcommon.TraceID, 5000)
	for i := range ids {
		// Ids that differ only in a few bits of both halves: their homes crowd together.
		ids[i][0], ids[i][8] = byte(i), byte(i>>8)
		ids[i][15] = byte(rng.IntN(4))
	}
	for step := 0; step < 200_000; step++ {
		id := ids[rng.IntN(len(ids))]
		ref := nodeRef(rng.Uint64N(1<<40) + 1)
		switch rng.IntN(3) {
		case 0, 1:
			x.set(id, ref)
			want[id] = ref
		default:
			held := want[id]
			if rng.IntN(2) == 0 {
				held++ // a newer node holds the entry: deleteIf must keep it
			}
			x.deleteIf(id, held)
			if want[id] == held {
				delete(want, id)
			}
		}
		if step%10_000 == 0 {
			x.shrinkIfSparse()
		}
	}
	if x.len() != len(want) {
		t.Fatalf("index holds %d entries, the map %d", x.len(), len(want))
	}
	for _, id := range ids {
		if got := x.get(id); got != want[id] {
			t.Fatalf("trace %x: index %d, map %d", id, got, want[id])
		}
	}
	// Emptied, it shrinks back to its start size.
	for id, ref := range want {
		x.deleteIf(id, ref)
	}
	for len(x.slots) > minTraceSlots {
		before := len(x.slots)
		x.shrinkIfSparse()
		if len(x.slots) == before {
			t.Fatalf("an empty index of %d slots did not shrink", before)
		}
	}
}

func BenchmarkTraceIndex(b *testing.B) {
	const live = 500_000
	x := newTraceIndex()
	ids := make([]pcommon.TraceID, live)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range ids {
		for k := range ids[i] {
			ids[i][k] = byte(rng.Uint32())
		}
		x.set(ids[i], nodeRef(i+1))
	}
	b.ReportAllocs()
	b.ResetTimer()
	// Steady churn, as the store sees it: the oldest trace leaves, a new one comes.
	for i := 0; i < b.N; i++ {
		k := i % live
		x.deleteIf(ids[k], nodeRef(k+1))
		ids[k][0]++
		_ = x.get(ids[k])
		x.set(ids[k], nodeRef(k+1))
	}
}

// BenchmarkTraceIndexGrowth fills an empty index with 131 072 traces, as a shard's index fills
// in the first seconds of a storm (telemetrygen's, at 30 000 spans a second on two shards, reaches
// that in 18 s): every doubling on the way is in the figure. One op is one trace.
func BenchmarkTraceIndexGrowth(b *testing.B) {
	const traces = 1 << 17
	ids := make([]pcommon.TraceID, traces)
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range ids {
		binary.LittleEndian.PutUint64(ids[i][:8], rng.Uint64())
		binary.LittleEndian.PutUint64(ids[i][8:], rng.Uint64())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += traces {
		x := newTraceIndex()
		for i := range ids {
			x.set(ids[i], nodeRef(i+1))
		}
	}
}

// BenchmarkSpanStoreInsert inserts batches of 512 spans into a store at its cap of a million, as
// the connector does for every span: traces of two spans, either side by side (an application's
// own exporter) or 256 spans apart (a collector or SDK batching many workers' spans together, as
// telemetrygen's are). One op is one span.
func BenchmarkSpanStoreInsert(b *testing.B) {
	for _, layout := range []string{"side_by_side", "interleaved"} {
		b.Run(layout, func(b *testing.B) {
			const batch = 512
			s := newSpanStore(1, int64(2*time.Minute), 1_000_000)
			rng := rand.New(rand.NewPCG(5, 6))
			nodes := [][]spanNode{make([]spanNode, batch)}
			fill := func() {
				for t := 0; t < batch/2; t++ {
					var id pcommon.TraceID
					binary.LittleEndian.PutUint64(id[:8], rng.Uint64())
					binary.LittleEndian.PutUint64(id[8:], rng.Uint64())
					a, c := 2*t, 2*t+1
					if layout == "interleaved" {
						a, c = t, t+batch/2
					}
					nodes[0][a] = spanNode{trace: id, span: pcommon.SpanID{1}}
					nodes[0][c] = spanNode{trace: id, span: pcommon.SpanID{2}, parent: pcommon.SpanID{1}}
				}
			}
			now := int64(time.Hour)
			for held := 0; held < 1_000_000; held += batch {
				fill()
				s.insert(nodes, now)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; done += batch {
				b.StopTimer()
				fill()
				b.StartTimer()
				s.insert(nodes, now)
			}
		})
	}
}
