package correlationconnector

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

var ctx = context.Background()

func TestIncidentLifecycle(t *testing.T) {
	cfg := defaultConfig()
	cfg.DecisionWait = 5 * time.Second
	cfg.IncidentTimeout = time.Minute
	h := newHarness(t, cfg)

	h.clock.Set(scenarioStart.Add(time.Second))
	must(t, h.c.consumeLogs(ctx, logsOf(ev{name: unifiedevent.CrashLoopBackOff, id: 1, entity: "pod-a", service: "a"})))
	if got := h.counter(t, "otelcol_connector_correlation_incidents_open", "", ""); got != 1 {
		t.Errorf("incidents open = %d, want 1", got)
	}
	h.clock.Advance(4 * time.Second)
	h.flush()
	if n := len(h.records()); n != 0 {
		t.Fatalf("emitted %d records before decision_wait", n)
	}
	h.clock.Advance(time.Second)
	h.flush()
	recs := h.records()
	if len(recs) != 1 {
		t.Fatalf("emitted %d records after decision_wait, want 1", len(recs))
	}
	id := str(recs[0].Attributes(), unifiedevent.KeyCorrelationID)

	// No new evidence: no new record, however often we flush.
	for i := 0; i < 5; i++ {
		h.clock.Advance(5 * time.Second)
		h.flush()
	}
	if n := len(h.records()); n != 1 {
		t.Fatalf("re-emitted without new evidence: %d records", n)
	}

	// Quiet for the incident timeout: closed.
	h.clock.Advance(time.Minute)
	h.flush()
	if got := h.counter(t, "otelcol_connector_correlation_incidents_open", "", ""); got != 0 {
		t.Errorf("incidents open after the timeout = %d, want 0", got)
	}
	if got := h.counter(t, "otelcol_connector_correlation_events_in_state", "store", "problem_events"); got != 0 {
		t.Errorf("problem events held after close = %d, want 0", got)
	}

	// The same entity fails again: a new incident, with a new id, version 1.
	h.clock.Advance(time.Second)
	must(t, h.c.consumeLogs(ctx, logsOf(ev{name: unifiedevent.CrashLoopBackOff, id: 2, entity: "pod-a", service: "a", at: h.clock.Now().Sub(scenarioStart)})))
	h.clock.Advance(6 * time.Second)
	h.flush()
	recs = h.records()
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	if str(recs[1].Attributes(), unifiedevent.KeyCorrelationID) == id || str(recs[1].Attributes(), unifiedevent.KeyCorrelationVersion) != "1" {
		t.Errorf("after close a new incident must start: %v", recs[1].Attributes().AsRaw())
	}
	if got := h.counter(t, "otelcol_connector_correlation_incidents_emitted", "trigger", "decision"); got != 2 {
		t.Errorf("emitted by decision = %d, want 2", got)
	}
}

func TestShutdownFlushesOpenIncidents(t *testing.T) {
	h := newHarness(t, defaultConfig())
	must(t, h.c.Start(ctx, nil))
	must(t, h.c.consumeLogs(ctx, logsOf(ev{name: unifiedevent.OOMKill, id: 1, entity: "pod-a"})))
	must(t, h.c.Shutdown(ctx))
	must(t, h.c.Shutdown(ctx))
	recs := h.records()
	if len(recs) != 1 || str(recs[0].Attributes(), unifiedevent.KeyRootCauseEventName) != string(unifiedevent.OOMKill) {
		t.Fatalf("Shutdown must flush the open incident once, got %d records", len(recs))
	}
	if got := h.counter(t, "otelcol_connector_correlation_incidents_emitted", "trigger", "shutdown"); got != 1 {
		t.Errorf("emitted at shutdown = %d, want 1", got)
	}
}

func TestLateEventsAreDroppedAndCounted(t *testing.T) {
	cfg := defaultConfig()
	cfg.Window = time.Minute
	h := newHarness(t, cfg)
	h.clock.Set(scenarioStart.Add(2 * time.Minute))
	must(t, h.c.consumeLogs(ctx, logsOf(ev{name: unifiedevent.OOMKill, id: 1, entity: "pod-a", at: 30 * time.Second})))
	must(t, h.c.consumeTraces(ctx, tracesOf(sp{trace: traceID(1), span: 1, kind: ptrace.SpanKindServer, service: "a", end: 10 * time.Second})))
	if got := h.counter(t, "otelcol_connector_correlation_events_dropped", "reason", "late"); got != 2 {
		t.Errorf("late events = %d, want 2", got)
	}
	if h.c.book.open != 0 || h.c.store.len() != 0 {
		t.Errorf("late events must not enter state: %d incidents, %d spans", h.c.book.open, h.c.store.len())
	}
}

