package ebpfreceiver

import (
	"encoding/binary"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
	"github.com/yairfalse/tapio/receiver/ebpfreceiver/internal/kernel"
)

var repeatEpoch = time.Unix(1_700_000_000, 0)

// refusal is a refused connect of pid from source port sport, as the kernel lays it out.
func refusal(pid uint32, sport uint16) []byte {
	raw := sampleRecord(kernel.KindConnectionRefused, pid)
	binary.LittleEndian.PutUint16(raw[offSocketPayload+2:], sport)
	return raw
}

// timeout is a connect of pid 4242 that timed out with errno err (0: given up by the application).
func timeout(sport uint16, err uint32) []byte {
	raw := refusal(4242, sport)
	binary.LittleEndian.PutUint32(raw[8:], uint32(kernel.KindConnectionTimeout))
	binary.LittleEndian.PutUint32(raw[offSocketPayload+8:], err)
	return raw
}

func addAt(t *testing.T, b *logBuilder, raw []byte, when time.Time) {
	t.Helper()
	var e kernel.Event
	if err := e.Decode(raw); err != nil {
		t.Fatal(err)
	}
	b.add(&e, when)
}

// records lists a batch's records with their resources, in order.
func records(ld plog.Logs) []kernelEvent {
	var out []kernelEvent
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		rl := ld.ResourceLogs().At(i)
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			recs := rl.ScopeLogs().At(j).LogRecords()
			for k := 0; k < recs.Len(); k++ {
				out = append(out, kernelEvent{resource: rl.Resource().Attributes(), record: recs.At(k)})
			}
		}
	}
	return out
}

func eventsIn(ld plog.Logs) int64 {
	var n int64
	for _, e := range records(ld) {
		n += unifiedevent.RepeatCount(e.record.Attributes())
	}
	return n
}

// A refused-connect storm — one process, one peer, one errno, a fresh ephemeral port each time —
// is one record per batch that says how many connects it stands for, when the first and the last
// happened, and otherwise what the first one's record said.
func TestRepeatsOfAConnectionFailureAreOneRecord(t *testing.T) {
	b := testBuilder(t)
	const n = 5
	// Out of order, as records of two CPUs reach the ring buffer: the second is the earliest.
	offsets := []time.Duration{10, 0, 20, 40, 30}
	for i := 0; i < n; i++ {
		addAt(t, b, refusal(4242, uint16(40000+i)), repeatEpoch.Add(offsets[i]*time.Millisecond))
	}
	if merged := b.takeMerged(); merged[kernel.KindConnectionRefused] != n-1 {
		t.Errorf("merged counter: %d refused connects, want %d", merged[kernel.KindConnectionRefused], n-1)
	}
	ld := b.take()
	recs := records(ld)
	if len(recs) != 1 {
		t.Fatalf("%d records for %d repeats of one refusal, want 1", len(recs), n)
	}
	e := recs[0]
	attrs := e.record.Attributes()
	if got := unifiedevent.RepeatCount(attrs); got != n {
		t.Errorf("log_count %d, want %d", got, n)
	}
	if v, ok := attrs.Get(unifiedevent.KeyLogCount); !ok || v.Int() != n {
		t.Errorf("log_count is not the int %d: %v", n, v.AsRaw())
	}
	if got := e.record.Timestamp().AsTime(); !got.Equal(repeatEpoch) {
		t.Errorf("Timestamp %s, want the first occurrence %s", got, repeatEpoch)
	}
	for key, want := range map[string]time.Time{
		unifiedevent.KeyFirstObservedTimestamp: repeatEpoch,
		unifiedevent.KeyLastObservedTimestamp:  repeatEpoch.Add(40 * time.Millisecond),
	} {
		got, err := time.Parse(time.RFC3339, e.str(key))
		if err != nil || !got.Equal(want) {
			t.Errorf("%s = %q (%v), want %s", key, e.str(key), err, want.UTC().Format(time.RFC3339Nano))
		}
	}
	// The first event's values stay: its source port, its id; the rest is what every one said.
	if got := e.int(unifiedevent.KeySourcePort); got != 40000 {
		t.Errorf("source.port %d, want the first connect's 40000", got)
	}
	if e.int(unifiedevent.KeyDestinationPort) != 5432 || e.str(unifiedevent.KeyDestinationAddress) != "10.0.0.7" || e.str(unifiedevent.KeyErrorType) != "ECONNREFUSED" {
		t.Errorf("connection facts: %v", e.attributes())
	}
	if _, err := unifiedevent.Of(attrs).Validate(); err != nil {
		t.Error(err)
	}
	mustContain(t, "narrative", e.record.Body().Str(), "ledger-db (pid 4242)'s connection to 10.0.0.7:5432 was refused")

	// The next batch starts over: a record of its own, counting its own repeats.
	addAt(t, b, refusal(4242, 41000), repeatEpoch.Add(time.Second))
	next := b.take()
	if recs := records(next); len(recs) != 1 || eventsIn(next) != 1 {
		t.Fatalf("next batch: %d records for %d events, want 1 and 1", len(recs), eventsIn(next))
	}
	if _, ok := records(next)[0].record.Attributes().Get(unifiedevent.KeyLogCount); ok {
		t.Error("a record of one event carries log_count")
	}
}

