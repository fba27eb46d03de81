package correlationconnector

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/groupbytraceprocessor"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

// The ingest benchmarks count one op per event (span or log record), so ns/op and allocs/op read
// per event. Workloads are built before the timer starts and cycled.

const (
	benchBatch         = 1000
	benchSpansPerTrace = 8
	benchBatches       = 64 // distinct batches cycled through, each with its own trace ids
)

var benchProblemNames = []unifiedevent.Name{unifiedevent.ErrorLog, unifiedevent.ConnectionRefused, unifiedevent.OOMKill, unifiedevent.Exception}

// spanBatch makes n spans in traces of benchSpansPerTrace (a SERVER root, CLIENT children), one
// trace in twenty with a failed SERVER root — the shape of real traffic after the unifiedevent
// processor: most spans unremarkable, a few annotated.
func spanBatch(seed, n int, end time.Time) ptrace.Traces {
	td := ptrace.NewTraces()
	for svc := 0; svc < 4; svc++ {
		rs := td.ResourceSpans().AppendEmpty()
		res := rs.Resource().Attributes()
		res.PutStr(unifiedevent.KeyServiceName, fmt.Sprintf("service-%d", svc))
		res.PutStr(unifiedevent.KeyK8sPodUID, fmt.Sprintf("pod-%d", svc))
		rs.ScopeSpans().AppendEmpty()
	}
	for i := 0; i < n; i++ {
		traceNo := uint64(seed*n+i) / benchSpansPerTrace
		pos := i % benchSpansPerTrace
		svc := pos % 4
		span := td.ResourceSpans().At(svc).ScopeSpans().At(0).Spans().AppendEmpty()
		span.SetTraceID(traceID(traceNo))
		span.SetSpanID(spanID(uint64(pos)))
		span.SetName("GET /api/items")
		span.SetStartTimestamp(pcommon.NewTimestampFromTime(end.Add(-20 * time.Millisecond)))
		span.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
		m := span.Attributes()
		m.PutStr("http.request.method", "GET")
		m.PutStr(unifiedevent.KeyHTTPRoute, "/api/items")
		m.PutInt(unifiedevent.KeyHTTPResponseStatusCode, 200)
		m.PutStr("url.path", "/api/items/42")
		m.PutStr("user_agent.original", "Mozilla/5.0")
		if pos == 0 {
			span.SetKind(ptrace.SpanKindServer)
			if traceNo%20 == 0 {
				m.PutInt(unifiedevent.KeyHTTPResponseStatusCode, 503)
				m.PutStr(unifiedevent.KeyEventName, string(unifiedevent.ServerError))
				m.PutStr(unifiedevent.KeyEventID, unifiedevent.NewEventID())
				m.PutStr(unifiedevent.KeyEntityID, fmt.Sprintf("pod-%d", svc))
				m.PutStr(unifiedevent.KeyEndUserID, fmt.Sprintf("user-%d", traceNo%1000))
			}
		} else {
			span.SetKind(ptrace.SpanKindClient)
			span.SetParentSpanID(spanID(0))
		}
	}
	return td
}

// logBatch makes n UnifiedEvent log records about 50 entities.
func logBatch(seed, n int, at time.Time) plog.Logs {
	ld := plog.NewLogs()
	for e := 0; e < 50; e++ {
		rl := ld.ResourceLogs().AppendEmpty()
		res := rl.Resource().Attributes()
		res.PutStr(unifiedevent.KeyServiceName, fmt.Sprintf("app-%d", e))
		res.PutStr(unifiedevent.KeyK8sPodUID, fmt.Sprintf("app-pod-%d", e))
		res.PutStr(unifiedevent.KeyK8sNamespaceName, "shop")
		res.PutStr(unifiedevent.KeyK8sPodName, fmt.Sprintf("app-%d-7d9", e))
		rl.ScopeLogs().AppendEmpty()
	}
	for i := 0; i < n; i++ {
		e := i % 50
		rec := ld.ResourceLogs().At(e).ScopeLogs().At(0).LogRecords().AppendEmpty()
		rec.SetTimestamp(pcommon.NewTimestampFromTime(at))
		name := benchProblemNames[(seed+i)%len(benchProblemNames)]
		rec.Body().SetStr(fmt.Sprintf("%s in app-%d: request %d failed", name, e, seed*n+i))
		m := rec.Attributes()
		m.PutStr(unifiedevent.KeyEventName, string(name))
		m.PutStr(unifiedevent.KeyEventID, unifiedevent.NewEventID())
		m.PutStr(unifiedevent.KeyLayer, "application")
		m.PutStr(unifiedevent.KeyEntityID, fmt.Sprintf("app-pod-%d", e))
		m.PutStr(unifiedevent.KeyDestinationAddress, "10.0.0.7")
		m.PutInt(unifiedevent.KeyDestinationPort, 5432)
	}
	return ld
}