func TestMergedIncidentsListTheAbsorbedID(t *testing.T) {
	cfg := defaultConfig()
	cfg.DecisionWait = time.Second
	h := newHarness(t, cfg)
	must(t, h.c.consumeLogs(ctx, logsOf(
		ev{name: unifiedevent.Listen, entity: "pod-db", service: "db", attrs: map[string]any{unifiedevent.KeySourceAddress: "10.1.1.1", unifiedevent.KeySourcePort: 5432}},
		ev{name: unifiedevent.OOMKill, id: 1, entity: "pod-db", service: "db"},
		ev{name: unifiedevent.ErrorLog, id: 2, entity: "pod-api", service: "api", at: time.Second},
	)))
	h.clock.Advance(2 * time.Second)
	h.flush()
	if n := len(h.records()); n != 2 {
		t.Fatalf("%d records, want two separate incidents first", n)
	}
	// api's connection to db's address is refused: the evidence that joins both.
	h.clock.Advance(time.Second)
	must(t, h.c.consumeLogs(ctx, logsOf(ev{name: unifiedevent.ConnectionRefused, id: 3, entity: "pod-api", service: "api", at: 4 * time.Second,
		attrs: map[string]any{unifiedevent.KeyDestinationAddress: "10.1.1.1", unifiedevent.KeyDestinationPort: 5432}})))
	h.clock.Advance(2 * time.Second)
	h.flush()
	recs := h.records()
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3", len(recs))
	}
	first, second, merged := recs[0], recs[1], recs[2]
	if got := chainNames(merged); !slices.Equal(got, []string{string(unifiedevent.OOMKill), string(unifiedevent.ErrorLog), string(unifiedevent.ConnectionRefused)}) {
		t.Errorf("merged chain %v", got)
	}
	ids := []string{str(first.Attributes(), unifiedevent.KeyCorrelationID), str(second.Attributes(), unifiedevent.KeyCorrelationID)}
	kept := str(merged.Attributes(), unifiedevent.KeyCorrelationID)
	absorbed := sliceOf(merged, unifiedevent.KeyCorrelationMergedIDs)
	if !slices.Contains(ids, kept) || len(absorbed) != 1 || absorbed[0] == kept || !slices.Contains(ids, absorbed[0]) {
		t.Errorf("kept %s, merged_ids %v, earlier ids %v", kept, absorbed, ids)
	}
	if v := str(merged.Attributes(), unifiedevent.KeyCorrelationVersion); v != "2" {
		t.Errorf("merged version = %s, want 2", v)
	}
	if got := h.counter(t, "otelcol_connector_correlation_incidents_open", "", ""); got != 1 {
		t.Errorf("incidents open = %d, want 1", got)
	}
}

