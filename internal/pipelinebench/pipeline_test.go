// Package pipelinebench measures the Tapio trace pipeline in process — unifiedevent processor →
// correlation connector → impact exporter, as the shipped configs chain them — on healthy
// traffic and in an error storm, so the cost an error adds per span shows without the noise of
// gRPC and of a second process.
package pipelinebench

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/yairfalse/tapio/connector/correlationconnector"
	"github.com/yairfalse/tapio/exporter/impactexporter"
	"github.com/yairfalse/tapio/processor/unifiedeventprocessor"
)

// batchSpans is what an OpenTelemetry SDK's batch span processor sends per export by default.
const batchSpans = 512

// checkoutTraces makes n spans of a payment service in traces of two: a SERVER span
// `POST /api/checkout` and its CLIENT call to ledger-db (10.0.0.7:5432). A trace fails — both
// spans in error, the call with error.type, the server with 500 — when failed(trace) says so.
// With interleaved, a trace's two spans are n/2 apart in the batch, as in the batches of an
// exporter that many workers share (telemetrygen's); otherwise side by side.
func checkoutTraces(seed, n int, end time.Time, interleaved bool, failed func(trace int) bool) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	res := rs.Resource().Attributes()
	res.PutStr("service.name", "checkout")
	res.PutStr("service.instance.id", "checkout-7d9f-1")
	res.PutStr("host.name", "node-1")
	spans := ptrace.NewSpanSlice()
	for t := 0; t < n/2; t++ {
		trace := seed*n + t
		var tid pcommon.TraceID
		copy(tid[:], fmt.Sprintf("%016x", trace))
		bad := failed(trace)

		server := spans.AppendEmpty()
		server.SetTraceID(tid)
		server.SetSpanID(pcommon.SpanID{1, byte(t), byte(t >> 8), 0, 0, 0, 0, 1})
		server.SetKind(ptrace.SpanKindServer)
		server.SetName("POST /api/checkout")
		server.SetStartTimestamp(pcommon.NewTimestampFromTime(end.Add(-40 * time.Millisecond)))
		server.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
		sa := server.Attributes()
		sa.PutStr("http.request.method", "POST")
		sa.PutStr("http.route", "/api/checkout")
		sa.PutStr("url.path", "/api/checkout")
		sa.PutStr("enduser.id", fmt.Sprintf("user-%d", trace%997))
		sa.PutInt("http.response.status_code", 200)

		client := spans.AppendEmpty()
		client.SetTraceID(tid)
		client.SetSpanID(pcommon.SpanID{2, byte(t), byte(t >> 8), 0, 0, 0, 0, 2})
		client.SetParentSpanID(server.SpanID())
		client.SetKind(ptrace.SpanKindClient)
		client.SetName("INSERT ledger")
		client.SetStartTimestamp(pcommon.NewTimestampFromTime(end.Add(-30 * time.Millisecond)))
		client.SetEndTimestamp(pcommon.NewTimestampFromTime(end.Add(-5 * time.Millisecond)))
		ca := client.Attributes()
		ca.PutStr("db.system.name", "postgresql")
		ca.PutStr("server.address", "10.0.0.7")
		ca.PutInt("server.port", 5432)
		if bad {
			sa.PutInt("http.response.status_code", 500)
			sa.PutStr("error.type", "500")
			server.Status().SetCode(ptrace.StatusCodeError)
			ca.PutStr("error.type", "connection_refused")
			client.Status().SetCode(ptrace.StatusCodeError)
			client.Status().SetMessage("dial tcp 10.0.0.7:5432: connect: connection refused")
		}
	}
	out := rs.ScopeSpans().AppendEmpty().Spans()
	for i := 0; i < spans.Len(); i++ {
		k := i
		if interleaved {
			k = 2*(i%(n/2)) + i/(n/2) // servers first, then clients, each in trace order
		}
		spans.At(k).CopyTo(out.AppendEmpty())
	}
	return td
}

// telemetrygenTraces makes n spans shaped as telemetrygen v0.145.0 sends them (its traces
// command, one child span): per trace a SERVER span "okey-dokey-0" and its parent, a CLIENT span
// "lets-go", each with network.peer.address 1.2.3.4 and a peer.service, the child ending first,
// and every span in error when failed(trace) says so.
func telemetrygenTraces(seed, n int, end time.Time, failed func(trace int) bool) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("telemetrygen")
	spans := ss.Spans()
	// span appends one of telemetrygen's spans: both of a trace start and end together.
	span := func(tid pcommon.TraceID, id pcommon.SpanID, kind ptrace.SpanKind, name, peerService string, failed bool) ptrace.Span {
		sp := spans.AppendEmpty()
		sp.SetTraceID(tid)
		sp.SetSpanID(id)
		sp.SetKind(kind)
		sp.SetName(name)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(end.Add(-123 * time.Microsecond)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
		sp.Attributes().PutStr("network.peer.address", "1.2.3.4")
		sp.Attributes().PutStr("peer.service", peerService)
		if failed {
			sp.Status().SetCode(ptrace.StatusCodeError)
		}
		return sp
	}
	for t := 0; t < n/2; t++ {
		trace := seed*n + t
		var tid pcommon.TraceID
		copy(tid[:], fmt.Sprintf("%016x", trace))
		parentID := pcommon.SpanID{1, byte(t), byte(t >> 8), 0, 0, 0, 0, 1}
		bad := failed(trace)
		child := span(tid, pcommon.SpanID{2, byte(t), byte(t >> 8), 0, 0, 0, 0, 2}, ptrace.SpanKindServer, "okey-dokey-0", "telemetrygen-client", bad)
		child.SetParentSpanID(parentID)
		span(tid, parentID, ptrace.SpanKindClient, "lets-go", "telemetrygen-server", bad)
	}
	return td
}