func benchCorrelator(b *testing.B, cfg *Config) (*correlator, *fakeClock) {
	clk := newFakeClock()
	c, err := newCorrelator(componenttest.NewNopTelemetrySettings(), cfg, clk)
	if err != nil {
		b.Fatal(err)
	}
	c.outputs.add(1, consumertest.NewNop())
	b.Cleanup(func() { _ = c.Shutdown(context.Background()) })
	return c, clk
}

func benchConfig() *Config {
	cfg := defaultConfig()
	cfg.Window = time.Hour // the fake clock barely moves: nothing is late
	cfg.IncidentTimeout = 2 * time.Hour
	return cfg
}

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkIngestMixed: batches of 800 spans and 200 problem log records, one goroutine.
func BenchmarkIngestMixed(b *testing.B) {
	c, clk := benchCorrelator(b, benchConfig())
	spans := make([]ptrace.Traces, benchBatches)
	logs := make([]plog.Logs, benchBatches)
	for i := range spans {
		spans[i] = spanBatch(i, 800, clk.Now())
		logs[i] = logBatch(i, 200, clk.Now())
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for done, i := 0, 0; done < b.N; done, i = done+benchBatch, i+1 {
		_ = c.consumeTraces(ctx, spans[i%benchBatches])
		_ = c.consumeLogs(ctx, logs[i%benchBatches])
	}
	reportRate(b)
}

// BenchmarkIngestMixedParallel: the same on every core, concurrent Consume calls on one state.
func BenchmarkIngestMixedParallel(b *testing.B) {
	c, clk := benchCorrelator(b, benchConfig())
	spans := make([]ptrace.Traces, benchBatches)
	logs := make([]plog.Logs, benchBatches)
	for i := range spans {
		spans[i] = spanBatch(i, 800, clk.Now())
		logs[i] = logBatch(i, 200, clk.Now())
	}
	ctx := context.Background()
	var next sync.Mutex
	batchNo := 0
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for {
			// Each iteration of pb counts one event; consume a batch per benchBatch of them.
			for k := 0; k < benchBatch; k++ {
				if !pb.Next() {
					return
				}
			}
			next.Lock()
			i := batchNo
			batchNo++
			next.Unlock()
			_ = c.consumeTraces(ctx, spans[i%benchBatches])
			_ = c.consumeLogs(ctx, logs[i%benchBatches])
		}
	})
	reportRate(b)
}