// (f) caps: every cap holds and every eviction is counted; nothing evicted is silently lost.
func TestCapsEvictAndCount(t *testing.T) {
	t.Run("span structure", func(t *testing.T) {
		cfg := defaultConfig()
		cfg.MaxEvents = 1000
		cfg.Shards = 2
		h := newHarness(t, cfg)
		for batch := 0; batch < 20; batch++ {
			var spans []sp
			for i := 0; i < 500; i++ {
				spans = append(spans, sp{trace: traceID(uint64(batch*500 + i)), span: 1, kind: ptrace.SpanKindInternal, service: "s"})
			}
			must(t, h.c.consumeTraces(ctx, tracesOf(spans...)))
			if n := h.c.store.len(); n > cfg.MaxEvents {
				t.Fatalf("store holds %d spans, cap %d", n, cfg.MaxEvents)
			}
		}
		held := int64(h.c.store.len())
		evicted := h.counter(t, "otelcol_connector_correlation_evictions", "reason", "max_events_spans")
		if evicted+held != 10000 || evicted < 9000 {
			t.Errorf("evicted %d + held %d, want 10000 with ≥ 9000 evicted", evicted, held)
		}
		if got := h.counter(t, "otelcol_connector_correlation_events_in_state", "store", "spans"); got != held {
			t.Errorf("events_in_state{spans} = %d, held %d", got, held)
		}
		for _, sh := range h.c.store.shards {
			if sh.traces.len() > sh.count {
				t.Errorf("trace index (%d) outgrew the nodes (%d)", sh.traces.len(), sh.count)
			}
		}
	})
	t.Run("incidents", func(t *testing.T) {
		cfg := defaultConfig()
		cfg.MaxIncidents = 3
		h := newHarness(t, cfg)
		for i := 1; i <= 10; i++ {
			must(t, h.c.consumeLogs(ctx, logsOf(ev{name: unifiedevent.OOMKill, id: i, entity: "pod-" + string(rune('a'+i)), service: "svc-" + string(rune('a'+i))})))
			if h.c.book.open > cfg.MaxIncidents {
				t.Fatalf("%d incidents open, cap %d", h.c.book.open, cfg.MaxIncidents)
			}
		}
		if got := h.counter(t, "otelcol_connector_correlation_evictions", "reason", "max_incidents"); got != 7 {
			t.Errorf("incident evictions = %d, want 7", got)
		}
		if got := len(h.records()); got != 7 {
			t.Errorf("evicted incidents must be emitted, not dropped: %d records, want 7", got)
		}
		must(t, h.c.Shutdown(ctx))
		if got := len(h.records()); got != 10 {
			t.Errorf("after shutdown %d records, want 10", got)
		}
	})
	t.Run("events per incident", func(t *testing.T) {
		cfg := defaultConfig()
		cfg.MaxEventsPerIncident = 5
		h := newHarness(t, cfg)
		var events []ev
		for i := 1; i <= 20; i++ {
			events = append(events, ev{name: unifiedevent.ErrorLog, id: i, entity: "pod-a", service: "a", at: time.Duration(i) * time.Millisecond})
		}
		must(t, h.c.consumeLogs(ctx, logsOf(events...)))
		must(t, h.c.Shutdown(ctx))
		recs := h.records()
		if len(recs) != 1 {
			t.Fatalf("%d records", len(recs))
		}
		if n := len(chainNames(recs[0])); n != 5 {
			t.Errorf("chain holds %d events, cap 5", n)
		}
		if c := str(recs[0].Attributes(), unifiedevent.KeyCorrelationEventCount); c != "20" {
			t.Errorf("event_count = %s, want 20 (all seen, 5 kept)", c)
		}
		if got := h.counter(t, "otelcol_connector_correlation_evictions", "reason", "max_events_per_incident"); got != 15 {
			t.Errorf("per-incident evictions = %d, want 15", got)
		}
	})
	t.Run("problem events", func(t *testing.T) {
		cfg := defaultConfig()
		cfg.MaxEvents = 10
		h := newHarness(t, cfg)
		for i := 1; i <= 30; i++ {
			must(t, h.c.consumeLogs(ctx, logsOf(ev{name: unifiedevent.ErrorLog, id: i, entity: "pod-" + string(rune('A'+i)), service: "svc-" + string(rune('A'+i))})))
			if h.c.book.held > cfg.MaxEvents {
				t.Fatalf("%d problem events held, cap %d", h.c.book.held, cfg.MaxEvents)
			}
		}
		if got := h.counter(t, "otelcol_connector_correlation_evictions", "reason", "max_events_problem_events"); got != 20 {
			t.Errorf("problem-event evictions = %d, want 20", got)
		}
	})
	t.Run("peers", func(t *testing.T) {
		cfg := defaultConfig()
		cfg.MaxPeers = 4
		h := newHarness(t, cfg)
		for i := 0; i < 10; i++ {
			must(t, h.c.consumeLogs(ctx, logsOf(ev{name: unifiedevent.Listen, entity: "pod-db",
				attrs: map[string]any{unifiedevent.KeySourceAddress: "10.0.0.1", unifiedevent.KeySourcePort: 1000 + i}})))
		}
		if n := h.c.peers.len(); n > 4 {
			t.Errorf("peer directory holds %d, cap 4", n)
		}
		if got := h.counter(t, "otelcol_connector_correlation_evictions", "reason", "max_peers"); got != 6 {
			t.Errorf("peer evictions = %d, want 6", got)
		}
	})
}

