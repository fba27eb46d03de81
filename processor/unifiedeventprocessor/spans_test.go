package unifiedeventprocessor

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
	"github.com/yairfalse/tapio/processor/unifiedeventprocessor/internal/metadata"
)

type spanSpec struct {
	kind   ptrace.SpanKind
	status ptrace.StatusCode
	took   time.Duration
	attrs  map[string]any
}

func oneSpan(service string, s spanSpec) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", service)
	span := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	span.SetName("POST /api/pay")
	span.SetTraceID(testTraceID)
	span.SetSpanID(testSpanID)
	span.SetKind(s.kind)
	span.Status().SetCode(s.status)
	start := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	took := s.took
	if took == 0 {
		took = 10 * time.Millisecond
	}
	span.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	span.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(took)))
	_ = span.Attributes().FromRaw(s.attrs)
	return td
}

func TestSpanAnnotation(t *testing.T) {
	server, client, internal := ptrace.SpanKindServer, ptrace.SpanKindClient, ptrace.SpanKindInternal
	unset, failed := ptrace.StatusCodeUnset, ptrace.StatusCodeError
	tests := []struct {
		name string
		span spanSpec
		want unifiedevent.Name
	}{
		{"server HTTP 500", spanSpec{server, unset, 0, map[string]any{"http.response.status_code": int64(500)}}, unifiedevent.ServerError},
		{"server HTTP 503 legacy key", spanSpec{server, unset, 0, map[string]any{"http.status_code": int64(503)}}, unifiedevent.ServerError},
		{"server HTTP 404 is the client's fault", spanSpec{server, unset, 0, map[string]any{"http.response.status_code": int64(404)}}, ""},
		{"server gRPC UNAVAILABLE", spanSpec{server, unset, 0, map[string]any{"rpc.system": "grpc", "rpc.grpc.status_code": int64(14)}}, unifiedevent.ServerError},
		{"server gRPC NOT_FOUND is not a server error", spanSpec{server, unset, 0, map[string]any{"rpc.system": "grpc", "rpc.grpc.status_code": int64(5)}}, ""},
		{"server status Error", spanSpec{server, failed, 0, nil}, unifiedevent.ServerError},
		{"client HTTP in error", spanSpec{client, failed, 0, map[string]any{"http.response.status_code": int64(502)}}, unifiedevent.DependencyError},
		{"client DB in error", spanSpec{client, failed, 0, map[string]any{"db.system.name": "postgresql"}}, unifiedevent.DependencyError},
		{"client gRPC NOT_FOUND", spanSpec{client, unset, 0, map[string]any{"rpc.grpc.status_code": int64(5)}}, unifiedevent.DependencyError},
		{"client with error.type", spanSpec{client, unset, 0, map[string]any{"error.type": "java.net.ConnectException"}}, unifiedevent.DependencyError},
		{"client OK", spanSpec{client, unset, 0, map[string]any{"http.response.status_code": int64(200)}}, ""},
		{"client HTTP 503, old keys only", spanSpec{client, unset, 0, map[string]any{"http.status_code": int64(503), "net.peer.name": "payment", "net.peer.port": int64(8080), "http.method": "POST"}}, unifiedevent.DependencyError},
		{"client: the current status key outranks the old one", spanSpec{client, unset, 0, map[string]any{"http.status_code": int64(503), "http.response.status_code": int64(200)}}, ""},
		{"slow internal span", spanSpec{internal, unset, 3 * time.Second, nil}, unifiedevent.SlowSpan},
		{"fast internal span", spanSpec{internal, unset, time.Second, nil}, ""},
		{"an error outranks slowness", spanSpec{server, failed, 5 * time.Second, nil}, unifiedevent.ServerError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, defaultConfig())
			out := h.consumeTraces(t, oneSpan("checkout", tt.span))
			span := out.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
			attrs := unifiedevent.Of(span.Attributes())
			if attrs.Name() != string(tt.want) {
				t.Fatalf("event.name = %q, want %q", attrs.Name(), tt.want)
			}
			if tt.want == "" {
				if span.Attributes().Len() != len(tt.span.attrs) {
					t.Errorf("an unremarkable span must be untouched: %v", span.Attributes().AsRaw())
				}
				return
			}
			if attrs.EntityID() != "checkout" || attrs.EventID() != unifiedevent.SpanEventIDString(testTraceID, testSpanID) || attrs.Source() != "otlp" {
				t.Errorf("attributes = %v", span.Attributes().AsRaw())
			}
			if l, _ := attrs.Layer(); l != unifiedevent.LayerTrace {
				t.Errorf("layer = %v", l)
			}
			if span.TraceID() != testTraceID {
				t.Error("trace id changed")
			}
			scope := out.ResourceSpans().At(0).ScopeSpans().At(0).Scope()
			if v, ok := scope.Attributes().Get(unifiedevent.KeySchemaVersion); !ok || v.Int() != 1 {
				t.Error("scope lacks the schema version")
			}
			if n := h.counter(t, "otelcol_processor_unifiedevent_records_normalized", "layer", "trace"); n != 1 {
				t.Errorf("normalized{layer=trace} = %d", n)
			}
		})
	}
}

