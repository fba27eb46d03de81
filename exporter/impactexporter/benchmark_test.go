package impactexporter

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/yairfalse/tapio/pkg/impactapi"
	ue "github.com/yairfalse/tapio/pkg/unifiedevent"
)

// batchOf builds n correlation records shaped like the connector's oom_chain output.
func batchOf(n int) plog.Logs {
	cs := make([]ue.CorrelationRecord, n)
	for i := range cs {
		cs[i] = oomChain()
	}
	return logsOf(cs...)
}

// relabel gives every record of the batch a fresh correlation id and trace ids.
func relabel(ld plog.Logs, next func() int) {
	recs := ld.ResourceLogs()
	for i := 0; i < recs.Len(); i++ {
		rec := recs.At(i).ScopeLogs().At(0).LogRecords().At(0)
		n := next()
		a := rec.Attributes()
		a.PutStr(ue.KeyCorrelationID, fmt.Sprintf("bench-%d", n))
		traces, _ := a.Get(ue.KeyCorrelationTraceIDs)
		traces.Slice().At(0).SetStr(fmt.Sprintf("%032x", 2*n))
		traces.Slice().At(1).SetStr(fmt.Sprintf("%032x", 2*n+1))
	}
}

func counter() (next func() int, count func() int) {
	var n atomic.Int64
	return func() int { return int(n.Add(1)) }, func() int { return int(n.Load()) }
}

// BenchmarkScoreAndUpsert measures reading, scoring and durably storing new incidents (each
// with the six-event oom_chain, 6 KB of JSON). The target is ≥ 20,000 incidents/s.
func BenchmarkScoreAndUpsert(b *testing.B) {
	for _, batch := range []int{100, 1000} {
		b.Run(fmt.Sprintf("batch=%d/one_caller", batch), func(b *testing.B) {
			benchmarkUpsert(b, batch, 1, 0)
		})
		// The default sending queue calls consumeLogs from several consumers: scoring overlaps
		// and their writes share one transaction.
		b.Run(fmt.Sprintf("batch=%d/queue_consumers=4", batch), func(b *testing.B) {
			benchmarkUpsert(b, batch, 4, 0)
		})
	}
	// A store at max_incidents: every new incident evicts the least recently updated one in the
	// same transaction.
	b.Run("batch=1000/one_caller_into_store_at_max_incidents=10000", func(b *testing.B) {
		benchmarkUpsert(b, 1000, 1, 10_000)
	})
}