// (g) concurrent Consume calls and flushes share one state safely (run with -race).
func TestConcurrentConsume(t *testing.T) {
	cfg := defaultConfig()
	cfg.Shards = 4
	cfg.MaxEvents = 5000
	cfg.DecisionWait = time.Millisecond
	cfg.Thresholds = []ThresholdRule{{Name: "mem", Metric: "mem", Comparison: GreaterThan, Value: 0.5, Layer: "container"}}
	h := newHarness(t, cfg)
	var wg sync.WaitGroup
	const rounds = 200
	for w := 0; w < 4; w++ {
		wg.Add(3)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				tid := traceID(uint64(w*rounds + i))
				_ = h.c.consumeTraces(ctx, tracesOf(
					sp{trace: tid, span: 1, kind: ptrace.SpanKindServer, name: unifiedevent.ServerError, id: w*100000 + i, service: "checkout", entity: "pod-checkout"},
					sp{trace: tid, span: 2, parent: 1, kind: ptrace.SpanKindClient, service: "checkout"},
				))
			}
		}()
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				_ = h.c.consumeLogs(ctx, logsOf(ev{name: unifiedevent.ErrorLog, id: 1 + w*100000 + 50000 + i, entity: "pod-checkout", service: "checkout", trace: traceID(uint64(w*rounds + i))}))
			}
		}()
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				_ = h.c.consumeMetrics(ctx, gaugeOf("mem", "pod-checkout", 0, 0.9, nil, traceID(uint64(i))))
				h.clock.Advance(time.Millisecond)
				if i%20 == 0 {
					h.flush()
				}
			}
		}()
	}
	wg.Wait()
	must(t, h.c.Shutdown(ctx))
	recs := h.records()
	if len(recs) == 0 {
		t.Fatal("no correlation records")
	}
	last := recs[len(recs)-1]
	if str(last.Attributes(), unifiedevent.KeyCorrelationEventCount) == "" {
		t.Error("record without event_count")
	}
	if h.c.book.open != 0 || h.c.book.held != 0 || h.c.book.bindings.len() != 0 {
		t.Errorf("after shutdown: %d open, %d held, %d bindings", h.c.book.open, h.c.book.held, h.c.book.bindings.len())
	}
	if n := h.c.store.len(); n > cfg.MaxEvents {
		t.Errorf("store %d > cap %d", n, cfg.MaxEvents)
	}
}

func TestRootCausePrefersLowerLayerWithinSkew(t *testing.T) {
	tests := []struct {
		name string
		a, b ev
		root unifiedevent.Name
	}{
		{"kernel after kubernetes within skew", ev{name: unifiedevent.PodOOMKilled, at: 0}, ev{name: unifiedevent.OOMKill, at: 1500 * time.Millisecond}, unifiedevent.OOMKill},
		{"kernel after kubernetes beyond skew", ev{name: unifiedevent.PodOOMKilled, at: 0}, ev{name: unifiedevent.OOMKill, at: 3 * time.Second}, unifiedevent.PodOOMKilled},
		{"kernel first", ev{name: unifiedevent.OOMKill, at: 0}, ev{name: unifiedevent.PodOOMKilled, at: time.Second}, unifiedevent.OOMKill},
		{"same time, lower layer", ev{name: unifiedevent.ErrorLog, at: 0}, ev{name: unifiedevent.IOError, at: 0}, unifiedevent.IOError},
		// The kernel sends the OOM victim SIGKILL just before it records the victim.
		{"SIGKILL a moment before the OOM kill", ev{name: unifiedevent.FatalSignal, at: 0}, ev{name: unifiedevent.OOMKill, at: 40 * time.Microsecond}, unifiedevent.OOMKill},
		{"exit a moment before the OOM kill is reported", ev{name: unifiedevent.ProcessExit, at: 0}, ev{name: unifiedevent.OOMKill, at: time.Millisecond}, unifiedevent.OOMKill},
		{"a signal beyond skew stays first", ev{name: unifiedevent.FatalSignal, at: 0}, ev{name: unifiedevent.OOMKill, at: 3 * time.Second}, unifiedevent.FatalSignal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, defaultConfig()) // clock_skew 2s
			tt.a.entity, tt.b.entity, tt.a.id, tt.b.id = "pod-x", "pod-x", 1, 2
			must(t, h.c.consumeLogs(ctx, logsOf(tt.a, tt.b)))
			must(t, h.c.Shutdown(ctx))
			recs := h.records()
			if len(recs) != 1 {
				t.Fatalf("%d records", len(recs))
			}
			if got := str(recs[0].Attributes(), unifiedevent.KeyRootCauseEventName); got != string(tt.root) {
				t.Errorf("root cause %s, want %s", got, tt.root)
			}
		})
	}
}

