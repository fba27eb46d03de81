package ebpfreceiver

import (
	"encoding/binary"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
	"github.com/yairfalse/tapio/receiver/ebpfreceiver/internal/kernel"
)

func testBuilder(t *testing.T) *logBuilder {
	t.Helper()
	workloads, err := newWorkloadCgroups(nil, map[string]bool{"/": true})
	if err != nil {
		t.Fatal(err)
	}
	var path kernel.CgroupPath
	copy(path[0][:], "cri-containerd-3f1c0ffee0123456789abcdef0123456789abcdef0123456789abcdef0123456.scope")
	copy(path[1][:], "kubepods-burstable-pod6b1c2a4e_0d7a_4c1e_9a55_1f2e3d4c5b6a.slice")
	cgroups := newCgroupCache(func(uint64) (kernel.CgroupPath, bool) { return path, true }, workloads, "node-a")
	return newLogBuilder("node-a", "test", cgroups)
}

func addSample(t *testing.T, b *logBuilder, raw []byte) {
	t.Helper()
	var e kernel.Event
	if err := e.Decode(raw); err != nil {
		t.Fatal(err)
	}
	b.add(&e, time.Unix(1_700_000_000, 0))
}

// The process an event is about is written once per batch, on its resource; the record carries
// what differs per event. Readers that look on the record, then on the resource — the entity-id
// rule, the correlation connector — read the same facts as when they were on every record.
func TestRecordsOfOneProcessShareItsResource(t *testing.T) {
	b := testBuilder(t)
	b.mergeRepeats = false // the refusals below would be one record (repeats_test.go)
	for i := 0; i < 3; i++ {
		raw := sampleRecord(kernel.KindConnectionRefused, 4242)
		binary.LittleEndian.PutUint16(raw[offSocketPayload+2:], uint16(40000+i))
		addSample(t, b, raw)
	}
	addSample(t, b, sampleRecord(kernel.KindOOMKill, 4243))
	thread := sampleRecord(kernel.KindConnectionRefused, 4242)
	binary.LittleEndian.PutUint32(thread[16:], 4250) // a thread of 4242
	addSample(t, b, thread)
	ld := b.take()

	if n := ld.ResourceLogs().Len(); n != 2 {
		t.Fatalf("%d resources for two processes, want 2", n)
	}
	first := ld.ResourceLogs().At(0)
	res := first.Resource().Attributes()
	want := map[string]any{
		unifiedevent.KeyHostName: "node-a", unifiedevent.KeyProcessPID: int64(4242), unifiedevent.KeyProcessParentPID: int64(1),
		unifiedevent.KeyProcessExecutableName: "ledger-db", unifiedevent.KeyProcessUserID: int64(0),
		unifiedevent.KeyContainerID: "3f1c0ffee0123456789abcdef0123456789abcdef0123456789abcdef0123456",
		unifiedevent.KeyK8sPodUID:   "6b1c2a4e-0d7a-4c1e-9a55-1f2e3d4c5b6a",
	}
	for k, v := range want {
		got, ok := res.Get(k)
		if !ok || got.AsRaw() != v {
			t.Errorf("resource %s = %v, want %v (resource %v)", k, got.AsRaw(), v, res.AsRaw())
		}
	}
	if _, ok := res.Get(unifiedevent.KeyKernelCgroupPath); !ok {
		t.Errorf("resource lacks %s: %v", unifiedevent.KeyKernelCgroupPath, res.AsRaw())
	}
	records := first.ScopeLogs().At(0).LogRecords()
	if records.Len() != 4 {
		t.Fatalf("%d records on the process's resource, want 4", records.Len())
	}
	ids := map[string]bool{}
	for i := 0; i < records.Len(); i++ {
		rec := records.At(i)
		attrs := rec.Attributes()
		ue := unifiedevent.Of(attrs)
		if _, err := ue.Validate(); err != nil {
			t.Error(err)
		}
		if ue.Source() != "ebpf" || ue.Category() == "" || ids[ue.EventID()] {
			t.Errorf("record %d: source %q category %q id %q (repeated: %v)", i, ue.Source(), ue.Category(), ue.EventID(), ids[ue.EventID()])
		}
		ids[ue.EventID()] = true
		if got, derived := ue.EntityID(), unifiedevent.EntityID(res, attrs); got == "" || got != derived {
			t.Errorf("record %d: tapio.entity.id %q, the entity-id rule gives %q", i, got, derived)
		}
		for _, k := range []string{unifiedevent.KeyProcessPID, unifiedevent.KeyProcessExecutableName, unifiedevent.KeyKernelCgroupPath} {
			if _, ok := attrs.Get(k); ok {
				t.Errorf("record %d repeats the resource's %s", i, k)
			}
		}
		port, _ := attrs.Get(unifiedevent.KeySourcePort)
		if i < 3 && port.Int() != int64(40000+i) {
			t.Errorf("record %d: source.port %d, want %d", i, port.Int(), 40000+i)
		}
		tid, isThread := attrs.Get(unifiedevent.KeyThreadID)
		if isThread != (i == 3) || (isThread && tid.Int() != 4250) {
			t.Errorf("record %d: thread.id %v (present %v)", i, tid.AsRaw(), isThread)
		}
		mustContain(t, "narrative", rec.Body().Str(), "ledger-db (pid 4242)'s connection to 10.0.0.7:5432 was refused")
	}
	if scope := first.ScopeLogs().At(0).Scope(); scope.Name() == "" {
		t.Error("scope has no name")
	} else if v, ok := scope.Attributes().Get(unifiedevent.KeySchemaVersion); !ok || v.Int() != unifiedevent.SchemaVersion {
		t.Errorf("scope lacks %s", unifiedevent.KeySchemaVersion)
	}
	second := ld.ResourceLogs().At(1)
	if pid, _ := second.Resource().Attributes().Get(unifiedevent.KeyProcessPID); pid.Int() != 4243 {
		t.Errorf("the second resource is about pid %d, want 4243", pid.Int())
	}
}