// Only what the record says alike merges: another peer, errno, process, thread, kind, reset
// direction or side is a record of its own.
func TestRepeatsMergeOnlyAlikeFailures(t *testing.T) {
	le := binary.LittleEndian
	variants := map[string]func() []byte{
		"the storm": func() []byte { return refusal(4242, 40001) },
		"another peer port": func() []byte {
			raw := refusal(4242, 40002)
			le.PutUint16(raw[offSocketPayload+4:], 5433)
			return raw
		},
		"another peer address": func() []byte {
			raw := refusal(4242, 40003)
			copy(raw[offSocketPayload+32:], []byte{10, 0, 0, 8})
			return raw
		},
		"another local address": func() []byte {
			raw := refusal(4242, 40004)
			copy(raw[offSocketPayload+16:], []byte{127, 0, 0, 2})
			return raw
		},
		"a timeout":                      func() []byte { return timeout(40008, 110) }, // ETIMEDOUT
		"a timeout of another errno":     func() []byte { return timeout(40009, 113) }, // EHOSTUNREACH
		"a connect given up":             func() []byte { return timeout(40010, 0) },
		"a timeout of the storm's errno": func() []byte { return timeout(40011, 111) },
		"another process":                func() []byte { return refusal(4243, 40005) },
		"another thread": func() []byte {
			raw := refusal(4242, 40006)
			le.PutUint32(raw[16:], 4250)
			return raw
		},
		"another network namespace": func() []byte {
			raw := refusal(4242, 40007)
			le.PutUint32(raw[offSocketPayload+12:], 4026532999)
			return raw
		},
		"a reset received": func() []byte {
			raw := sampleRecord(kernel.KindConnectionReset, 4242)
			le.PutUint16(raw[offSocketPayload+6:], kernel.ResetReceived)
			return raw
		},
		"a reset sent": func() []byte {
			raw := sampleRecord(kernel.KindConnectionReset, 4242)
			le.PutUint16(raw[offSocketPayload+6:], kernel.ResetSent)
			return raw
		},
		"a reset sent by the server side": func() []byte {
			raw := sampleRecord(kernel.KindConnectionReset, 4242)
			le.PutUint16(raw[offSocketPayload+6:], kernel.ResetSent)
			le.PutUint16(raw[offSocketPayload+48:], uint16(kernel.RoleServer))
			return raw
		},
	}
	b := testBuilder(t)
	const each = 3
	for round := 0; round < each; round++ {
		for _, variant := range variants {
			addAt(t, b, variant(), repeatEpoch.Add(time.Duration(round)*time.Millisecond))
		}
	}
	ld := b.take()
	recs := records(ld)
	if len(recs) != len(variants) {
		t.Errorf("%d records for %d distinct failures repeated %d times, want one each", len(recs), len(variants), each)
	}
	for _, e := range recs {
		if got := unifiedevent.RepeatCount(e.record.Attributes()); got != each {
			t.Errorf("log_count %d, want %d: %v", got, each, e.attributes())
		}
	}
	if got := eventsIn(ld); got != each*int64(len(variants)) {
		t.Errorf("the records stand for %d events, want %d", got, each*len(variants))
	}
}

// On the server side the local port is the served one: resets of two served ports are two
// records even to one peer endpoint.
func TestRepeatsKeepTheServedPort(t *testing.T) {
	b := testBuilder(t)
	for _, port := range []uint16{8080, 8081, 8080} {
		raw := sampleRecord(kernel.KindConnectionReset, 4242)
		binary.LittleEndian.PutUint16(raw[offSocketPayload+2:], port)
		binary.LittleEndian.PutUint16(raw[offSocketPayload+48:], uint16(kernel.RoleServer))
		addAt(t, b, raw, repeatEpoch)
	}
	recs := records(b.take())
	if len(recs) != 2 || unifiedevent.RepeatCount(recs[0].record.Attributes()) != 2 || recs[0].int(unifiedevent.KeySourcePort) != 8080 {
		t.Fatalf("%d records; want 2, the first for port 8080 standing for 2", len(recs))
	}
}