// Metrics → logs: a threshold breach held for the rule's duration becomes an event; its exemplars
// link it to the failing traces.
func TestMetricThresholdBreachJoinsTraces(t *testing.T) {
	cfg := defaultConfig()
	cfg.DecisionWait = time.Second
	cfg.Thresholds = []ThresholdRule{{Name: "memory_high", Metric: "container.memory.utilization", Attributes: map[string]string{"state": "used"},
		Comparison: GreaterThan, Value: 0.9, For: 30 * time.Second, Layer: "container"}}
	cfg.Recommendations = []RecommendationRule{{MetricRule: "memory_high", Immediate: "Raise the memory limit of cart."}}
	h := newHarness(t, cfg)
	used := map[string]any{"state": "used"}
	failing := traceID(77)
	point := func(at time.Duration, v float64, attrs map[string]any) {
		h.clock.Set(scenarioStart.Add(at))
		must(t, h.c.consumeMetrics(ctx, gaugeOf("container.memory.utilization", "pod-cart", at, v, attrs, failing)))
	}
	point(0, 0.95, used)
	point(10*time.Second, 0.97, map[string]any{"state": "cache"}) // another series: ignored by the match
	point(20*time.Second, 0.96, used)
	if h.c.book.open != 0 {
		t.Fatal("a breach shorter than for must not fire")
	}
	point(25*time.Second, 0.5, used) // back under: the clock restarts
	point(30*time.Second, 0.95, used)
	point(50*time.Second, 0.95, used)
	if h.c.book.open != 0 {
		t.Fatal("the breach restarted at 30s and has lasted 20s only")
	}
	point(60*time.Second, 0.96, used)
	point(61*time.Second, 0.99, used) // fires once per breach
	if got := h.counter(t, "otelcol_connector_correlation_threshold_breaches", "rule", "memory_high"); got != 1 {
		t.Fatalf("breaches = %d, want 1", got)
	}
	// A failing request on the exemplar's trace, in another service.
	must(t, h.c.consumeTraces(ctx, tracesOf(sp{trace: failing, span: 1, kind: ptrace.SpanKindServer, name: unifiedevent.ServerError, id: 9, service: "checkout", entity: "pod-checkout", end: 61500 * time.Millisecond})))
	h.clock.Advance(2 * time.Second)
	h.flush()
	recs := h.records()
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	rec := recs[0]
	if got := chainNames(rec); !slices.Equal(got, []string{string(unifiedevent.MetricThresholdBreach), string(unifiedevent.ServerError)}) {
		t.Errorf("chain %v", got)
	}
	if got := chainField(rec, unifiedevent.ChainKeyLinkReason); !slices.Equal(got, []string{"root", "exemplar"}) {
		t.Errorf("links %v", got)
	}
	if got := chainField(rec, unifiedevent.ChainKeyMetricRule)[0]; got != "memory_high" {
		t.Errorf("rule %q", got)
	}
	if got := str(rec.Attributes(), unifiedevent.KeyRootCauseNarrative); got != "container.memory.utilization was 0.96 (> 0.9) for 30s on pod-cart: threshold rule memory_high" {
		t.Errorf("narrative %q", got)
	}
	recsAttr, _ := rec.Attributes().Get(unifiedevent.KeyRecommendations)
	if recsAttr.Slice().Len() != 1 || str(recsAttr.Slice().At(0).Map(), unifiedevent.RecommendationKeyAction) != "Raise the memory limit of cart." {
		t.Errorf("recommendations %v", recsAttr.AsRaw())
	}
	if rec.TraceID() != failing {
		t.Errorf("primary trace %s", rec.TraceID())
	}
}

