//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

const normalizeConfig = `
extensions:
  health_check:
    endpoint: 127.0.0.1:%[1]d
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%[2]d
processors:
  unifiedevent:
    spans:
      slow_threshold: 2s
      slow_thresholds:
        - service: checkout
          route: /api/report
          threshold: 500ms
exporters:
  file/logs:
    path: %[3]s
    flush_interval: 100ms
  file/traces:
    path: %[4]s
    flush_interval: 100ms
service:
  extensions: [health_check]
  pipelines:
    logs:
      receivers: [otlp]
      processors: [unifiedevent]
      exporters: [file/logs]
    traces:
      receivers: [otlp]
      processors: [unifiedevent]
      exporters: [file/traces]
  telemetry:
    metrics:
      level: detailed
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: %[5]d
`

// checkoutWorkload is what the instrumented "checkout" application did, as its SDK saw it.
type checkoutWorkload struct {
	failedTraceID                      trace.TraceID
	failedServerSpan, failedClientSpan trace.SpanID
	okSpan, slowSpan                   trace.SpanID
}

func TestOTLPThroughUnifiedEventProcessor(t *testing.T) {
	healthPort, otlpPort, metricsPort := freePort(t), freePort(t), freePort(t)
	dir := t.TempDir()
	logsFile, tracesFile := filepath.Join(dir, "logs.jsonl"), filepath.Join(dir, "traces.jsonl")
	collector := startCollector(t, fmt.Sprintf(normalizeConfig, healthPort, otlpPort, logsFile, tracesFile, metricsPort), healthPort)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	endpoint := fmt.Sprintf("127.0.0.1:%d", otlpPort)
	work := runCheckoutApplication(ctx, t, endpoint)
	sendKubernetesEvent(ctx, t, endpoint)

	var spans map[trace.SpanID]ptraceSpan
	eventually(t, 20*time.Second, func() error {
		traces, err := readTraces(tracesFile)
		if err != nil {
			return err
		}
		spans = indexSpans(traces)
		if len(spans) < 4 {
			return fmt.Errorf("%d spans written, want 4", len(spans))
		}
		return nil
	})
	assertSpanEvent(t, spans[work.failedServerSpan], unifiedevent.ServerError)
	assertSpanEvent(t, spans[work.failedClientSpan], unifiedevent.DependencyError)
	assertSpanEvent(t, spans[work.slowSpan], unifiedevent.SlowSpan)
	if v, _ := spans[work.slowSpan].attrs.Get(unifiedevent.KeyTraceLatencyThresholdMs); v.Int() != 500 {
		t.Errorf("slow span threshold = %d ms, want the route rule's 500", v.Int())
	}
	if ok := spans[work.okSpan]; ok.attrs.Len() != 3 {
		t.Errorf("a successful fast span must be left as the SDK sent it, has %v", ok.attrs.AsRaw())
	}

	var records map[string][]logRecord
	eventually(t, 20*time.Second, func() error {
		logs, err := readLogs(logsFile)
		if err != nil {
			return err
		}
		records = indexLogs(logs)
		for _, want := range []string{string(unifiedevent.ErrorLog), string(unifiedevent.Exception), string(unifiedevent.CrashLoopBackOff), ""} {
			if len(records[want]) == 0 {
				return fmt.Errorf("no %q record written yet", want)
			}
		}
		return nil
	})

	errorLog := records[string(unifiedevent.ErrorLog)][0]
	if errorLog.rec.TraceID() != pcommon.TraceID(work.failedTraceID) || errorLog.rec.SpanID() != pcommon.SpanID(work.failedServerSpan) {
		t.Errorf("error_log lost its trace context: trace %s span %s", errorLog.rec.TraceID(), errorLog.rec.SpanID())
	}
	assertLogEvent(t, errorLog, "checkout", unifiedevent.LayerApplication)
	if errorLog.rec.Body().Str() != "checkout failed: payment answered 503" {
		t.Errorf("error_log body = %q: the application's message must be kept", errorLog.rec.Body().Str())
	}
	assertLogEvent(t, records[string(unifiedevent.Exception)][0], "checkout", unifiedevent.LayerApplication)
	if plain := records[""][0]; plain.rec.Body().Str() != "cart loaded" || plain.rec.Attributes().Len() != 0 {
		t.Errorf("an INFO log must pass untouched, got body %q attributes %v", plain.rec.Body().Str(), plain.rec.Attributes().AsRaw())
	}

	kube := records[string(unifiedevent.CrashLoopBackOff)][0]
	assertLogEvent(t, kube, "9d3f6c1e-6a43-4b8e-8f0a-3c2d1b0a9f8e", unifiedevent.LayerKubernetes)
	for key, want := range map[string]string{unifiedevent.KeyK8sPodName: "ledger-db-0", unifiedevent.KeyK8sNamespaceName: "shop",
		unifiedevent.KeyK8sNodeName: "node-a", unifiedevent.KeyK8sContainerName: "ledger-db"} {
		if got := unifiedevent.StringAttribute(kube.resource, key); got != want {
			t.Errorf("kubernetes event resource %s = %q, want %q", key, got, want)
		}
	}
	if got := kube.rec.Timestamp().AsTime(); !got.Equal(time.Date(2026, 11, 25, 3, 4, 30, 0, time.UTC)) {
		t.Errorf("kubernetes event time = %s, want the Event's lastTimestamp", got)
	}

	eventually(t, 10*time.Second, func() error {
		for layer, min := range map[string]float64{"trace": 3, "application": 2, "kubernetes": 1} {
			got, err := scrape(ctx, metricsPort, "otelcol_processor_unifiedevent_records_normalized", `layer="`+layer+`"`)
			if err != nil {
				return err
			}
			if got < min {
				return fmt.Errorf("records_normalized{layer=%s} = %g, want ≥ %g", layer, got, min)
			}
		}
		return nil
	})
	collector.stop(t)
}

