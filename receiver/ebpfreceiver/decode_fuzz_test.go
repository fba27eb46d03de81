package ebpfreceiver

import (
	"testing"
	"time"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
	"github.com/yairfalse/tapio/receiver/ebpfreceiver/internal/kernel"
)

// FuzzRingBufferRecord: whatever bytes the ring buffer hands over — a newer kernel object's
// record, a torn one — decoding either refuses it with an error or yields a UnifiedEvent of the
// catalogue with a narrative; it never panics.
func FuzzRingBufferRecord(f *testing.F) {
	for kind := kernel.Kind(1); kind < kernel.KindCount; kind++ {
		f.Add(sampleRecord(kind, 4242))
	}
	f.Add([]byte{})
	f.Add(make([]byte, kernel.EventSize))
	workloads, err := newWorkloadCgroups(nil, map[string]bool{"/": true})
	if err != nil {
		f.Fatal(err)
	}
	var path kernel.CgroupPath
	copy(path[0][:], "tapio-web.service")
	cgroups := newCgroupCache(func(uint64) (kernel.CgroupPath, bool) { return path, true }, workloads, "node-a")
	when := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, raw []byte) {
		var e kernel.Event
		if err := e.Decode(raw); err != nil {
			return
		}
		b := newLogBuilder("node-a", "fuzz", cgroups)
		name := b.add(&e, when)
		ld := b.take()
		if ld.LogRecordCount() == 0 {
			return // a record the builder drops (counted by the reader), not an event
		}
		if _, known := unifiedevent.Lookup(string(name)); !known {
			t.Fatalf("kind %d became %q, not a catalogue event", e.Kind, name)
		}
		rec := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
		if rec.Body().Str() == "" {
			t.Fatalf("kind %d: an event without a narrative", e.Kind)
		}
	})
}
