package impactexporter

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"

	"github.com/yairfalse/tapio/pkg/impactapi"
	ue "github.com/yairfalse/tapio/pkg/unifiedevent"
)

func TestStoreSurvivesRestart(t *testing.T) {
	cfg := testConfig(t)
	businessConfig(cfg)
	first := startExporter(t, cfg, nil, nil)
	consume(t, first, oomChain())
	if err := first.shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}

	second := startExporter(t, cfg, nil, nil)
	var inc impactapi.Incident
	if code := getJSON(t, http.DefaultClient, "http://"+second.addr()+"/api/v1/incidents/correlation-1", "", &inc); code != http.StatusOK {
		t.Fatalf("status %d after restart", code)
	}
	if inc.Version != 1 || inc.Severity != impactapi.SeverityCritical || inc.Impact.RevenueAtRisk == nil || inc.Impact.RevenueAtRisk.Amount != 85 {
		t.Fatalf("incident after restart = %+v", inc)
	}
	if second.store.Len() != 1 {
		t.Fatalf("count after restart = %d", second.store.Len())
	}
	// The dependency graph is durable too: payment → checkout was observed before the restart.
	if got := second.store.dependentsOf("payment"); len(got) != 1 || got[0] != "checkout" {
		t.Fatalf("dependents of payment after restart = %v", got)
	}
}

func TestUpsertKeepsNewestVersionAndFirstDetection(t *testing.T) {
	tel := componenttest.NewTelemetry()
	defer func() { _ = tel.Shutdown(t.Context()) }()
	cfg := testConfig(t)
	t0 := time.Date(2026, 11, 25, 3, 1, 0, 0, time.UTC)
	clock := &testClock{now: t0}
	e := startExporter(t, cfg, nil, tel, withClock(clock))

	v1 := oomChain()
	consume(t, e, v1)
	v2 := oomChain()
	v2.Version = 2
	v2.ObservedTime = v1.ObservedTime.Add(time.Minute)
	v2.Chain = v2.Chain[:5]
	clock.Set(t0.Add(time.Minute))
	consume(t, e, v2)
	consume(t, e, v1) // late duplicate of version 1: stale

	raw, err := e.store.get("correlation-1")
	if err != nil || raw == nil {
		t.Fatal(err)
	}
	list, err := e.store.list(incidentQuery{TraceID: traceA})
	if err != nil || len(list) != 1 {
		t.Fatalf("trace index holds %d entries, err %v", len(list), err)
	}
	var inc impactapi.Incident
	mustUnmarshal(t, list[0], &inc)
	if inc.Version != 2 || len(inc.Chain) != 5 {
		t.Fatalf("stored version %d with %d entries, want 2 with 5", inc.Version, len(inc.Chain))
	}
	if !inc.DetectedAt.Equal(v1.ObservedTime) || inc.TimeToDetectionSeconds != 3 {
		t.Fatalf("detected %s (ttd %v), want the first version's %s (3 s)", inc.DetectedAt, inc.TimeToDetectionSeconds, v1.ObservedTime)
	}
	if !inc.UpdatedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("updated %s, want %s", inc.UpdatedAt, t0.Add(time.Minute))
	}
	if got := counterValue(t, tel, "otelcol_exporter_impact_incidents_stale"); got != 1 {
		t.Fatalf("stale = %d, want 1", got)
	}
	if got := counterValue(t, tel, "otelcol_exporter_impact_incidents_upserted", attribute.String("type", "updated")); got != 1 {
		t.Fatalf("updated = %d, want 1", got)
	}
	if e.store.Len() != 1 {
		t.Fatalf("count = %d", e.store.Len())
	}
}

func TestMergeRemovesAbsorbedIncidents(t *testing.T) {
	e := startExporter(t, testConfig(t), nil, nil)
	a, b := oomChain(), oomChain()
	b.ID, b.TraceIDs = "correlation-2", []string{traceB}
	consume(t, e, a, b)
	if e.store.Len() != 2 {
		t.Fatalf("count = %d", e.store.Len())
	}
	merged := oomChain()
	merged.Version = 2
	merged.MergedIDs = []string{"correlation-2"}
	consume(t, e, merged)
	if raw, _ := e.store.get("correlation-2"); raw != nil {
		t.Fatal("absorbed incident is still stored")
	}
	list, _ := e.store.list(incidentQuery{TraceID: traceB})
	if len(list) != 1 || e.store.Len() != 1 {
		t.Fatalf("trace %s lists %d incidents, store holds %d; want 1 and 1", traceB, len(list), e.store.Len())
	}
}

func TestRetention(t *testing.T) {
	e, tel, clock, base := startRetentionExporter(t)

	for i := range 3 {
		c := oomChain()
		c.ID = fmt.Sprintf("old-%d", i)
		consume(t, e, c)
	}
	clock.Set(base.Add(40 * time.Minute))
	fresh := oomChain()
	fresh.ID = "fresh"
	consume(t, e, fresh)

	clock.Set(base.Add(61 * time.Minute))
	e.expireOnce()
	if e.store.Len() != 1 {
		t.Fatalf("count after expiry = %d, want 1", e.store.Len())
	}
	for _, q := range []incidentQuery{{}, {TraceID: traceA}, {Service: "checkout"}, {Severity: impactapi.SeverityHigh}} {
		list, err := e.store.list(q)
		if err != nil || len(list) != 1 {
			t.Fatalf("query %+v lists %d after expiry (err %v), want 1: every index must be cleaned", q, len(list), err)
		}
	}
	if got := counterValue(t, tel, "otelcol_exporter_impact_incidents_expired"); got != 3 {
		t.Fatalf("expired = %d, want 3", got)
	}
	// Dependencies observed only before the cutoff expire as well.
	clock.Set(base.Add(3 * time.Hour))
	e.expireOnce()
	if e.store.Len() != 0 || len(e.store.dependentsOf("payment")) != 0 {
		t.Fatalf("count %d, dependents %v after full expiry", e.store.Len(), e.store.dependentsOf("payment"))
	}
}

