package unifiedeventprocessor

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

var (
	testTraceID = pcommon.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	testSpanID  = pcommon.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
)

func appLogs(service string, fill func(rec plog.LogRecord)) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", service)
	fill(rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty())
	return ld
}

func TestApplicationLogs(t *testing.T) {
	tests := []struct {
		name     string
		fill     func(plog.LogRecord)
		wantName string // "" = passed on untouched
		wantBody string
	}{
		{"ERROR severity", func(r plog.LogRecord) {
			r.SetSeverityNumber(plog.SeverityNumberError)
			r.Body().SetStr("payment declined: ledger unreachable")
		}, string(unifiedevent.ErrorLog), "payment declined: ledger unreachable"},
		{"FATAL severity", func(r plog.LogRecord) { r.SetSeverityNumber(plog.SeverityNumberFatal2) }, string(unifiedevent.ErrorLog), ""},
		{"severity text only", func(r plog.LogRecord) { r.SetSeverityText("error") }, string(unifiedevent.ErrorLog), ""},
		{"WARN is not an error", func(r plog.LogRecord) { r.SetSeverityNumber(plog.SeverityNumberWarn4) }, "", ""},
		{"exception attributes win at any severity", func(r plog.LogRecord) {
			r.SetSeverityNumber(plog.SeverityNumberInfo)
			r.Attributes().PutStr("exception.type", "java.net.ConnectException")
			r.Attributes().PutStr("exception.message", "Connection refused")
		}, string(unifiedevent.Exception), ""},
		{"exception with an empty body gets a sentence", func(r plog.LogRecord) {
			r.Attributes().PutStr("exception.type", "ValueError")
			r.Attributes().PutStr("exception.message", "bad amount")
		}, string(unifiedevent.Exception), "Exception ValueError: bad amount"},
		{"INFO passes untouched", func(r plog.LogRecord) { r.SetSeverityNumber(plog.SeverityNumberInfo) }, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, defaultConfig())
			ld := appLogs("payment", func(r plog.LogRecord) {
				r.SetTraceID(testTraceID)
				r.SetSpanID(testSpanID)
				tt.fill(r)
			})
			got := h.consumeLogs(t, ld)
			if len(got) != 1 {
				t.Fatalf("got %d records", len(got))
			}
			rec := got[0]
			attrs := unifiedevent.Of(rec.Attributes())
			if rec.TraceID() != testTraceID || rec.SpanID() != testSpanID {
				t.Error("trace context must be kept")
			}
			if tt.wantName == "" {
				if attrs.Name() != "" || attrs.EventID() != "" {
					t.Errorf("record should pass untouched, got %v", rec.Attributes().AsRaw())
				}
				return
			}
			if attrs.Name() != tt.wantName {
				t.Errorf("event.name = %q, want %q", attrs.Name(), tt.wantName)
			}
			if l, _ := attrs.Layer(); l != unifiedevent.LayerApplication || attrs.Category() != unifiedevent.CategoryError {
				t.Errorf("layer/category = %v/%v", l, attrs.Category())
			}
			if attrs.EntityID() != "payment" || attrs.Source() != "otlp" || !unifiedevent.ValidEventID(attrs.EventID()) {
				t.Errorf("attributes = %v", rec.Attributes().AsRaw())
			}
			if tt.wantBody != "" && rec.Body().AsString() != tt.wantBody {
				t.Errorf("body = %q, want %q", rec.Body().AsString(), tt.wantBody)
			}
			if n := h.counter(t, "otelcol_processor_unifiedevent_records_normalized", "layer", "application"); n != 1 {
				t.Errorf("normalized{layer=application} = %d", n)
			}
		})
	}
}

func TestApplicationOwnEventNameIsKept(t *testing.T) {
	h := newHarness(t, defaultConfig())
	got := h.consumeLogs(t, appLogs("checkout", func(r plog.LogRecord) {
		r.SetSeverityNumber(plog.SeverityNumberError)
		r.Attributes().PutStr("event.name", "checkout.payment_failed")
	}))
	if unifiedevent.StringAttribute(got[0].Attributes(), unifiedevent.KeyOriginalEventName) != "checkout.payment_failed" {
		t.Errorf("the application's event.name was lost: %v", got[0].Attributes().AsRaw())
	}
}

func TestUnmatchedLogsDroppedWhenConfigured(t *testing.T) {
	cfg := defaultConfig()
	cfg.Logs.Unmatched = Drop
	h := newHarness(t, cfg)
	ld := appLogs("svc", func(r plog.LogRecord) { r.SetSeverityNumber(plog.SeverityNumberInfo) })
	rec := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().AppendEmpty()
	rec.SetSeverityNumber(plog.SeverityNumberError)
	got := h.consumeLogs(t, ld)
	if len(got) != 1 || unifiedevent.Of(got[0].Attributes()).Name() != string(unifiedevent.ErrorLog) {
		t.Fatalf("want only the error log, got %d records", len(got))
	}
	if n := h.counter(t, "otelcol_processor_unifiedevent_records_dropped", "reason", "unmatched"); n != 1 {
		t.Errorf("dropped{reason=unmatched} = %d", n)
	}
}