// An event whose process the kernel could not tell goes on a resource of the host alone.
func TestRecordOfAnUnknownProcessNamesTheHost(t *testing.T) {
	b := testBuilder(t)
	raw := sampleRecord(kernel.KindConnectionReset, 4242)
	clear(raw[16 : 16+56]) // no subject: a reset in softirq context with no owner known
	addSample(t, b, raw)
	ld := b.take()
	rl := ld.ResourceLogs().At(0)
	if got := rl.Resource().Attributes().AsRaw(); len(got) != 1 || got[unifiedevent.KeyHostName] != "node-a" {
		t.Errorf("resource %v, want host.name alone", got)
	}
	rec := rl.ScopeLogs().At(0).LogRecords().At(0)
	if got := unifiedevent.Of(rec.Attributes()).EntityID(); got != "node-a" {
		t.Errorf("entity %q, want the host", got)
	}
	mustContain(t, "narrative", rec.Body().Str(), "A connection")
}

// A batch's resources start over after take: a process seen in the last batch gets a resource
// in the next one too.
func TestTakeStartsNewResources(t *testing.T) {
	b := testBuilder(t)
	addSample(t, b, sampleRecord(kernel.KindConnectionRefused, 4242))
	first := b.take()
	addSample(t, b, sampleRecord(kernel.KindConnectionRefused, 4242))
	second := b.take()
	for i, ld := range []plog.Logs{first, second} {
		if ld.ResourceLogs().Len() != 1 || ld.LogRecordCount() != 1 {
			t.Errorf("batch %d: %d resources, %d records; want 1 and 1", i, ld.ResourceLogs().Len(), ld.LogRecordCount())
		}
		if v, _ := ld.ResourceLogs().At(0).Resource().Attributes().Get(unifiedevent.KeyProcessPID); v.Type() != pcommon.ValueTypeInt {
			t.Errorf("batch %d: resource without process.pid", i)
		}
	}
}
