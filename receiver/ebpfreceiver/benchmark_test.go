package ebpfreceiver

import (
	"encoding/binary"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
	"github.com/yairfalse/tapio/receiver/ebpfreceiver/internal/kernel"
)

// offSocketPayload is where a record's payload starts: after the header and the subject.
const offSocketPayload = 16 + 56

// sampleRecord lays out a ring-buffer record exactly as struct event in bpf/tapio_event.h
// (the layout test in internal/kernel pins those offsets to the compiled object).
func sampleRecord(kind kernel.Kind, pid uint32) []byte {
	raw := make([]byte, kernel.EventSize)
	le := binary.LittleEndian
	le.PutUint64(raw[0:], 1_000_000_000+uint64(pid))
	le.PutUint32(raw[8:], uint32(kind))
	subject := raw[16:]
	le.PutUint32(subject[0:], pid)
	le.PutUint32(subject[4:], pid)
	le.PutUint32(subject[8:], 1)
	le.PutUint64(subject[16:], uint64(pid%64)) // 64 cgroups
	copy(subject[32:], "ledger-db")
	payload := raw[16+56:]
	switch kind {
	case kernel.KindOOMKill:
		le.PutUint64(payload[0:], 64<<20)
		le.PutUint64(payload[8:], 63<<20)
	case kernel.KindProcessExit:
		le.PutUint32(payload[0:], 9)
	case kernel.KindConnectionRefused, kernel.KindConnectionReset:
		le.PutUint16(payload[0:], 2)
		le.PutUint16(payload[2:], 40000)
		le.PutUint16(payload[4:], 5432)
		le.PutUint32(payload[8:], 111)
		copy(payload[16:], []byte{127, 0, 0, 1})
		copy(payload[32:], []byte{10, 0, 0, 7})
	}
	return raw
}

// BenchmarkDecodeAndBatch decodes recorded-shape samples and writes them into plog.Logs as the
// reading loop does, in batches of 512 records or 512 events, whichever comes first; one op is
// one event. Batches of 512 events understate repeat merging (merge_repeats): at a storm's rate a
// real batch holds batch.timeout's worth of events (200 ms: 200,000 at 1M/s), merged into as few
// records as one of 512. Shapes:
//   - storm: what a high event rate is made of — refused connects (and a quarter resets) from 4
//     processes, each in a container of its own. Rates beyond a few thousand events per second come from few
//     processes: a process is created at most a few thousand times per second.
//   - another-process-each: 4 kinds (refused connects, exits, OOM kills) where every event is
//     another process, of 64 containers: the worst case for grouping by process, and nothing
//     merges (each refused connect is another process's).
//   - storm-merge-off: the storm with merge_repeats off, a record per event.
func BenchmarkDecodeAndBatch(b *testing.B) {
	storm := make([][]byte, 1024)
	for i := range storm {
		kind := kernel.KindConnectionRefused
		if i%4 == 3 {
			kind = kernel.KindConnectionReset
		}
		raw := sampleRecord(kind, uint32(1000+i%4))
		// Each connect from its own ephemeral port.
		binary.LittleEndian.PutUint16(raw[offSocketPayload+2:], uint16(32768+i))
		storm[i] = raw
	}
	kinds := []kernel.Kind{kernel.KindConnectionRefused, kernel.KindConnectionRefused, kernel.KindProcessExit, kernel.KindOOMKill}
	mixed := make([][]byte, 1024)
	for i := range mixed {
		mixed[i] = sampleRecord(kinds[i%len(kinds)], uint32(1000+i))
	}
	b.Run("storm", func(b *testing.B) { benchmarkDecodeAndBatch(b, storm, true) })
	b.Run("another-process-each", func(b *testing.B) { benchmarkDecodeAndBatch(b, mixed, true) })
	b.Run("storm-merge-off", func(b *testing.B) { benchmarkDecodeAndBatch(b, storm, false) })
}

func benchmarkDecodeAndBatch(b *testing.B, samples [][]byte, mergeRepeats bool) {
	const container = "cri-containerd-3f1c0ffee0123456789abcdef0123456789abcdef0123456789abcdef0123456.scope"
	var path kernel.CgroupPath
	copy(path[0][:], container)
	copy(path[1][:], "kubepods-burstable-pod6b1c2a4e_0d7a_4c1e_9a55_1f2e3d4c5b6a.slice")
	workloads, err := newWorkloadCgroups(nil, map[string]bool{"/": true})
	if err != nil {
		b.Fatal(err)
	}
	cgroups := newCgroupCache(func(uint64) (kernel.CgroupPath, bool) { return path, true }, workloads, "node-a")
	builder := newLogBuilder("node-a", "bench", cgroups)
	builder.mergeRepeats = mergeRepeats
	var event kernel.Event
	var clock wallClock
	clock.sync()
	const batch = 512
	records, events := 0, 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := event.Decode(samples[i%len(samples)]); err != nil {
			b.Fatal(err)
		}
		builder.add(&event, clock.wall(event.KTimeNs))
		if events++; builder.count >= batch || events >= batch {
			records += builder.count
			_ = builder.take()
			events = 0
		}
	}
	records += builder.count
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(records)/float64(b.N), "records/event")
}

// BenchmarkPdataRecordFloor writes bare log records with the attributes a refused connect carries
// (the 6 UnifiedEvent core keys and 7 connection facts, constant values) and a body, in batches
// of 512, and nothing else: the least such a record costs with pdata — an allocation per
// attribute value — on the machine at hand, to read DecodeAndBatch/storm against.
func BenchmarkPdataRecordFloor(b *testing.B) {
	keys := []string{unifiedevent.KeyEventName, unifiedevent.KeyEventID, unifiedevent.KeyLayer, unifiedevent.KeyCategory,
		unifiedevent.KeySource, unifiedevent.KeyEntityID, unifiedevent.KeyNetworkTransport, unifiedevent.KeyNetworkType,
		unifiedevent.KeySourceAddress, unifiedevent.KeyDestinationAddress, unifiedevent.KeyErrorType}
	intKeys := []string{unifiedevent.KeySourcePort, unifiedevent.KeyDestinationPort}
	ld := plog.NewLogs()
	records := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rec := records.AppendEmpty()
		rec.SetTimestamp(pcommon.Timestamp(i))
		attrs := rec.Attributes()
		attrs.EnsureCapacity(len(keys) + len(intKeys))
		for _, k := range keys {
			attrs.PutStr(k, "value")
		}
		for _, k := range intKeys {
			attrs.PutInt(k, int64(i))
		}
		rec.Body().SetStr("narrative")
		if records.Len() >= 512 {
			ld = plog.NewLogs()
			records = ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