func TestRecommendationsFromConfigReplaceBuiltins(t *testing.T) {
	cfg := defaultConfig()
	cfg.Recommendations = []RecommendationRule{{EventName: string(unifiedevent.ConnectionRefused), Immediate: "Page the DBA.", LongTerm: "Add a replica."}}
	table := newRecommendationTable(cfg.Recommendations, nil)
	got := table.lookup(&problemEvent{name: unifiedevent.ConnectionRefused})
	want := []recommendation{{unifiedevent.HorizonImmediate, "Page the DBA."}, {unifiedevent.HorizonLongTerm, "Add a replica."}}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	builtin := table.lookup(&problemEvent{name: unifiedevent.OOMKill})
	if len(builtin) != 3 || builtin[0].horizon != unifiedevent.HorizonImmediate || builtin[2].horizon != unifiedevent.HorizonLongTerm {
		t.Errorf("built-in OOM advice %v", builtin)
	}
	builtins := newRecommendationTable(nil, nil)
	for _, d := range unifiedevent.Catalogue() {
		if d.Problem && len(builtins.lookup(&problemEvent{name: d.Name})) != 3 {
			t.Errorf("no built-in advice for %s", d.Name)
		}
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestRecordsWithoutConsumerOrRefusedAreCounted(t *testing.T) {
	h := newHarness(t, defaultConfig())
	h.c.outputs.remove(1)
	must(t, h.c.consumeLogs(ctx, logsOf(ev{name: unifiedevent.OOMKill, id: 1, entity: "pod-a"})))
	must(t, h.c.Shutdown(ctx))
	if got := h.counter(t, "otelcol_connector_correlation_records_refused", "reason", "no_output"); got != 1 {
		t.Errorf("records refused for want of an output = %d, want 1", got)
	}

	h = newHarness(t, defaultConfig())
	h.c.outputs.remove(1)
	h.c.outputs.add(2, consumertest.NewErr(errors.New("queue full")))
	must(t, h.c.consumeLogs(ctx, logsOf(ev{name: unifiedevent.OOMKill, id: 1, entity: "pod-a"})))
	must(t, h.c.Shutdown(ctx))
	if got := h.counter(t, "otelcol_connector_correlation_records_refused", "reason", "downstream_error"); got != 1 {
		t.Errorf("records refused downstream = %d, want 1", got)
	}
}

func TestOneIncidentCannotHoldMoreThanMaxEvents(t *testing.T) {
	cfg := defaultConfig()
	cfg.MaxEvents = 10
	h := newHarness(t, cfg)
	var events []ev
	for i := 1; i <= 25; i++ {
		events = append(events, ev{name: unifiedevent.ErrorLog, id: i, entity: "pod-a", service: "a"})
	}
	must(t, h.c.consumeLogs(ctx, logsOf(events...)))
	if h.c.book.held != 10 {
		t.Errorf("held %d problem events, cap 10", h.c.book.held)
	}
	if got := h.counter(t, "otelcol_connector_correlation_evictions", "reason", "max_events_problem_events"); got != 15 {
		t.Errorf("evictions = %d, want 15", got)
	}
	must(t, h.c.Shutdown(ctx))
	if c := str(h.records()[0].Attributes(), unifiedevent.KeyCorrelationEventCount); c != "25" {
		t.Errorf("event_count %s, want 25", c)
	}
}

func TestEventsBeyondTheCapBindNoNewTraces(t *testing.T) {
	cfg := defaultConfig()
	cfg.MaxEventsPerIncident = 3
	h := newHarness(t, cfg)
	var spans []sp
	for i := 0; i < 50; i++ {
		spans = append(spans, sp{trace: traceID(uint64(100 + i)), span: 1, kind: ptrace.SpanKindServer, name: unifiedevent.ServerError, id: i + 1, service: "checkout", entity: "pod-c"})
	}
	must(t, h.c.consumeTraces(ctx, tracesOf(spans...)))
	traces := 0
	for k := range h.c.book.bindings.all() {
		if k.kind == keyTrace {
			traces++
		}
	}
	if traces != 3 || h.c.book.open != 1 || h.c.book.oldest.eventCount != 50 {
		t.Errorf("%d trace bindings (want 3, the kept events'), %d incidents, %d events counted", traces, h.c.book.open, h.c.book.oldest.eventCount)
	}
}

// A listen event missing its address, or the refused connection after it, must not break the
// connector: the address directory learns nothing and the rest goes on.
func TestListenWithoutAddressIsHarmless(t *testing.T) {
	h := newHarness(t, defaultConfig())
	must(t, h.c.consumeLogs(ctx, logsOf(
		ev{name: unifiedevent.Listen, id: 1, entity: "pod-db", attrs: map[string]any{unifiedevent.KeySourcePort: int64(5432)}},
		ev{name: unifiedevent.ConnectionRefused, id: 2, entity: "pod-app", at: time.Second,
			attrs: map[string]any{unifiedevent.KeyDestinationAddress: "10.0.0.7", unifiedevent.KeyDestinationPort: int64(5432)}},
		ev{name: unifiedevent.ErrorLog, id: 3, entity: "pod-app", at: time.Second},
	)))
	must(t, h.c.Shutdown(ctx))
	if recs := h.records(); len(recs) != 1 {
		t.Fatalf("%d incidents, want the refused connection's own, with the error it caused", len(recs))
	}
}

// A memory cgroup at its limit stalls in reclaim, and drops what it cannot charge, for seconds
// before the OOM killer picks a victim: a client's segments to the workload retransmitted in that
// time are effects of the exhaustion the kill stands for (the rca suite's redis-oom once put the
// harness's own retransmit to Redis first). Only trouble at the victim moves behind the kill.
func TestOOMKillExplainsEarlierTroubleAtItsVictim(t *testing.T) {
	listen := ev{name: unifiedevent.Listen, entity: "vm/redis", service: "redis",
		attrs: map[string]any{unifiedevent.KeySourceAddress: "10.1.1.1", unifiedevent.KeySourcePort: 6379}}
	retransmit := func(id int, at time.Duration, entity, service string) ev {
		return ev{name: unifiedevent.TCPRetransmit, id: id, entity: entity, service: service, at: at,
			attrs: map[string]any{unifiedevent.KeyDestinationAddress: "10.1.1.1", unifiedevent.KeyDestinationPort: 6379}}
	}
	oom := ev{name: unifiedevent.OOMKill, id: 9, entity: "vm/redis", service: "redis", at: 8 * time.Second}
	tests := []struct {
		name   string
		events []ev
		chain  []unifiedevent.Name
	}{
		{"retransmits to the victim before the kill", []ev{listen, retransmit(1, 0, "vm/app", "app"), retransmit(2, 3*time.Second, "vm/app", "app"), oom},
			[]unifiedevent.Name{unifiedevent.OOMKill, unifiedevent.TCPRetransmit, unifiedevent.TCPRetransmit}},
		{"the victim's own error log before the kill", []ev{{name: unifiedevent.ErrorLog, id: 1, entity: "vm/redis", service: "redis", at: 2 * time.Second}, oom},
			[]unifiedevent.Name{unifiedevent.OOMKill, unifiedevent.ErrorLog}},
		{"another instance's error log stays first", []ev{{name: unifiedevent.ErrorLog, id: 1, entity: "vm/redis-2", service: "redis", at: 2 * time.Second}, oom},
			[]unifiedevent.Name{unifiedevent.ErrorLog, unifiedevent.OOMKill}},
		{"a retransmit longer before than a stall lasts stays first", []ev{listen, retransmit(1, -40*time.Second, "vm/app", "app"), oom},
			[]unifiedevent.Name{unifiedevent.TCPRetransmit, unifiedevent.OOMKill}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, defaultConfig())
			must(t, h.c.consumeLogs(ctx, logsOf(tt.events...)))
			must(t, h.c.Shutdown(ctx))
			recs := h.records()
			if len(recs) != 1 {
				t.Fatalf("%d records, want one incident", len(recs))
			}
			want := make([]string, len(tt.chain))
			for i, n := range tt.chain {
				want[i] = string(n)
			}
			if got := chainNames(recs[0]); !slices.Equal(got, want) {
				t.Errorf("chain %v, want %v", got, want)
			}
		})
	}
}