// runCheckoutApplication plays the checkout service with the OpenTelemetry Go SDK: a request that
// fails because its payment call fails (logging an error inside the request), one that succeeds,
// one slow report, and two logs outside any request.
func runCheckoutApplication(ctx context.Context, t *testing.T, endpoint string) checkoutWorkload {
	t.Helper()
	res := sdkresource.NewSchemaless(attribute.String("service.name", "checkout"))
	traceExporter, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(endpoint), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	tracerProvider := sdktrace.NewTracerProvider(sdktrace.WithBatcher(traceExporter), sdktrace.WithResource(res))
	logExporter, err := otlploggrpc.New(ctx, otlploggrpc.WithEndpoint(endpoint), otlploggrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	loggerProvider := sdklog.NewLoggerProvider(sdklog.WithProcessor(sdklog.NewBatchProcessor(logExporter)), sdklog.WithResource(res))
	tracer := tracerProvider.Tracer("checkout")
	logger := loggerProvider.Logger("checkout")

	var work checkoutWorkload
	reqCtx, server, client := startFailedCheckout(ctx, tracer)
	var failure otellog.Record
	failure.SetSeverity(otellog.SeverityError)
	failure.SetSeverityText("ERROR")
	failure.SetBody(otellog.StringValue("checkout failed: payment answered 503"))
	logger.Emit(reqCtx, failure)
	endFailedCheckout(server)
	work.failedTraceID = server.SpanContext().TraceID()
	work.failedServerSpan = server.SpanContext().SpanID()
	work.failedClientSpan = client.SpanContext().SpanID()

	_, ok := tracer.Start(ctx, "GET /api/cart", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", "GET"), attribute.String("http.route", "/api/cart"), attribute.Int("http.response.status_code", 200)))
	ok.End()
	work.okSpan = ok.SpanContext().SpanID()

	start := time.Now().Add(-time.Second)
	_, slow := tracer.Start(ctx, "GET /api/report", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start),
		trace.WithAttributes(attribute.String("http.route", "/api/report"), attribute.Int("http.response.status_code", 200)))
	slow.End(trace.WithTimestamp(start.Add(800 * time.Millisecond)))
	work.slowSpan = slow.SpanContext().SpanID()

	var info otellog.Record
	info.SetSeverity(otellog.SeverityInfo)
	info.SetBody(otellog.StringValue("cart loaded"))
	logger.Emit(ctx, info)
	var exception otellog.Record
	exception.SetSeverity(otellog.SeverityWarn)
	exception.AddAttributes(otellog.String("exception.type", "ConnectionRefusedError"), otellog.String("exception.message", "ledger-db:5432 refused"))
	logger.Emit(ctx, exception)

	if err := tracerProvider.Shutdown(ctx); err != nil {
		t.Fatalf("flushing spans to the collector: %v", err)
	}
	if err := loggerProvider.Shutdown(ctx); err != nil {
		t.Fatalf("flushing logs to the collector: %v", err)
	}
	return work
}

// sendKubernetesEvent sends, over OTLP, a record shaped exactly as the k8sobjects receiver emits a
// watched core/v1 Event (the receiver itself needs an API server, which this machine lacks).
func sendKubernetesEvent(ctx context.Context, t *testing.T, endpoint string) {
	t.Helper()
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("k8s.namespace.name", "shop")
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("github.com/open-telemetry/opentelemetry-collector-contrib/receiver/k8sobjectsreceiver")
	rec := sl.LogRecords().AppendEmpty()
	rec.SetObservedTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	rec.Attributes().PutStr("k8s.resource.name", "events")
	rec.Attributes().PutStr("event.domain", "k8s")
	rec.Attributes().PutStr("event.name", "ledger-db-0.187b2c3d4e5f6a7b")
	err := rec.Body().SetEmptyMap().FromRaw(map[string]any{
		"type": "MODIFIED",
		"object": map[string]any{
			"apiVersion": "v1", "kind": "Event", "type": "Warning", "reason": "BackOff",
			"message":  "Back-off restarting failed container ledger-db in pod ledger-db-0_shop(9d3f6c1e-6a43-4b8e-8f0a-3c2d1b0a9f8e)",
			"metadata": map[string]any{"name": "ledger-db-0.187b2c3d4e5f6a7b", "namespace": "shop", "uid": "0b7c2f9e-1d2a-4c3b-9e8f-7a6b5c4d3e2f"},
			"involvedObject": map[string]any{"apiVersion": "v1", "kind": "Pod", "name": "ledger-db-0", "namespace": "shop",
				"uid": "9d3f6c1e-6a43-4b8e-8f0a-3c2d1b0a9f8e", "fieldPath": "spec.containers{ledger-db}"},
			"source":         map[string]any{"component": "kubelet", "host": "node-a"},
			"firstTimestamp": "2026-11-25T03:01:00Z", "lastTimestamp": "2026-11-25T03:04:30Z", "count": int64(4),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := plogotlp.NewGRPCClient(conn).Export(ctx, plogotlp.NewExportRequestFromLogs(ld)); err != nil {
		t.Fatalf("exporting the Kubernetes event: %v", err)
	}
}

type ptraceSpan struct {
	resource pcommon.Map
	attrs    pcommon.Map
}

type logRecord struct {
	resource pcommon.Map
	rec      plog.LogRecord
}

func indexSpans(batches []ptrace.Traces) map[trace.SpanID]ptraceSpan {
	out := map[trace.SpanID]ptraceSpan{}
	for _, td := range batches {
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			rs := td.ResourceSpans().At(i)
			for j := 0; j < rs.ScopeSpans().Len(); j++ {
				spans := rs.ScopeSpans().At(j).Spans()
				for k := 0; k < spans.Len(); k++ {
					out[trace.SpanID(spans.At(k).SpanID())] = ptraceSpan{resource: rs.Resource().Attributes(), attrs: spans.At(k).Attributes()}
				}
			}
		}
	}
	return out
}

// indexLogs groups written records by event.name ("" for records that are not events).
func indexLogs(batches []plog.Logs) map[string][]logRecord {
	out := map[string][]logRecord{}
	for _, ld := range batches {
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			rl := ld.ResourceLogs().At(i)
			for j := 0; j < rl.ScopeLogs().Len(); j++ {
				records := rl.ScopeLogs().At(j).LogRecords()
				for k := 0; k < records.Len(); k++ {
					name := unifiedevent.Of(records.At(k).Attributes()).Name()
					out[name] = append(out[name], logRecord{resource: rl.Resource().Attributes(), rec: records.At(k)})
				}
			}
		}
	}
	return out
}

func assertSpanEvent(t *testing.T, span ptraceSpan, want unifiedevent.Name) {
	t.Helper()
	if span.attrs == (pcommon.Map{}) {
		t.Errorf("the %s span was not written", want)
		return
	}
	attrs := unifiedevent.Of(span.attrs)
	if attrs.Name() != string(want) {
		t.Errorf("span event.name = %q, want %q (attributes %v)", attrs.Name(), want, span.attrs.AsRaw())
		return
	}
	if _, err := attrs.Validate(); err != nil {
		t.Errorf("%s span: %v", want, err)
	}
	if attrs.EntityID() != "checkout" || attrs.Source() != "otlp" {
		t.Errorf("%s span: entity %q source %q", want, attrs.EntityID(), attrs.Source())
	}
}

func assertLogEvent(t *testing.T, r logRecord, entity string, layer unifiedevent.Layer) {
	t.Helper()
	attrs := unifiedevent.Of(r.rec.Attributes())
	if _, err := attrs.Validate(); err != nil {
		t.Errorf("%s: %v", attrs.Name(), err)
	}
	if !unifiedevent.ValidEventID(attrs.EventID()) {
		t.Errorf("%s: event id %q", attrs.Name(), attrs.EventID())
	}
	if got, _ := attrs.Layer(); got != layer {
		t.Errorf("%s: layer %s, want %s", attrs.Name(), got, layer)
	}
	if attrs.EntityID() != entity {
		t.Errorf("%s: entity %q, want %q", attrs.Name(), attrs.EntityID(), entity)
	}
}

// startFailedCheckout starts a checkout request (a SERVER span) whose call to payment (a CLIENT
// child) fails with 503 and has ended; the caller ends the request with endFailedCheckout.
func startFailedCheckout(ctx context.Context, tracer trace.Tracer) (reqCtx context.Context, server, client trace.Span) {
	reqCtx, server = tracer.Start(ctx, "POST /api/checkout", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", "POST"), attribute.String("http.route", "/api/checkout")))
	_, client = tracer.Start(reqCtx, "POST", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("server.address", "payment"), attribute.Int("server.port", 8080)))
	client.SetAttributes(attribute.Int("http.response.status_code", 503))
	client.SetStatus(codes.Error, "payment unavailable")
	client.End()
	return reqCtx, server, client
}

// endFailedCheckout ends a checkout request that failed with 500.
func endFailedCheckout(server trace.Span) {
	server.SetAttributes(attribute.Int("http.response.status_code", 500))
	server.SetStatus(codes.Error, "")
	server.End()
}
