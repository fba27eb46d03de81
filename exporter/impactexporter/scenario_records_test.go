package impactexporter

import (
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/yairfalse/tapio/pkg/impactapi"
	ue "github.com/yairfalse/tapio/pkg/unifiedevent"
)

// The correlation connector's records for each of its scenarios, fed as it emitted them — batch by
// batch, untouched — become these incidents.
func TestScenarioRecordsBecomeIncidents(t *testing.T) {
	type incident struct {
		version int64
		root    ue.Name
		chain   []ue.Name
	}
	tests := map[string]map[string]incident{
		"kubernetes_and_kernel_oom": {"correlation-1": {1, ue.OOMKill, []ue.Name{ue.OOMKill, ue.PodOOMKilled}}},
		"late_evidence":             {"correlation-1": {2, ue.OOMKill, []ue.Name{ue.OOMKill, ue.ConnectionRefused, ue.ErrorLog}}},
		"oom_chain": {"correlation-1": {1, ue.OOMKill, []ue.Name{ue.OOMKill, ue.ConnectionRefused,
			ue.DependencyError, ue.DependencyError, ue.ServerError, ue.ServerError}}},
		"two_failures": {
			"correlation-1": {1, ue.OOMKill, nil},
			"correlation-2": {1, ue.IOError, nil},
		},
		"unrelated_noise": {"correlation-1": {1, ue.ConnectionRefused, []ue.Name{ue.ConnectionRefused, ue.DependencyError}}},
	}
	paths, err := filepath.Glob(filepath.Join(scenarioRecordsDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		if name := strings.TrimSuffix(filepath.Base(p), ".json"); tests[name] == nil {
			t.Errorf("scenario %s has records but no expectation here", name)
		}
	}
	for scenario, want := range tests {
		t.Run(scenario, func(t *testing.T) {
			e := startExporter(t, testConfig(t), nil, nil)
			ld := scenarioLogs(t, scenario)
			for i := 0; i < ld.ResourceLogs().Len(); i++ {
				batch := plog.NewLogs()
				ld.ResourceLogs().At(i).CopyTo(batch.ResourceLogs().AppendEmpty())
				if err := e.consumeLogs(t.Context(), batch); err != nil {
					t.Fatal(err)
				}
			}
			if e.store.Len() != int64(len(want)) {
				t.Fatalf("%d incidents stored, want %d", e.store.Len(), len(want))
			}
			for id, w := range want {
				inc := storedIncident(t, e, id)
				if inc.Version != w.version || inc.RootCause.EventName != string(w.root) {
					t.Errorf("%s: version %d, root cause %s; want %d, %s", id, inc.Version, inc.RootCause.EventName, w.version, w.root)
				}
				var chain []ue.Name
				for _, c := range inc.Chain {
					chain = append(chain, ue.Name(c.EventName))
				}
				if len(chain) == 0 || chain[0] != w.root || w.chain != nil && !slices.Equal(chain, w.chain) {
					t.Errorf("%s: chain %v, want %v starting with the root cause", id, chain, w.chain)
				}
				if inc.EventCount != int64(len(inc.Chain)) || inc.FirstSeen.IsZero() || inc.DetectedAt.Before(inc.FirstSeen) {
					t.Errorf("%s: %d events for %d chain entries, first seen %s, detected %s", id, inc.EventCount, len(inc.Chain), inc.FirstSeen, inc.DetectedAt)
				}
			}
		})
	}
}

// The business figures of the oom_chain incident, from the connector's own record and the test
// configuration (checkout is customer-facing, its /api/checkout route is worth 42.50 EUR per
// transaction, 99.9 % availability over 30 days of a million requests).
func TestScenarioOOMChainFigures(t *testing.T) {
	cfg := testConfig(t)
	businessConfig(cfg)
	e := startExporter(t, cfg, nil, nil)
	if err := e.consumeLogs(t.Context(), scenarioLogs(t, "oom_chain")); err != nil {
		t.Fatal(err)
	}
	inc := storedIncident(t, e, "correlation-1")
	im := inc.Impact
	if inc.Severity != impactapi.SeverityCritical || inc.Score != 0.8 {
		t.Errorf("severity %s score %v, want CRITICAL 0.8; factors %+v", inc.Severity, inc.Score, im.ScoreFactors)
	}
	if im.FailedTransactions == nil || im.FailedTransactions.Count != 2 {
		t.Errorf("failed transactions %+v, want the two checkout 500s", im.FailedTransactions)
	}
	if want := (&impactapi.Money{Amount: 85, Currency: "EUR", Source: "2 failed transactions × 42.50 EUR configured per transaction"}); !reflect.DeepEqual(im.RevenueAtRisk, want) {
		t.Errorf("revenue at risk %+v, want %+v", im.RevenueAtRisk, want)
	}
	if u := im.AffectedUsers; u == nil || u.Count != 2 || !reflect.DeepEqual(u.ByKey, map[string]int64{ue.KeyEndUserID: 2}) {
		t.Errorf("affected users %+v, want user-17 and user-42 by enduser.id", u)
	}
	if cf := im.CustomerFacing; cf == nil || !cf.Value || !reflect.DeepEqual(cf.Services, []string{"checkout"}) {
		t.Errorf("customer facing %+v", cf)
	}
	if len(im.SLOBurn) != 1 || im.SLOBurn[0].BadEvents != 2 {
		t.Errorf("slo burn %+v, want 2 bad events", im.SLOBurn)
	}
	if len(im.Unavailable) != 0 {
		t.Errorf("unavailable %+v: every figure is configured", im.Unavailable)
	}
	// The connector decided at most decision_wait (2 s) after the first consequence, 3 s after the
	// OOM kill.
	if inc.TimeToDetectionSeconds != 3 || !inc.DetectedAt.Equal(time.Date(2026, 11, 25, 3, 0, 13, 0, time.UTC)) {
		t.Errorf("detected %s, time to detection %v s", inc.DetectedAt, inc.TimeToDetectionSeconds)
	}
	if !reflect.DeepEqual(inc.TraceIDs, []string{traceA, traceB}) || len(inc.Recommendations) != 3 {
		t.Errorf("trace ids %v, %d recommendations", inc.TraceIDs, len(inc.Recommendations))
	}
}

func storedIncident(t *testing.T, e *impactExporter, id string) impactapi.Incident {
	t.Helper()
	raw, err := e.store.get(id)
	if err != nil || raw == nil {
		t.Fatalf("incident %s is not stored (%v)", id, err)
	}
	var inc impactapi.Incident
	mustUnmarshal(t, raw, &inc)
	return inc
}
