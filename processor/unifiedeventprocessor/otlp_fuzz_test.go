package unifiedeventprocessor

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

// FuzzOTLPIntoUnifiedEvents: whatever an application sends over OTLP — log records and spans with
// any attributes, severities, bodies and kinds — what the processor marks as a UnifiedEvent is a
// valid one, and nothing panics.
func FuzzOTLPIntoUnifiedEvents(f *testing.F) {
	f.Add([]byte(`{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}]},"scopeLogs":[{"logRecords":[{"severityNumber":17,"body":{"stringValue":"charge failed"},"attributes":[{"key":"exception.type","value":{"stringValue":"IOError"}}]}]}]}]}`),
		[]byte(`{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"orders"}}]},"scopeSpans":[{"spans":[{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7","kind":3,"name":"pg.connect","startTimeUnixNano":"1","endTimeUnixNano":"9000000000","status":{"code":2},"attributes":[{"key":"net.peer.name","value":{"stringValue":"localhost"}},{"key":"http.status_code","value":{"stringValue":"503"}}]}]}]}]}`))
	f.Add([]byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"attributes":[{"key":"event.name","value":{"stringValue":"tapio.kernel.oom_kill"}}]}]}]}]}`),
		[]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":2,"attributes":[{"key":"rpc.grpc.status_code","value":{"intValue":"14"}},{"key":"event.name","value":{"stringValue":"tapio.bogus"}}]}]}]}]}`))
	h := newHarness(f, defaultConfig())
	f.Fuzz(func(t *testing.T, logsJSON, tracesJSON []byte) {
		if ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(logsJSON); err == nil {
			for _, rec := range h.consumeLogs(t, ld) {
				attrs := unifiedevent.Of(rec.Attributes())
				if attrs.EventID() == "" {
					continue // passed on unchanged: not an event
				}
				if _, err := attrs.Validate(); err != nil {
					t.Fatalf("emitted an invalid event: %v", err)
				}
			}
		}
		if td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(tracesJSON); err == nil {
			out := h.consumeTraces(t, td)
			rss := out.ResourceSpans()
			for i := 0; i < rss.Len(); i++ {
				sss := rss.At(i).ScopeSpans()
				for j := 0; j < sss.Len(); j++ {
					spans := sss.At(j).Spans()
					for k := 0; k < spans.Len(); k++ {
						attrs := unifiedevent.Of(spans.At(k).Attributes())
						if name := attrs.Name(); unifiedevent.IsTapioName(name) && attrs.EventID() != "" {
							if def, ok := unifiedevent.Lookup(name); !ok || def.Layer != unifiedevent.LayerTrace {
								t.Fatalf("a span annotated as %q", name)
							}
						}
					}
				}
			}
		}
	})
}