// Exits, OOM kills and signals are facts of their own: never merged.
func TestRepeatsLeaveOtherKindsAlone(t *testing.T) {
	b := testBuilder(t)
	for i := 0; i < 3; i++ {
		addAt(t, b, sampleRecord(kernel.KindProcessExit, 4242), repeatEpoch)
		addAt(t, b, sampleRecord(kernel.KindOOMKill, 4242), repeatEpoch)
	}
	if n := len(records(b.take())); n != 6 {
		t.Errorf("%d records for 3 exits and 3 OOM kills, want 6", n)
	}
	if merged := b.takeMerged(); merged != [kernel.KindCount]int64{} {
		t.Errorf("merged counter %v, want nothing", merged)
	}
}

// With merge_repeats off every event is a record.
func TestRepeatsOff(t *testing.T) {
	b := testBuilder(t)
	b.mergeRepeats = false
	for i := 0; i < 4; i++ {
		addAt(t, b, refusal(4242, uint16(40000+i)), repeatEpoch)
	}
	ld := b.take()
	recs := records(ld)
	if len(recs) != 4 || eventsIn(ld) != 4 {
		t.Fatalf("%d records for %d events with merge_repeats off, want 4 and 4", len(recs), eventsIn(ld))
	}
	for i, e := range recs {
		if _, ok := e.record.Attributes().Get(unifiedevent.KeyLogCount); ok || e.int(unifiedevent.KeySourcePort) != int64(40000+i) {
			t.Errorf("record %d: %v", i, e.attributes())
		}
	}
	if merged := b.takeMerged(); merged != [kernel.KindCount]int64{} {
		t.Errorf("merged counter %v with merging off", merged)
	}
}

// startsRun makes raw a record that starts run number on cpu, the run before it having ended
// after ended events.
func startsRun(raw []byte, cpu uint16, number, ended uint32) kernel.Event {
	le := binary.LittleEndian
	le.PutUint16(raw[offSocketPayload+50:], cpu)
	le.PutUint32(raw[offSocketPayload+52:], number)
	le.PutUint32(raw[offSocketPayload+56:], ended)
	var e kernel.Event
	if err := e.Decode(raw); err != nil {
		panic(err)
	}
	return e
}

// The kernel's counted repeats of a run join the batch's record of their key, or make a record
// of their own that stands for them; a run's end, told by the CPU's next run, yields exactly the
// events not accounted for yet, and nothing when a run's record was missed.
func TestKernelCountedRepeats(t *testing.T) {
	runs := newFailureRuns(2)
	first := startsRun(refusal(4242, 50000), 1, 1, 0)
	if ended := runs.started(&first); ended.n != 0 {
		t.Fatalf("the first run of a CPU ended another: %+v", ended)
	}
	b := testBuilder(t)
	b.add(&first, repeatEpoch)
	b.addRepeats(&first, 5, repeatEpoch, repeatEpoch.Add(time.Second))
	recs := records(b.take())
	if len(recs) != 1 || unifiedevent.RepeatCount(recs[0].record.Attributes()) != 6 {
		t.Fatalf("a run's record and 5 counted repeats: %d records, first stands for %d", len(recs), unifiedevent.RepeatCount(recs[0].record.Attributes()))
	}
	b.addRepeats(&first, 3, repeatEpoch.Add(time.Second), repeatEpoch.Add(2*time.Second))
	recs = records(b.take())
	if len(recs) != 1 || unifiedevent.RepeatCount(recs[0].record.Attributes()) != 3 || recs[0].int(unifiedevent.KeyProcessPID) != 4242 {
		t.Fatalf("3 counted repeats in a batch of their own: %d records", len(recs))
	}
	if merged := b.takeMerged()[kernel.KindConnectionRefused]; merged != 5+2 {
		t.Errorf("merged = %d, want 7 (5 into the run's record, 2 into the first of 3)", merged)
	}

	runs.byCPU[1].accounted = 9 // as counted() leaves it after reading 9 events of run 1
	next := startsRun(refusal(4242, 50001), 1, 2, 12)
	if ended := runs.started(&next); ended.n != 3 || ended.like.Subject.TGID != 4242 {
		t.Errorf("run 1 ended at 12 events, 9 accounted for: %+v, want 3 more", ended)
	}
	skipped := startsRun(refusal(4242, 50002), 1, 4, 7)
	if ended := runs.started(&skipped); ended.n != 0 {
		t.Errorf("run 3's record was never read, yet its end yields %d events", ended.n)
	}
	damaged := startsRun(refusal(4242, 50003), 9, 2, 5)
	if ended := runs.started(&damaged); ended.n != 0 || len(runs.byCPU) != 2 {
		t.Errorf("a record of CPU 9 on a machine of 2: %+v, %d CPUs followed", ended, len(runs.byCPU))
	}
}