// Calls to a workload stalled at its memory limit time out and fail, and so do the requests that
// made them, for seconds before the kill (the rca suite's redis-oom, a run whose Redis stalled
// 15 s: its clients' failed calls came first and took the root cause). A failed call to the
// victim is trouble at the victim, and the failures it propagated to up its trace go with it; a
// failed request whose trace reached no call to the victim does not.
func TestOOMKillExplainsFailedCallsToItsStalledVictim(t *testing.T) {
	listen := ev{name: unifiedevent.Listen, entity: "vm/redis", service: "redis",
		attrs: map[string]any{unifiedevent.KeySourceAddress: "10.1.1.1", unifiedevent.KeySourcePort: 6379}}
	request := func(trace uint64, at time.Duration) []sp {
		return []sp{
			{trace: traceID(trace), span: 1, kind: ptrace.SpanKindServer, name: unifiedevent.ServerError, service: "catalog", entity: "vm/catalog", end: at + time.Millisecond},
			{trace: traceID(trace), span: 2, parent: 1, kind: ptrace.SpanKindClient, name: unifiedevent.DependencyError, service: "catalog", entity: "vm/catalog", end: at,
				attrs: map[string]any{unifiedevent.KeyServerAddress: "10.1.1.1", unifiedevent.KeyServerPort: int64(6379)}},
		}
	}
	// A failed request of the same service that called nothing, a moment before the first call
	// to Redis failed.
	unrelated := sp{trace: traceID(3), span: 1, kind: ptrace.SpanKindServer, name: unifiedevent.ServerError, service: "catalog", entity: "vm/catalog", end: -time.Second}
	for _, withUnrelated := range []bool{false, true} {
		h := newHarness(t, defaultConfig())
		must(t, h.c.consumeLogs(ctx, logsOf(listen)))
		var spans []sp
		if withUnrelated {
			spans = append(spans, unrelated)
		}
		spans = append(spans, request(1, 0)...)
		spans = append(spans, request(2, 3*time.Second)...)
		must(t, h.c.consumeTraces(ctx, tracesOf(spans...)))
		must(t, h.c.consumeLogs(ctx, logsOf(ev{name: unifiedevent.OOMKill, id: 9, entity: "vm/redis", service: "redis", at: 8 * time.Second})))
		must(t, h.c.Shutdown(ctx))
		recs := h.records()
		if len(recs) != 1 {
			t.Fatalf("%d records, want one incident", len(recs))
		}
		got := chainNames(recs[0])
		want := []string{string(unifiedevent.OOMKill)}
		if withUnrelated {
			want = []string{string(unifiedevent.ServerError), string(unifiedevent.OOMKill)}
		}
		if len(got) != len(spans)+1 || !slices.Equal(got[:len(want)], want) {
			t.Errorf("unrelated failure %v: chain %v, want it to start %v", withUnrelated, got, want)
		}
	}
}