// benchmarkUpsert stores batches of new incidents from callers goroutines; with maxIncidents
// set, the store is filled to that cap first.
func benchmarkUpsert(b *testing.B, batch, callers, maxIncidents int) {
	cfg := testConfig(b)
	businessConfig(cfg)
	if maxIncidents > 0 {
		cfg.Storage.MaxIncidents = maxIncidents
	}
	e := startExporter(b, cfg, nil, nil)
	next, count := counter()
	if maxIncidents > 0 {
		ld := batchOf(batch)
		for e.store.Len() < int64(maxIncidents) {
			relabel(ld, next)
			if err := e.consumeLogs(context.Background(), ld); err != nil {
				b.Fatal(err)
			}
		}
	}
	prefilled := count()
	b.ReportAllocs()
	b.SetParallelism(max(1, callers/runtime.GOMAXPROCS(0)))
	start := time.Now()
	if callers == 1 {
		ld := batchOf(batch)
		for b.Loop() {
			relabel(ld, next)
			if err := e.consumeLogs(context.Background(), ld); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		b.RunParallel(func(pb *testing.PB) {
			ld := batchOf(batch)
			for pb.Next() {
				relabel(ld, next)
				if err := e.consumeLogs(context.Background(), ld); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.ReportMetric(float64(count()-prefilled)/time.Since(start).Seconds(), "incidents/s")
	if maxIncidents > 0 && e.store.Len() != int64(maxIncidents) {
		b.Fatalf("%d incidents stored at a cap of %d", e.store.Len(), maxIncidents)
	}
}

// BenchmarkListByTraceID measures GET /api/v1/incidents?trace_id=… over loopback with 100,000
// incidents stored. The target is p99 ≤ 5 ms.
func BenchmarkListByTraceID(b *testing.B) {
	const stored = 100_000
	cfg := testConfig(b)
	businessConfig(cfg)
	e := startExporter(b, cfg, nil, nil)
	ld := batchOf(1000)
	next, count := counter()
	for count() < stored {
		relabel(ld, next)
		if err := e.consumeLogs(context.Background(), ld); err != nil {
			b.Fatal(err)
		}
	}
	if e.store.Len() != stored {
		b.Fatalf("stored %d", e.store.Len())
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	base := "http://" + e.addr() + "/api/v1/incidents?trace_id="
	var latencies []time.Duration
	i := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		i++
		n := 1 + (i*7919)%stored // spread over the whole store
		t0 := time.Now()
		resp, err := client.Get(base + fmt.Sprintf("%032x", 2*n))
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		latencies = append(latencies, time.Since(t0))
		if resp.StatusCode != http.StatusOK || len(body) < 100 {
			b.Fatalf("status %d body %s", resp.StatusCode, body)
		}
	}
	b.StopTimer()
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// chainOf is the oom_chain correlation grown to n chain events the way a storm grows it: the
// kernel root cause, payment's refused connection and failed calls, then one failed checkout per
// further request, each in its own trace and for its own user.
func chainOf(n int) ue.CorrelationRecord {
	c := oomChain()
	failed := c.Chain[len(c.Chain)-1]
	c.Chain = c.Chain[:min(n, len(c.Chain))]
	for i := len(c.Chain); i < n; i++ {
		e := failed
		e.TraceID = fmt.Sprintf("%032x", 0xc0ffee0000+i)
		e.SpanID = fmt.Sprintf("%016x", 0xc0ffee0000+i)
		e.EventID = fmt.Sprintf("%032x", 0xe0000+i)
		e.EndUserID = fmt.Sprintf("user-%d", i)
		e.SessionID = ""
		c.Chain = append(c.Chain, e)
		c.TraceIDs = append(c.TraceIDs, e.TraceID)
	}
	c.EventCount = int64(len(c.Chain))
	return c
}

// BenchmarkConsumeOneIncident measures one incident on the exporter's path at the rates it sees:
// correlations arrive one record per call, at most hundreds per second, so every call reads,
// scores, encodes and durably stores one incident (one bbolt commit with its fsyncs). The
// encode benchmarks run the JSON encoding alone on the same scored incident: their ratio to
// consume is the share of encoding in the path.
func BenchmarkConsumeOneIncident(b *testing.B) {
	for _, events := range []int{6, 100, 1000} {
		b.Run(fmt.Sprintf("chain=%d/consume", events), func(b *testing.B) {
			cfg := testConfig(b)
			businessConfig(cfg)
			e := startExporter(b, cfg, nil, nil)
			ld := logsOf(chainOf(events))
			next, _ := counter()
			b.ReportAllocs()
			for b.Loop() {
				relabel(ld, next)
				if err := e.consumeLogs(context.Background(), ld); err != nil {
					b.Fatal(err)
				}
			}
		})
		inc := scoredIncident(b, chainOf(events))
		b.Run(fmt.Sprintf("chain=%d/encode", events), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := json.Marshal(inc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// scoredIncident reads and scores a correlation as consumeLogs does, without storing it.
func scoredIncident(b testing.TB, c ue.CorrelationRecord) *impactapi.Incident {
	b.Helper()
	cfg := testConfig(b)
	businessConfig(cfg)
	rec := logsOf(c).ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	inc, observed, err := readCorrelation(rec)
	if err != nil {
		b.Fatal(err)
	}
	inc.DetectedAt, inc.UpdatedAt = observed, observed
	newScorer(cfg.Impact).score(&inc, nil)
	setTimeToDetection(&inc)
	return &inc
}