// With spans.annotation minimal a failed span gets its name and nothing else: its layer and
// category follow from the catalogue, its event id from its trace and span ids, its entity from
// its resource — and the schema's readers answer all four.
func TestMinimalSpanAnnotation(t *testing.T) {
	cfg := defaultConfig()
	cfg.Spans.Annotation = AnnotateMinimal
	h := newHarness(t, cfg)
	spec := spanSpec{ptrace.SpanKindClient, ptrace.StatusCodeError, 3 * time.Second, map[string]any{"db.system.name": "postgresql"}}
	in := oneSpan("checkout", spec)
	resource := pcommon.NewMap()
	in.ResourceSpans().At(0).Resource().Attributes().CopyTo(resource)
	out := h.consumeTraces(t, in)
	span := out.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	got := span.Attributes().AsRaw()
	want := map[string]any{
		"db.system.name":          "postgresql",
		unifiedevent.KeyEventName: string(unifiedevent.DependencyError),
	}
	if len(got) != len(want) {
		t.Fatalf("attributes = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if id, ok := unifiedevent.SpanEventID(span.TraceID(), span.SpanID()); !ok || id == [16]byte{} {
		t.Errorf("a span with a trace id must have a derived event id, got %x, %v", id, ok)
	}
	if e := unifiedevent.EntityID(resource, span.Attributes()); e != "checkout" {
		t.Errorf("entity by the rule = %q, want checkout (the resource's service)", e)
	}
	attrs := unifiedevent.Of(span.Attributes())
	if l, ok := attrs.Layer(); !ok || l != unifiedevent.LayerTrace {
		t.Errorf("layer = %v, %v; want trace from the catalogue", l, ok)
	}
	if c := attrs.Category(); c != unifiedevent.CategoryError {
		t.Errorf("category = %q, want error from the catalogue", c)
	}
	if attrs.Source() != "" {
		t.Errorf("source = %q: a minimal annotation names none", attrs.Source())
	}
}

// A span without a trace id has no event id to derive: minimal annotation writes a fresh one.
func TestMinimalSpanAnnotationWithoutTraceID(t *testing.T) {
	cfg := defaultConfig()
	cfg.Spans.Annotation = AnnotateMinimal
	h := newHarness(t, cfg)
	in := oneSpan("checkout", spanSpec{ptrace.SpanKindServer, ptrace.StatusCodeError, 0, nil})
	in.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).SetTraceID(pcommon.NewTraceIDEmpty())
	out := h.consumeTraces(t, in)
	attrs := unifiedevent.Of(out.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes())
	if attrs.Name() != string(unifiedevent.ServerError) || !unifiedevent.ValidEventID(attrs.EventID()) {
		t.Errorf("attributes = %v, want server_error with a fresh event id", attrs.Map().AsRaw())
	}
}

