package ebpfreceiver

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/yairfalse/tapio/receiver/ebpfreceiver/internal/kernel"
)

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
	case kernel.KindConnectionRefused:
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
// reading loop does; one op is one event.
func BenchmarkDecodeAndBatch(b *testing.B) {
	const container = "cri-containerd-3f1c0ffee0123456789abcdef0123456789abcdef0123456789abcdef0123456.scope"
	kinds := []kernel.Kind{kernel.KindConnectionRefused, kernel.KindConnectionRefused, kernel.KindProcessExit, kernel.KindOOMKill}
	samples := make([][]byte, 1024)
	for i := range samples {
		samples[i] = sampleRecord(kinds[i%len(kinds)], uint32(1000+i))
	}
	var path kernel.CgroupPath
	copy(path[0][:], container)
	copy(path[1][:], "kubepods-burstable-pod6b1c2a4e_0d7a_4c1e_9a55_1f2e3d4c5b6a.slice")
	workloads, err := newWorkloadCgroups(nil, map[string]bool{"/": true})
	if err != nil {
		b.Fatal(err)
	}
	cgroups := newCgroupCache(func(uint64) (kernel.CgroupPath, bool) { return path, true }, workloads, "node-a")
	builder := newLogBuilder("node-a", "bench", cgroups)
	var event kernel.Event
	var clock wallClock
	clock.sync()
	const batch = 512
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := event.Decode(samples[i%len(samples)]); err != nil {
			b.Fatal(err)
		}
		builder.add(&event, clock.wall(event.KTimeNs))
		if builder.count >= batch {
			_ = builder.take()
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	_ = time.Now
}