// BenchmarkIngestSpans: unremarkable and annotated spans only.
func BenchmarkIngestSpans(b *testing.B) {
	c, clk := benchCorrelator(b, benchConfig())
	spans := make([]ptrace.Traces, benchBatches)
	for i := range spans {
		spans[i] = spanBatch(i, benchBatch, clk.Now())
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for done, i := 0, 0; done < b.N; done, i = done+benchBatch, i+1 {
		_ = c.consumeTraces(ctx, spans[i%benchBatches])
	}
	reportRate(b)
}

// heapInUse returns the live heap after two collections.
func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkStateBytesPerEvent holds 1,000,000 events — 800,000 spans in 100,000 traces and
// 200,000 problem log records — and reports the live heap they take. Batches are built and
// consumed one at a time so that only the state stays live. Run with -benchtime=1x.
func BenchmarkStateBytesPerEvent(b *testing.B) {
	for _, mix := range []struct {
		name        string
		spans, logs int
	}{{"mixed", 800, 200}, {"spans", 1000, 0}, {"problem_events", 0, 1000}} {
		b.Run(mix.name, func(b *testing.B) {
			for n := 0; n < b.N; n++ {
				cfg := benchConfig()
				cfg.MaxEvents = 1_000_000
				cfg.MaxEventsPerIncident = 1_000_000
				c, clk := benchCorrelator(b, cfg)
				ctx := context.Background()
				before := heapInUse()
				const batches = 1000
				for i := 0; i < batches; i++ {
					if mix.spans > 0 {
						_ = c.consumeTraces(ctx, spanBatch(i, mix.spans, clk.Now()))
					}
					if mix.logs > 0 {
						_ = c.consumeLogs(ctx, logBatch(i, mix.logs, clk.Now()))
					}
				}
				after := heapInUse()
				// Failed spans are held twice, as trace structure and as problem events; count them once.
				held := batches * (mix.spans + mix.logs)
				if c.store.len() != batches*mix.spans || c.book.held < batches*mix.logs {
					b.Fatalf("holds %d spans and %d problem events; nothing may be evicted", c.store.len(), c.book.held)
				}
				b.ReportMetric(float64(after-before)/float64(held), "bytes/event")
				b.ReportMetric(float64(after-before)/(1<<20), "MiB-held")
				runtime.KeepAlive(c)
			}
		})
	}
}

// chainIncident loads one incident of n events: an OOM kill, refused connections, and failing
// traces of four spans each (a failed SERVER root over unremarkable spans over a failed CLIENT).
func chainIncident(b *testing.B, c *correlator, clk *fakeClock, n int) {
	ctx := context.Background()
	at := clk.Now()
	_ = c.consumeLogs(ctx, logsOf(
		ev{name: unifiedevent.Listen, entity: "pod-db", service: "db", attrs: map[string]any{unifiedevent.KeySourceAddress: "10.0.0.7", unifiedevent.KeySourcePort: 5432}},
		ev{name: unifiedevent.OOMKill, id: 1, entity: "pod-db", service: "db", body: "Kernel OOM killer killed postgres (pid 4242): memory cgroup limit 64 MiB reached"},
	))
	events := 1
	for i := 0; events < n; i++ {
		tid := traceID(uint64(1000 + i))
		end := at.Sub(scenarioStart) + time.Duration(i)*time.Millisecond
		_ = c.consumeLogs(ctx, logsOf(ev{name: unifiedevent.ConnectionRefused, id: 10000 + i, entity: "pod-pay", service: "payment", at: end,
			attrs: map[string]any{unifiedevent.KeyDestinationAddress: "10.0.0.7", unifiedevent.KeyDestinationPort: 5432}}))
		events++
		if events >= n {
			break
		}
		_ = c.consumeTraces(ctx, tracesOf(
			sp{trace: tid, span: 4, parent: 3, kind: ptrace.SpanKindClient, name: unifiedevent.DependencyError, id: 20000 + i, service: "payment", entity: "pod-pay", end: end + time.Millisecond,
				attrs: map[string]any{unifiedevent.KeyServerAddress: "db", unifiedevent.KeyServerPort: 5432}},
			sp{trace: tid, span: 3, parent: 2, kind: ptrace.SpanKindServer, service: "payment", end: end + 2*time.Millisecond},
			sp{trace: tid, span: 2, parent: 1, kind: ptrace.SpanKindClient, service: "checkout", end: end + 3*time.Millisecond},
		))
		events++
		if events >= n {
			break
		}
		_ = c.consumeTraces(ctx, tracesOf(sp{trace: tid, span: 1, kind: ptrace.SpanKindServer, name: unifiedevent.ServerError, id: 30000 + i, service: "checkout", entity: "pod-co", end: end + 4*time.Millisecond,
			attrs: map[string]any{unifiedevent.KeyHTTPRoute: "/api/checkout", unifiedevent.KeyEndUserID: fmt.Sprintf("user-%d", i)}}))
		events++
	}
	if c.book.open != 1 || len(c.book.oldest.events) != n {
		b.Fatalf("%d incidents, %d events; want one of %d", c.book.open, len(c.book.oldest.events), n)
	}
}

// BenchmarkBuildAndEmitChain1000: one op builds the record of a 1,000-event incident — order,
// ancestry walks through the span store, links, root cause, the pdata record — and emits it.
func BenchmarkBuildAndEmitChain1000(b *testing.B) {
	cfg := benchConfig()
	cfg.DecisionWait = time.Second
	c, clk := benchCorrelator(b, cfg)
	chainIncident(b, c, clk, 1000)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.book.mu.Lock()
		c.book.oldest.dirty = true // as if new evidence had joined
		c.book.mu.Unlock()
		clk.Advance(2 * time.Second)
		c.flush(ctx, clk.Now(), false)
	}
	b.StopTimer()
	if c.book.oldest == nil || c.book.oldest.version != int64(b.N) {
		b.Fatalf("the incident was not emitted b.N times")
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/chain")
}

// BenchmarkConsumeLogs100P99: latency of ConsumeLogs with 100 records while a flush loop runs as
// in production (every 10 ms here, the fake clock kept in step with real time) and emits the
// incidents the records build — up to max_events_per_incident events each — every 500 ms at the
// latest. Reports the 50th and 99th percentiles. One op is one call.
func BenchmarkConsumeLogs100P99(b *testing.B) {
	cfg := benchConfig()
	cfg.DecisionWait = 200 * time.Millisecond
	cfg.MaxDecisionDelay = 500 * time.Millisecond
	c, clk := benchCorrelator(b, cfg)
	batches := make([]plog.Logs, benchBatches)
	for i := range batches {
		batches[i] = logBatch(i, 100, clk.Now())
	}
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		const tick = 10 * time.Millisecond
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				clk.Advance(tick)
				c.flush(ctx, clk.Now(), false)
			}
		}
	}()
	latencies := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ld := batches[i%benchBatches]
		ts := pcommon.NewTimestampFromTime(clk.Now())
		rls := ld.ResourceLogs()
		for r := 0; r < rls.Len(); r++ {
			recs := rls.At(r).ScopeLogs().At(0).LogRecords()
			for k := 0; k < recs.Len(); k++ {
				recs.At(k).SetTimestamp(ts)
			}
		}
		start := time.Now()
		_ = c.consumeLogs(ctx, ld)
		latencies = append(latencies, time.Since(start))
	}
	b.StopTimer()
	close(stop)
	wg.Wait()
	slices.Sort(latencies)
	b.ReportMetric(float64(latencies[len(latencies)*99/100].Nanoseconds()), "p99-ns")
	b.ReportMetric(float64(latencies[len(latencies)/2].Nanoseconds()), "p50-ns")
}