func TestListFiltersAndOrder(t *testing.T) {
	base := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	clock := &testClock{now: base}
	e := startExporter(t, testConfig(t), nil, nil, withClock(clock))
	for i := range 5 {
		clock.Set(base.Add(time.Duration(i) * time.Minute))
		c := oomChain()
		c.ID = fmt.Sprintf("inc-%d", i)
		c.TraceIDs = []string{traceA}
		if i%2 == 1 {
			c.Services = []string{"search"}
			c.TraceIDs = []string{traceB}
		}
		consume(t, e, c)
	}
	ids := func(q incidentQuery) string {
		list, err := e.store.list(q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, raw := range list {
			var inc impactapi.Incident
			mustUnmarshal(t, raw, &inc)
			out = append(out, inc.ID)
		}
		return fmt.Sprint(out)
	}
	tests := []struct {
		q    incidentQuery
		want string
	}{
		{incidentQuery{}, "[inc-4 inc-3 inc-2 inc-1 inc-0]"},
		{incidentQuery{Limit: 2}, "[inc-4 inc-3]"},
		{incidentQuery{TraceID: traceA}, "[inc-4 inc-2 inc-0]"},
		{incidentQuery{Service: "search"}, "[inc-3 inc-1]"},
		{incidentQuery{Service: "search", TraceID: traceA}, "[]"},
		{incidentQuery{Since: base.Add(2 * time.Minute)}, "[inc-4 inc-3 inc-2]"},
		{incidentQuery{TraceID: traceB, Since: base.Add(2 * time.Minute)}, "[inc-3]"},
		{incidentQuery{Severity: impactapi.SeverityHigh, Limit: 1}, "[inc-4]"},
		{incidentQuery{Severity: impactapi.SeverityMedium}, "[inc-3 inc-1]"},
		{incidentQuery{Severity: impactapi.SeverityCritical}, "[]"},
		{incidentQuery{Service: "checkout", Severity: impactapi.SeverityHigh}, "[inc-4 inc-2 inc-0]"},
	}
	for _, tt := range tests {
		if got := ids(tt.q); got != tt.want {
			t.Errorf("%+v: got %s, want %s", tt.q, got, tt.want)
		}
	}
}

func TestSecondExporterOnSameDirectoryFailsFast(t *testing.T) {
	cfg := testConfig(t)
	startExporter(t, cfg, nil, nil)
	cfg2 := *cfg
	cfg2.Storage.OpenTimeout = 100 * time.Millisecond
	e, err := newImpactExporter(exportertestSettings(), &cfg2)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.start(t.Context(), componenttest.NewNopHost()); err == nil {
		_ = e.shutdown(t.Context())
		t.Fatal("a second exporter opened a locked store")
	}
	if err := e.shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// Large batches are scored and encoded in parallel; every stored incident must still be its own,
// whole JSON document, also when invalid records sit between them.
func TestParallelBatchesStoreEveryIncidentIntact(t *testing.T) {
	e := startExporter(t, testConfig(t), nil, nil)
	want := map[string]bool{}
	for round := range 3 {
		ld := plog.NewLogs()
		for i := range 200 {
			c := oomChain()
			c.ID = fmt.Sprintf("r%d-%03d", round, i)
			rec := appendRecord(ld, c)
			if i%10 == 3 {
				rec.Attributes().PutStr(ue.KeyCorrelationFirstSeen, "not a time") // invalid: read, then dropped from the batch
			} else {
				want[c.ID] = true
			}
		}
		if err := e.consumeLogs(t.Context(), ld); err != nil {
			t.Fatal(err)
		}
	}
	if e.store.Len() != int64(len(want)) {
		t.Fatalf("stored %d, want %d", e.store.Len(), len(want))
	}
	for id := range want {
		raw, err := e.store.get(id)
		if err != nil || raw == nil {
			t.Fatalf("%s: %v", id, err)
		}
		var inc impactapi.Incident
		mustUnmarshal(t, raw, &inc)
		if inc.ID != id || len(inc.Chain) != 6 {
			t.Fatalf("%s holds incident %s with %d chain entries", id, inc.ID, len(inc.Chain))
		}
	}
}

// startRetentionExporter starts an exporter that keeps incidents for an hour, on a test clock at
// base, whose expiry the test drives itself (expireOnce).
func startRetentionExporter(t *testing.T) (e *impactExporter, tel *componenttest.Telemetry, clock *testClock, base time.Time) {
	t.Helper()
	tel = componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	cfg := testConfig(t)
	cfg.Storage.Retention = time.Hour
	cfg.Storage.RetentionInterval = time.Hour
	base = time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	clock = &testClock{now: base}
	return startExporter(t, cfg, nil, tel, withClock(clock)), tel, clock, base
}