func TestSlowThresholdsBySpecificity(t *testing.T) {
	cfg := defaultConfig()
	cfg.Spans.SlowThreshold = 0 // no default: only rules apply
	cfg.Spans.SlowThresholds = []SlowThreshold{
		{Service: "checkout", Threshold: 800 * time.Millisecond},
		{Route: "/api/pay", Threshold: 400 * time.Millisecond},
		{Service: "checkout", Route: "/api/pay", Threshold: 200 * time.Millisecond},
	}
	tests := []struct {
		service, route string
		took           time.Duration
		wantMs         int64 // 0 = not slow
	}{
		{"checkout", "/api/pay", 250 * time.Millisecond, 200},
		{"checkout", "/api/cart", 700 * time.Millisecond, 0},
		{"checkout", "/api/cart", 900 * time.Millisecond, 800},
		{"payment", "/api/pay", 450 * time.Millisecond, 400},
		{"payment", "/other", time.Hour, 0},
	}
	h := newHarness(t, cfg)
	for _, tt := range tests {
		out := h.consumeTraces(t, oneSpan(tt.service, spanSpec{ptrace.SpanKindServer, ptrace.StatusCodeOk, tt.took, map[string]any{"http.route": tt.route}}))
		span := out.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
		v, ok := span.Attributes().Get(unifiedevent.KeyTraceLatencyThresholdMs)
		switch {
		case tt.wantMs == 0 && ok:
			t.Errorf("%s %s %s: marked slow with threshold %d ms", tt.service, tt.route, tt.took, v.Int())
		case tt.wantMs != 0 && (!ok || v.Int() != tt.wantMs):
			t.Errorf("%s %s %s: threshold %v, want %d ms", tt.service, tt.route, tt.took, v.AsRaw(), tt.wantMs)
		}
	}
}

func TestAnnotatedSpansAreNotAnnotatedTwice(t *testing.T) {
	h := newHarness(t, defaultConfig())
	td := oneSpan("checkout", spanSpec{ptrace.SpanKindServer, ptrace.StatusCodeError, 0, nil})
	first := h.consumeTraces(t, td)
	id := unifiedevent.Of(first.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes()).EventID()
	second := h.consumeTraces(t, first)
	if got := unifiedevent.Of(second.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes()).EventID(); got != id {
		t.Errorf("event id changed on a second pass: %s → %s", id, got)
	}
}

func TestMetricsGetEntityIDOnResourceOnly(t *testing.T) {
	sink := new(consumertest.MetricsSink)
	p, err := NewFactory().CreateMetrics(context.Background(), processortest.NewNopSettings(metadata.Type), defaultConfig(), sink)
	if err != nil {
		t.Fatal(err)
	}
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("k8s.pod.uid", "pod-9")
	rm.Resource().Attributes().PutStr("service.name", "ledger-db")
	g := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	g.SetName("container.memory.usage")
	dp := g.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetIntValue(61 << 20)
	ex := dp.Exemplars().AppendEmpty()
	ex.SetTraceID(testTraceID)
	ex.SetIntValue(61 << 20)
	want := pmetric.NewMetrics()
	md.CopyTo(want)

	if err := p.ConsumeMetrics(context.Background(), md); err != nil {
		t.Fatal(err)
	}
	got := sink.AllMetrics()[0]
	res := got.ResourceMetrics().At(0).Resource().Attributes()
	if id := unifiedevent.StringAttribute(res, unifiedevent.KeyEntityID); id != "pod-9" {
		t.Errorf("entity id = %q, want pod-9", id)
	}
	res.Remove(unifiedevent.KeyEntityID)
	gotDP := got.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints().At(0)
	wantDP := want.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints().At(0)
	if gotDP.IntValue() != wantDP.IntValue() || gotDP.Exemplars().Len() != 1 || gotDP.Exemplars().At(0).TraceID() != testTraceID {
		t.Error("data points or exemplars changed")
	}
}