// BenchmarkVersusGroupByTrace runs the upstream groupbytrace processor and this connector on the
// same span workload in the same run and reports throughput and held-memory ratios
// (connector ÷ groupbytrace: a throughput ratio above 1 and a memory ratio below 1 favour the
// connector). groupbytrace is asynchronous; its time runs until Shutdown has drained its queue
// (polled every 100 ms by the processor itself), so use a workload that takes seconds.
func BenchmarkVersusGroupByTrace(b *testing.B) {
	const spansTotal = 200_000
	batches := make([]ptrace.Traces, spansTotal/benchBatch)
	for n := 0; n < b.N; n++ {
		for i := range batches {
			batches[i] = spanBatch(i, benchBatch, time.Now())
		}
		ctx := context.Background()

		// groupbytrace: traces held in memory for the wait duration (longer than the run).
		f := groupbytraceprocessor.NewFactory()
		gcfg := f.CreateDefaultConfig().(*groupbytraceprocessor.Config)
		gcfg.WaitDuration = time.Hour
		gcfg.NumWorkers = runtime.GOMAXPROCS(0)
		proc, err := f.CreateTraces(ctx, processortest.NewNopSettings(f.Type()), gcfg, consumertest.NewNop())
		if err != nil {
			b.Fatal(err)
		}
		if err := proc.Start(ctx, componenttest.NewNopHost()); err != nil {
			b.Fatal(err)
		}
		// groupbytrace keeps what it is given: hand it copies, made outside the clock but inside
		// the memory measurement, and drop our references as it takes them.
		before := heapInUse()
		copies := make([]ptrace.Traces, len(batches))
		for i, td := range batches {
			copies[i] = ptrace.NewTraces()
			td.CopyTo(copies[i])
		}
		start := time.Now()
		for i := range copies {
			if err := proc.ConsumeTraces(ctx, copies[i]); err != nil {
				b.Fatal(err)
			}
			copies[i] = ptrace.Traces{}
		}
		if err := proc.Shutdown(ctx); err != nil { // returns once its queue is drained
			b.Fatal(err)
		}
		gbtTime := time.Since(start)
		gbtHeap := heapInUse() - before
		runtime.KeepAlive(proc)
		proc = nil

		cfg := benchConfig()
		c, _ := benchCorrelator(b, cfg)
		before = heapInUse()
		start = time.Now()
		for _, td := range batches {
			_ = c.consumeTraces(ctx, td)
		}
		ourTime := time.Since(start)
		ourHeap := heapInUse() - before
		runtime.KeepAlive(c)

		b.ReportMetric(float64(spansTotal)/gbtTime.Seconds(), "groupbytrace-spans/s")
		b.ReportMetric(float64(spansTotal)/ourTime.Seconds(), "correlation-spans/s")
		b.ReportMetric(gbtTime.Seconds()/ourTime.Seconds(), "throughput-ratio")
		b.ReportMetric(float64(gbtHeap)/spansTotal, "groupbytrace-bytes/span")
		b.ReportMetric(float64(ourHeap)/spansTotal, "correlation-bytes/span")
		b.ReportMetric(float64(ourHeap)/float64(gbtHeap), "memory-ratio")
	}
}