// paymentLogs makes n log records of a payment service; error(i) says which are errors (with
// trace context, as an OpenTelemetry log bridge writes them).
func paymentLogs(seed, n int, at time.Time, isError func(i int) bool) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	res := rl.Resource().Attributes()
	res.PutStr("service.name", "payment")
	res.PutStr("service.instance.id", "payment-5c4f-2")
	res.PutStr("host.name", "node-1")
	records := rl.ScopeLogs().AppendEmpty().LogRecords()
	for i := 0; i < n; i++ {
		rec := records.AppendEmpty()
		rec.SetTimestamp(pcommon.NewTimestampFromTime(at))
		var tid pcommon.TraceID
		copy(tid[:], fmt.Sprintf("%016x", seed*n+i))
		rec.SetTraceID(tid)
		rec.SetSpanID(pcommon.SpanID{3, byte(i), byte(i >> 8), 0, 0, 0, 0, 3})
		rec.Attributes().PutStr("code.function.name", "chargeCard")
		if isError(i) {
			rec.SetSeverityNumber(plog.SeverityNumberError)
			rec.SetSeverityText("ERROR")
			rec.Body().SetStr(fmt.Sprintf("charge %d failed: ledger-db 10.0.0.7:5432: connection refused", seed*n+i))
			rec.Attributes().PutStr("error.type", "connection_refused")
			continue
		}
		rec.SetSeverityNumber(plog.SeverityNumberInfo)
		rec.SetSeverityText("INFO")
		rec.Body().SetStr(fmt.Sprintf("charge %d accepted", seed*n+i))
	}
	return ld
}

// pipeline is the shipped path of one signal, started, in process.
type pipeline struct {
	traces consumer.Traces
	logs   consumer.Logs
	stop   func()
}

// setup is how a pipeline is configured: with the connector's write-ahead log or in memory, and with full or minimal span annotation. shipped is distributions/standalone's.
type setup struct {
	name       string
	persisted  bool
	annotation unifiedeventprocessor.SpanAnnotation
}

var setups = []setup{
	{"", false, unifiedeventprocessor.AnnotateFull},
	{"_persisted", true, unifiedeventprocessor.AnnotateFull},
	{"_shipped", true, unifiedeventprocessor.AnnotateMinimal},
}

// newPipeline starts the shipped path as s configures it.
func newPipeline(b *testing.B, s setup) pipeline {
	ctx := context.Background()
	host := componenttest.NewNopHost()

	ef := impactexporter.NewFactory()
	ecfg := ef.CreateDefaultConfig().(*impactexporter.Config)
	ecfg.Storage.Directory = b.TempDir()
	ecfg.HTTP.NetAddr.Endpoint = "127.0.0.1:0"
	exp, err := ef.CreateLogs(ctx, exportertest.NewNopSettings(ef.Type()), ecfg)
	if err != nil {
		b.Fatal(err)
	}
	cf := correlationconnector.NewFactory()
	ccfg := cf.CreateDefaultConfig().(*correlationconnector.Config)
	ccfg.DecisionWait = 2 * time.Second // as distributions/standalone
	if s.persisted {
		ccfg.WriteAheadLog.Directory = b.TempDir()
	}
	connSet := connectortest.NewNopSettings(cf.Type())
	tracesConn, err := cf.CreateTracesToLogs(ctx, connSet, ccfg, exp)
	if err != nil {
		b.Fatal(err)
	}
	logsConn, err := cf.CreateLogsToLogs(ctx, connSet, ccfg, exp)
	if err != nil {
		b.Fatal(err)
	}
	pf := unifiedeventprocessor.NewFactory()
	procSet := processortest.NewNopSettings(pf.Type())
	pcfg := pf.CreateDefaultConfig().(*unifiedeventprocessor.Config)
	pcfg.Spans.Annotation = s.annotation
	tracesProc, err := pf.CreateTraces(ctx, procSet, pcfg, tracesConn)
	if err != nil {
		b.Fatal(err)
	}
	logsProc, err := pf.CreateLogs(ctx, procSet, pcfg, logsConn)
	if err != nil {
		b.Fatal(err)
	}
	// Started as the collector starts a pipeline: exporters first, receivers' side last.
	started := []component.Component{exp, tracesConn, logsConn, tracesProc, logsProc}
	for _, c := range started {
		if err := c.Start(ctx, host); err != nil {
			b.Fatal(err)
		}
	}
	return pipeline{traces: tracesProc, logs: logsProc, stop: func() {
		for i := len(started) - 1; i >= 0; i-- {
			_ = started[i].Shutdown(ctx)
		}
	}}
}