// A span in minimal annotation carries its event name only: the connector takes its event id
// from its trace and span ids and its entity from the rule — the resource's, or the span's own
// entity key when it names one.
func TestMinimallyAnnotatedSpansGetTheirIDAndEntityByTheSchema(t *testing.T) {
	h := newHarness(t, defaultConfig())
	byResource := sp{trace: traceID(7), span: 1, kind: ptrace.SpanKindServer, name: unifiedevent.ServerError, service: "checkout"}
	bySpan := sp{trace: traceID(7), span: 2, parent: 1, kind: ptrace.SpanKindClient, name: unifiedevent.DependencyError, service: "checkout",
		attrs: map[string]any{unifiedevent.KeyContainerID: "c0ffee"}, end: 10 * time.Millisecond}
	td := tracesOf(byResource, bySpan)
	td.ResourceSpans().At(0).Resource().Attributes().PutStr(unifiedevent.KeyK8sPodUID, "pod-checkout")
	must(t, h.c.consumeTraces(ctx, td))
	must(t, h.c.Shutdown(ctx))
	recs := h.records()
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	ids, entities := chainField(recs[0], unifiedevent.KeyEventID), chainField(recs[0], unifiedevent.KeyEntityID)
	want := map[string]string{
		unifiedevent.SpanEventIDString(traceID(7), spanID(1)): "pod-checkout",
		unifiedevent.SpanEventIDString(traceID(7), spanID(2)): "c0ffee",
	}
	if len(ids) != len(want) {
		t.Fatalf("chain event ids %v, want %v", ids, want)
	}
	for i, id := range ids {
		if e, ok := want[id]; !ok || entities[i] != e {
			t.Errorf("chain entry %d: event id %s, entity %s; want one of %v", i, id, entities[i], want)
		}
	}
}