// BenchmarkIngestLogs: problem log records only — the costlier half of the mix: each is read,
// interned, linked by its keys and kept.
func BenchmarkIngestLogs(b *testing.B) {
	c, clk := benchCorrelator(b, benchConfig())
	logs := make([]plog.Logs, benchBatches)
	for i := range logs {
		logs[i] = logBatch(i, benchBatch, clk.Now())
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for done, i := 0, 0; done < b.N; done, i = done+benchBatch, i+1 {
		_ = c.consumeLogs(ctx, logs[i%benchBatches])
	}
	reportRate(b)
}

// BenchmarkIngestPersisted: problem log records in calls of batch records, held in memory only
// and written ahead to the connector's log (one entry per call, fsync off as by default: the entry
// survives a crash of the process, not of the host). One op is one event.
func BenchmarkIngestPersisted(b *testing.B) {
	for _, batch := range []int{100, benchBatch} {
		for _, persisted := range []bool{false, true} {
			name := fmt.Sprintf("batch=%d/memory", batch)
			if persisted {
				name = fmt.Sprintf("batch=%d/write_ahead_log", batch)
			}
			b.Run(name, func(b *testing.B) {
				cfg := benchConfig()
				if persisted {
					cfg.WriteAheadLog.Directory = b.TempDir()
				}
				c, clk := benchCorrelator(b, cfg)
				c.id = component.MustNewID("correlation")
				if err := c.Start(context.Background(), componenttest.NewNopHost()); err != nil {
					b.Fatal(err)
				}
				logs := make([]plog.Logs, benchBatches)
				for i := range logs {
					logs[i] = logBatch(i, batch, clk.Now())
				}
				ctx := context.Background()
				b.ReportAllocs()
				b.ResetTimer()
				for done, i := 0, 0; done < b.N; done, i = done+batch, i+1 {
					if err := c.consumeLogs(ctx, logs[i%benchBatches]); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				reportRate(b)
				if persisted {
					b.ReportMetric(float64(len(c.wal.buf))/float64(batch), "wal-bytes/event")
				}
			})
		}
	}
}