// codec is how a batch travels: as OTLP protobuf, as the receiver decodes it.
type codec[T any] struct {
	marshal   func(T) ([]byte, error)
	unmarshal func([]byte) (T, error)
}

var (
	tracesCodec = codec[ptrace.Traces]{(&ptrace.ProtoMarshaler{}).MarshalTraces, (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces}
	logsCodec   = codec[plog.Logs]{(&plog.ProtoMarshaler{}).MarshalLogs, (&plog.ProtoUnmarshaler{}).UnmarshalLogs}
)

// runBatches sends pre-built batches and reports items/s; one op is one item (span or log
// record). Each batch is decoded from its OTLP bytes with the timer stopped, so that it is fresh
// (processing may mutate it) and shaped as the receiver hands it over — attribute slices grown
// by appends, as the decoder grows them, not copied to their exact length.
//
// fresh, when set, gives a decoded batch ids of its own for the round it is sent in, with the
// timer stopped: real traffic brings new traces, and the connector's span store then holds many,
// not the few of the pre-built batches.
func runBatches[T any](b *testing.B, build func(seed int) T, c codec[T], fresh func(T, int), consume func(context.Context, T) error, unit string) {
	const distinct = 64
	sources := make([][]byte, distinct)
	for i := range sources {
		raw, err := c.marshal(build(i))
		if err != nil {
			b.Fatal(err)
		}
		sources[i] = raw
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for done, i := 0, 0; done < b.N; done, i = done+batchSpans, i+1 {
		b.StopTimer()
		batch, err := c.unmarshal(sources[i%distinct])
		if err != nil {
			b.Fatal(err)
		}
		if fresh != nil {
			fresh(batch, i)
		}
		b.StartTimer()
		if err := consume(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit)
}

func runTraces(b *testing.B, s setup, interleaved bool, failed func(trace int) bool) {
	now := time.Now()
	runTraceBatches(b, s, func(seed int) ptrace.Traces { return checkoutTraces(seed, batchSpans, now, interleaved, failed) })
}

func runTraceBatches(b *testing.B, s setup, build func(seed int) ptrace.Traces) {
	p := newPipeline(b, s)
	defer p.stop()
	runBatches(b, build, tracesCodec, freshTraceIDs, p.traces.ConsumeTraces, "spans/s")
}

// freshTraceIDs makes the high half of every trace id the round's: unique per round, the same
// for the spans of one trace.
func freshTraceIDs(td ptrace.Traces, round int) {
	high := uint64(round+1) * 0x9E3779B97F4A7C15
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				span := spans.At(k)
				tid := span.TraceID()
				binary.LittleEndian.PutUint64(tid[:8], high^binary.LittleEndian.Uint64(tid[:8]))
				span.SetTraceID(tid)
			}
		}
	}
}

func runLogs(b *testing.B, s setup, isError func(i int) bool) {
	p := newPipeline(b, s)
	defer p.stop()
	now := time.Now()
	runBatches(b, func(seed int) plog.Logs { return paymentLogs(seed, batchSpans, now, isError) },
		logsCodec, nil, p.logs.ConsumeLogs, "records/s")
}

// BenchmarkTracePipeline: healthy traffic (one trace in a hundred fails) and an error storm
// (every trace fails; and telemetrygen's spans, every one failed) through processor → connector → exporter: in memory with full span
// annotation, with the connector's write-ahead log (_persisted), and as
// distributions/standalone ships it, persisted with minimal annotation (_shipped). Run with
// -cpu 1: the connector's flush and the exporter's store work on their own goroutines, and on one
// core their time lands in ns/op too.
func BenchmarkTracePipeline(b *testing.B) {
	for _, s := range setups {
		b.Run("healthy"+s.name, func(b *testing.B) { runTraces(b, s, false, func(t int) bool { return t%100 == 0 }) })
		b.Run("error_storm"+s.name, func(b *testing.B) { runTraces(b, s, false, func(int) bool { return true }) })
		b.Run("error_storm_interleaved"+s.name, func(b *testing.B) { runTraces(b, s, true, func(int) bool { return true }) })
		b.Run("telemetrygen_storm"+s.name, func(b *testing.B) {
			now := time.Now()
			runTraceBatches(b, s, func(seed int) ptrace.Traces {
				return telemetrygenTraces(seed, batchSpans, now, func(int) bool { return true })
			})
		})
	}
}

// BenchmarkLogPipeline: info logs, and application error logs (every record an error) through
// processor → connector → exporter, set up as BenchmarkTracePipeline. Run with -cpu 1.
func BenchmarkLogPipeline(b *testing.B) {
	for _, s := range setups {
		b.Run("info"+s.name, func(b *testing.B) { runLogs(b, s, func(int) bool { return false }) })
		b.Run("error_logs"+s.name, func(b *testing.B) { runLogs(b, s, func(int) bool { return true }) })
	}
}