// kernelEvent is shaped like the ebpf receiver's output: already a UnifiedEvent, the process it
// is about on the resource.
func kernelEvent(fill func(m pcommon.Map)) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("container.id", "3f1c0ffee")
	rl.Resource().Attributes().PutStr("host.name", "node-a")
	rl.Resource().Attributes().PutInt("process.pid", 4242)
	rec := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	rec.Body().SetStr("Kernel OOM killer killed ledger-db (pid 4242): memory cgroup limit 64 MiB reached")
	m := rec.Attributes()
	m.PutStr("event.name", string(unifiedevent.OOMKill))
	m.PutInt("tapio.kernel.oom.memcg_limit_bytes", 64<<20)
	fill(m)
	return ld
}

// A kernel event's process is on its resource: an entity completed from it is the process's.
func TestEntityIsCompletedFromTheResourcesProcess(t *testing.T) {
	h := newHarness(t, defaultConfig())
	ld := kernelEvent(func(pcommon.Map) {})
	ld.ResourceLogs().At(0).Resource().Attributes().Remove("container.id")
	got := h.consumeLogs(t, ld)
	if len(got) != 1 {
		t.Fatalf("got %d records", len(got))
	}
	if e := unifiedevent.Of(got[0].Attributes()).EntityID(); e != "node-a/4242" {
		t.Errorf("entity id = %q, want node-a/4242 from the resource's host.name and process.pid", e)
	}
}

func TestAlreadyNormalisedEventsAreCompletedNotRewritten(t *testing.T) {
	h := newHarness(t, defaultConfig())
	const id = "0123456789abcdef0123456789abcdef"
	got := h.consumeLogs(t, kernelEvent(func(m pcommon.Map) {
		m.PutStr("tapio.event.id", id)
		m.PutStr("tapio.source", "ebpf")
	}))
	if len(got) != 1 {
		t.Fatalf("got %d records", len(got))
	}
	attrs := unifiedevent.Of(got[0].Attributes())
	if attrs.EventID() != id || attrs.Source() != "ebpf" {
		t.Errorf("existing values rewritten: %v", got[0].Attributes().AsRaw())
	}
	if attrs.EntityID() != "3f1c0ffee" {
		t.Errorf("entity id = %q, want the container id", attrs.EntityID())
	}
	if l, _ := attrs.Layer(); l != unifiedevent.LayerKernel || attrs.Category() != unifiedevent.CategoryMemory {
		t.Errorf("layer and category not completed: %v", got[0].Attributes().AsRaw())
	}
	if got[0].Body().Str() != "Kernel OOM killer killed ledger-db (pid 4242): memory cgroup limit 64 MiB reached" {
		t.Error("body rewritten")
	}
	if n := h.counter(t, "otelcol_processor_unifiedevent_records_normalized", "layer", "kernel"); n != 1 {
		t.Errorf("normalized{layer=kernel} = %d", n)
	}
}

func TestInvalidNormalisedEvents(t *testing.T) {
	tests := []struct {
		name   string
		fill   func(pcommon.Map)
		reason string
	}{
		{"unknown tapio name", func(m pcommon.Map) { m.PutStr("event.name", "tapio.kernel.teleported") }, "unknown_event_name"},
		{"layer disagrees", func(m pcommon.Map) { m.PutStr("tapio.layer", "application") }, "inconsistent_event"},
		{"malformed id", func(m pcommon.Map) { m.PutStr("tapio.event.id", "42") }, "inconsistent_event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, defaultConfig())
			got := h.consumeLogs(t, kernelEvent(tt.fill))
			if len(got) != 1 {
				t.Fatalf("invalid records pass on by default; got %d", len(got))
			}
			if _, ok := got[0].Attributes().Get(unifiedevent.KeyEntityID); ok {
				t.Error("an invalid event must not be completed")
			}
			if n := h.counter(t, "otelcol_processor_unifiedevent_records_invalid", "reason", tt.reason); n != 1 {
				t.Errorf("invalid{reason=%s} = %d", tt.reason, n)
			}
		})
	}
}

func TestCorrelationRecordsPassUntouched(t *testing.T) {
	h := newHarness(t, defaultConfig())
	got := h.consumeLogs(t, kernelEvent(func(m pcommon.Map) { m.PutStr("event.name", string(unifiedevent.CorrelationName)) }))
	if len(got) != 1 || got[0].Attributes().Len() != 2 {
		t.Fatalf("correlation record changed: %v", got[0].Attributes().AsRaw())
	}
	if n := h.counter(t, "otelcol_processor_unifiedevent_records_invalid", "reason", "unknown_event_name"); n != 0 {
		t.Error("a correlation record is not invalid")
	}
}

func TestIncludeAndExclude(t *testing.T) {
	cfg := defaultConfig()
	cfg.Exclude = []string{string(unifiedevent.OOMKill)}
	h := newHarness(t, cfg)
	if got := h.consumeLogs(t, kernelEvent(func(pcommon.Map) {})); len(got) != 0 {
		t.Fatalf("excluded event passed: %d", len(got))
	}
	if n := h.counter(t, "otelcol_processor_unifiedevent_records_dropped", "reason", "excluded"); n != 1 {
		t.Errorf("dropped{reason=excluded} = %d", n)
	}

	cfg = defaultConfig()
	cfg.Include = []string{string(unifiedevent.Exception)}
	h = newHarness(t, cfg)
	if got := h.consumeLogs(t, appLogs("s", func(r plog.LogRecord) { r.SetSeverityNumber(plog.SeverityNumberError) })); len(got) != 0 {
		t.Fatalf("error_log is not included, yet passed")
	}
	if got := h.consumeLogs(t, appLogs("s", func(r plog.LogRecord) { r.Attributes().PutStr("exception.type", "E") })); len(got) != 1 {
		t.Fatalf("included exception dropped")
	}
}
