package unifiedevent_test

import (
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

func TestCatalogueNamesFollowLayerConvention(t *testing.T) {
	seen := map[unifiedevent.Name]bool{}
	for _, d := range unifiedevent.Catalogue() {
		if seen[d.Name] {
			t.Errorf("%s is in the catalogue twice", d.Name)
		}
		seen[d.Name] = true
		prefix := "tapio." + d.Layer.String() + "."
		if !strings.HasPrefix(string(d.Name), prefix) {
			t.Errorf("%s should start with %s", d.Name, prefix)
		}
		got, ok := unifiedevent.Lookup(string(d.Name))
		if !ok || got != d {
			t.Errorf("Lookup(%s) = %+v, %v", d.Name, got, ok)
		}
	}
	if _, ok := unifiedevent.Lookup(string(unifiedevent.CorrelationName)); ok {
		t.Error("tapio.correlation must not be a catalogue event")
	}
}

func TestEntityIDRule(t *testing.T) {
	tests := []struct {
		name             string
		resource, record map[string]any
		want             string
	}{
		{"pod uid wins over everything", map[string]any{"k8s.pod.uid": "pod-1", "container.id": "c1", "service.name": "svc"}, nil, "pod-1"},
		{"container id next", map[string]any{"container.id": "c1", "service.name": "svc", "host.name": "h"}, map[string]any{"process.pid": int64(7)}, "c1"},
		{"host and pid", map[string]any{"host.name": "node-a", "service.name": "svc"}, map[string]any{"process.pid": int64(4242)}, "node-a/4242"},
		{"a service cgroup names the workload", map[string]any{"host.name": "node-a", "tapio.workload.cgroup": "postgresql@15-main.service"},
			map[string]any{"process.pid": int64(4242), "tapio.workload.pid": int64(812)}, "node-a/postgresql@15-main.service"},
		{"a pre-fork worker is its listener's", map[string]any{"host.name": "node-a"}, map[string]any{"process.pid": int64(4242), "tapio.workload.pid": int64(812)}, "node-a/812"},
		{"a container still wins over the process tree", map[string]any{"container.id": "c1", "host.name": "node-a", "tapio.workload.cgroup": "x.service"},
			map[string]any{"tapio.workload.pid": int64(812)}, "c1"},
		{"pid as string", map[string]any{"host.name": "node-a"}, map[string]any{"process.pid": "17"}, "node-a/17"},
		{"service name", map[string]any{"service.name": "checkout", "host.name": "h"}, nil, "checkout"},
		{"record beats resource", map[string]any{"container.id": "res"}, map[string]any{"container.id": "rec"}, "rec"},
		{"workload uid", map[string]any{"k8s.deployment.uid": "dep-1", "k8s.node.name": "n"}, nil, "dep-1"},
		{"node name", map[string]any{"k8s.node.name": "node-3"}, nil, "node-3"},
		{"host name alone", map[string]any{"host.name": "laptop"}, nil, "laptop"},
		{"nothing", nil, nil, ""},
		{"empty pod uid is skipped", map[string]any{"k8s.pod.uid": "", "service.name": "svc"}, nil, "svc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, rec := pcommon.NewMap(), pcommon.NewMap()
			_ = res.FromRaw(tt.resource)
			_ = rec.FromRaw(tt.record)
			if got := unifiedevent.EntityID(res, rec); got != tt.want {
				t.Errorf("EntityID = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEventIDShapeAndUniqueness(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 10000; i++ {
		id := unifiedevent.NewEventID()
		if !unifiedevent.ValidEventID(id) {
			t.Fatalf("malformed event id %q", id)
		}
		if seen[id] {
			t.Fatalf("event id %q repeated", id)
		}
		seen[id] = true
	}
	for _, bad := range []string{"", "xyz", strings.Repeat("A", 32), strings.Repeat("0", 31)} {
		if unifiedevent.ValidEventID(bad) {
			t.Errorf("ValidEventID(%q) = true", bad)
		}
	}
}

func TestValidateAndComplete(t *testing.T) {
	res := pcommon.NewMap()
	res.PutStr("container.id", "abc")

	m := pcommon.NewMap()
	m.PutStr("event.name", string(unifiedevent.OOMKill))
	attrs := unifiedevent.Of(m)
	def, err := attrs.Validate()
	if err != nil {
		t.Fatal(err)
	}
	if n := attrs.Complete(def, res); n != 4 {
		t.Errorf("Complete wrote %d keys, want 4 (layer, category, id, entity)", n)
	}
	if attrs.EntityID() != "abc" || attrs.Category() != unifiedevent.CategoryMemory {
		t.Errorf("completed attributes: %v", m.AsRaw())
	}
	if l, ok := attrs.Layer(); !ok || l != unifiedevent.LayerKernel {
		t.Errorf("layer = %v", l)
	}
	id := attrs.EventID()
	if n := attrs.Complete(def, res); n != 0 || attrs.EventID() != id {
		t.Errorf("a second Complete must change nothing; wrote %d", n)
	}

	m.PutStr("tapio.layer", "trace")
	if _, err := attrs.Validate(); err == nil || !strings.Contains(err.Error(), "disagrees") {
		t.Errorf("layer mismatch not reported: %v", err)
	}
	m.PutStr("event.name", "tapio.kernel.made_up")
	if _, err := attrs.Validate(); err == nil || !strings.Contains(err.Error(), "not in the UnifiedEvent v1 catalogue") {
		t.Errorf("unknown name not reported: %v", err)
	}
}

func TestTruncateKeepsRunesWhole(t *testing.T) {
	s := strings.Repeat("é", 100) // 2 bytes each
	got := unifiedevent.Truncate(s, 11)
	if len(got) > 11 || !strings.HasSuffix(got, "…") || !strings.HasPrefix(got, "éééé") {
		t.Errorf("Truncate = %q (%d bytes)", got, len(got))
	}
	if unifiedevent.Truncate("short", 10) != "short" {
		t.Error("a short string must not change")
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 64 << 20: "64 MiB", 3 << 29: "1.5 GiB", 1 << 10: "1 KiB"} {
		if got := unifiedevent.FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestKubernetesNarrative(t *testing.T) {
	got := unifiedevent.KubernetesNarrative("Warning", "BackOff", "Pod", "shop", "checkout-1", "Back-off restarting failed container ", 5)
	want := "Kubernetes Warning BackOff on Pod shop/checkout-1: Back-off restarting failed container (seen 5 times)"
	if got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestSeverityText(t *testing.T) {
	for sev, want := range map[plog.SeverityNumber]string{
		plog.SeverityNumberUnspecified: "", plog.SeverityNumberTrace2: "TRACE", plog.SeverityNumberDebug: "DEBUG",
		plog.SeverityNumberInfo3: "INFO", plog.SeverityNumberWarn: "WARN", plog.SeverityNumberError4: "ERROR", plog.SeverityNumberFatal: "FATAL",
	} {
		if got := unifiedevent.SeverityText(sev); got != want {
			t.Errorf("SeverityText(%v) = %q, want %q", sev, got, want)
		}
	}
}

// IsEntityKey must name every key the entity-id rule reads: a record with any other key has its
// resource's entity, whatever the value (callers derive that once per resource).
func TestIsEntityKeyCoversTheEntityRule(t *testing.T) {
	resource := pcommon.NewMap()
	resource.PutStr(unifiedevent.KeyServiceName, "checkout")
	resource.PutStr(unifiedevent.KeyHostName, "node-1")
	want := unifiedevent.ResourceEntityID(resource)
	if want != "checkout" {
		t.Fatalf("ResourceEntityID = %q, want checkout", want)
	}
	readers := 0
	for _, spec := range unifiedevent.KeySpecs() {
		for _, value := range []func(pcommon.Map){
			func(m pcommon.Map) { m.PutStr(spec.Key, "x-1") },
			func(m pcommon.Map) { m.PutInt(spec.Key, 4242) },
		} {
			record := pcommon.NewMap()
			value(record)
			got := unifiedevent.EntityID(resource, record)
			if got != want && !unifiedevent.IsEntityKey(spec.Key) {
				t.Errorf("EntityID reads %s (entity %q), but IsEntityKey(%q) is false", spec.Key, got, spec.Key)
			}
			if got != want {
				readers++
			}
		}
	}
	if readers == 0 {
		t.Fatal("no key changed the entity: the test reads nothing")
	}
}

func TestEventIDsAreFreshAcrossBlocks(t *testing.T) {
	var ids unifiedevent.EventIDs
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ { // several blocks
		id := ids.Next()
		if !unifiedevent.ValidEventID(id) {
			t.Fatalf("malformed event id %q", id)
		}
		if seen[id] {
			t.Fatalf("event id %q repeated after %d ids", id, i)
		}
		seen[id] = true
	}
}

// A span's event id is its trace and span ids', the same each time it is read; the spans of one
// trace each have their own, and the id does not show the trace id's bytes.
func TestSpanEventIDIsDerivedFromTheSpan(t *testing.T) {
	trace := pcommon.TraceID{0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c}
	seen := map[string]uint64{}
	for s := uint64(1); s <= 5000; s++ {
		var span pcommon.SpanID
		for i := range span {
			span[i] = byte(s >> (8 * (7 - i)))
		}
		id := unifiedevent.SpanEventIDString(trace, span)
		if !unifiedevent.ValidEventID(id) {
			t.Fatalf("span %d: malformed event id %q", s, id)
		}
		if again := unifiedevent.SpanEventIDString(trace, span); again != id {
			t.Fatalf("span %d: event id %s, then %s", s, id, again)
		}
		if other, dup := seen[id]; dup {
			t.Fatalf("spans %d and %d of one trace share event id %s", other, s, id)
		}
		seen[id] = s
		raw, _ := unifiedevent.SpanEventID(trace, span)
		if [8]byte(raw[:8]) == [8]byte(trace[:8]) || [8]byte(raw[8:]) == [8]byte(trace[8:]) {
			t.Fatalf("span %d: event id %s shows half the trace id %s", s, id, trace)
		}
	}
	var otherTrace pcommon.TraceID
	copy(otherTrace[:], trace[:])
	otherTrace[15] ^= 1
	span := pcommon.SpanID{0, 0, 0, 0, 0, 0, 0, 1}
	if unifiedevent.SpanEventIDString(trace, span) == unifiedevent.SpanEventIDString(otherTrace, span) {
		t.Error("one span id in two traces gave one event id")
	}
	if id, ok := unifiedevent.SpanEventID(pcommon.NewTraceIDEmpty(), span); ok || unifiedevent.SpanEventIDString(pcommon.NewTraceIDEmpty(), span) != "" {
		t.Errorf("a span without a trace id has no derived event id, got %x", id)
	}
}

func TestEventFactsAreReadFromTheRecordThenTheResource(t *testing.T) {
	res, rec := pcommon.NewMap(), pcommon.NewMap()
	res.PutInt(unifiedevent.KeyProcessPID, 4242)
	res.PutStr(unifiedevent.KeyProcessExecutableName, "ledger-db")
	if pid, ok := unifiedevent.EventInt(res, rec, unifiedevent.KeyProcessPID); !ok || pid != 4242 {
		t.Errorf("process.pid from the resource = %d, %v", pid, ok)
	}
	rec.PutInt(unifiedevent.KeyProcessPID, 7)
	if pid, _ := unifiedevent.EventInt(res, rec, unifiedevent.KeyProcessPID); pid != 7 {
		t.Errorf("the record's process.pid must win: %d", pid)
	}
	if name := unifiedevent.EventString(res, rec, unifiedevent.KeyProcessExecutableName); name != "ledger-db" {
		t.Errorf("process.executable.name = %q", name)
	}
	if _, ok := unifiedevent.EventInt(res, rec, unifiedevent.KeyProcessParentPID); ok {
		t.Error("an absent key must read as absent")
	}
}
