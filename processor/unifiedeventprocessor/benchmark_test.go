package unifiedeventprocessor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
	"github.com/yairfalse/tapio/processor/unifiedeventprocessor/internal/metadata"
)

// Each benchmark processes batches of benchBatch records and counts one op per record, so ns/op
// and allocs/op read per record. Inputs that processing consumes are re-copied with the timer
// (and allocation accounting) stopped.
const benchBatch = 1000

func benchNormalizer(b *testing.B) *normalizer {
	n, err := newNormalizer(processortest.NewNopSettings(metadata.Type), defaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// consumeCopies hands process a fresh copy of source per batch of benchBatch records (processing
// consumes its input), copying with the timer and allocation accounting stopped.
func consumeCopies[T interface{ CopyTo(T) }](b *testing.B, source T, fresh func() T, process func(context.Context, T) (T, error)) {
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += benchBatch {
		b.StopTimer()
		batch := fresh()
		source.CopyTo(batch)
		b.StartTimer()
		if _, err := process(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkPassThroughNormalisedEvents(b *testing.B) {
	n := benchNormalizer(b)
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("container.id", "3f1c0ffee")
	rl.Resource().Attributes().PutInt(unifiedevent.KeyProcessPID, 4242)
	records := rl.ScopeLogs().AppendEmpty().LogRecords()
	for i := 0; i < benchBatch; i++ {
		rec := records.AppendEmpty()
		rec.Body().SetStr("Kernel OOM killer killed ledger-db (pid 4242): memory cgroup limit 64 MiB reached")
		m := rec.Attributes()
		m.PutStr(unifiedevent.KeyEventName, string(unifiedevent.ConnectionRefused))
		m.PutStr(unifiedevent.KeyEventID, unifiedevent.NewEventID())
		m.PutStr(unifiedevent.KeyLayer, "network")
		m.PutStr(unifiedevent.KeyCategory, "network")
		m.PutStr(unifiedevent.KeyEntityID, "3f1c0ffee")
		m.PutStr(unifiedevent.KeySource, "ebpf")
		m.PutStr(unifiedevent.KeyDestinationAddress, "10.0.0.7")
		m.PutInt(unifiedevent.KeyDestinationPort, 5432)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += benchBatch {
		if _, err := n.processLogs(ctx, ld); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

func kubernetesEventBody(i int) map[string]any {
	return map[string]any{"apiVersion": "v1", "kind": "Event", "type": "Warning", "reason": "BackOff",
		"message":        "Back-off restarting failed container payment",
		"metadata":       map[string]any{"name": fmt.Sprintf("payment-%d.17a3f0c2b1e4d5a6", i%50), "namespace": "shop", "uid": fmt.Sprintf("ev-%d", i)},
		"involvedObject": map[string]any{"kind": "Pod", "name": fmt.Sprintf("payment-%d", i%50), "namespace": "shop", "uid": fmt.Sprintf("pod-%d", i%50), "fieldPath": "spec.containers{payment}"},
		"source":         map[string]any{"component": "kubelet", "host": "node-a"},
		"firstTimestamp": "2026-11-25T03:00:00Z", "lastTimestamp": "2026-11-25T03:04:30Z", "count": int64(7)}
}

// BenchmarkKubernetesEventObjects: pull mode, a batch of 1000 Events about 50 pods in one
// namespace resource, regrouped into one resource per pod.
func BenchmarkKubernetesEventObjects(b *testing.B) {
	n := benchNormalizer(b)
	source := plog.NewLogs()
	rl := source.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("k8s.namespace.name", "shop")
	records := rl.ScopeLogs().AppendEmpty().LogRecords()
	for i := 0; i < benchBatch; i++ {
		rec := records.AppendEmpty()
		rec.Attributes().PutStr("k8s.resource.name", "events")
		_ = rec.Body().SetEmptyMap().FromRaw(kubernetesEventBody(i))
	}
	consumeCopies(b, source, plog.NewLogs, n.processLogs)
}

// BenchmarkKubernetesEventWatch: watch mode, where the receiver sends each Event in a call of
// its own, rewritten in place.
func BenchmarkKubernetesEventWatch(b *testing.B) {
	n := benchNormalizer(b)
	sources := make([]plog.Logs, benchBatch)
	for i := range sources {
		sources[i] = plog.NewLogs()
		rl := sources[i].ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr("k8s.namespace.name", "shop")
		rec := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		rec.Attributes().PutStr("k8s.resource.name", "events")
		rec.Attributes().PutStr("event.domain", "k8s")
		rec.Attributes().PutStr("event.name", "payment.17a3f0c2b1e4d5a6")
		_ = rec.Body().SetEmptyMap().FromRaw(map[string]any{"type": "MODIFIED", "object": kubernetesEventBody(i)})
	}
	batch := make([]plog.Logs, benchBatch)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += benchBatch {
		b.StopTimer()
		for i := range batch {
			batch[i] = plog.NewLogs()
			sources[i].CopyTo(batch[i])
		}
		b.StartTimer()
		for i := range batch {
			if _, err := n.processLogs(ctx, batch[i]); err != nil {
				b.Fatal(err)
			}
		}
	}
	reportRate(b)
}

// BenchmarkSpanAnnotation runs a realistic mix: 10 % failed SERVER spans, 5 % failed CLIENT spans,
// 2 % slow spans, the rest unremarkable.
func BenchmarkSpanAnnotation(b *testing.B) {
	n := benchNormalizer(b)
	source := ptrace.NewTraces()
	rs := source.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	rs.Resource().Attributes().PutStr("k8s.pod.uid", "pod-1")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	start := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	for i := 0; i < benchBatch; i++ {
		span := spans.AppendEmpty()
		span.SetName("POST /api/checkout")
		span.SetTraceID(pcommon.TraceID{byte(i), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
		span.SetSpanID(pcommon.SpanID{byte(i), 1, 2, 3, 4, 5, 6, 7})
		took := 20 * time.Millisecond
		attrs := span.Attributes()
		attrs.PutStr("http.request.method", "POST")
		attrs.PutStr("http.route", "/api/checkout")
		attrs.PutStr("url.scheme", "http")
		attrs.PutStr("server.address", "checkout")
		attrs.PutInt("server.port", 8080)
		switch {
		case i%10 == 0:
			span.SetKind(ptrace.SpanKindServer)
			attrs.PutInt("http.response.status_code", 500)
			span.Status().SetCode(ptrace.StatusCodeError)
		case i%20 == 1:
			span.SetKind(ptrace.SpanKindClient)
			attrs.PutInt("http.response.status_code", 503)
			span.Status().SetCode(ptrace.StatusCodeError)
		case i%50 == 2:
			span.SetKind(ptrace.SpanKindServer)
			attrs.PutInt("http.response.status_code", 200)
			took = 3 * time.Second
		default:
			span.SetKind(ptrace.SpanKindServer)
			attrs.PutInt("http.response.status_code", 200)
		}
		span.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		span.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(took)))
	}
	consumeCopies(b, source, ptrace.NewTraces, n.processTraces)
}

func BenchmarkApplicationErrorLogs(b *testing.B) {
	n := benchNormalizer(b)
	source := plog.NewLogs()
	rl := source.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "payment")
	records := rl.ScopeLogs().AppendEmpty().LogRecords()
	for i := 0; i < benchBatch; i++ {
		rec := records.AppendEmpty()
		rec.SetSeverityNumber(plog.SeverityNumberInfo)
		if i%5 == 0 {
			rec.SetSeverityNumber(plog.SeverityNumberError)
		}
		rec.Body().SetStr("charge failed: ledger-db unreachable")
		rec.Attributes().PutStr("code.function", "charge")
	}
	consumeCopies(b, source, plog.NewLogs, n.processLogs)
}
