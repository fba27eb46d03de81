package impactexporter

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/yairfalse/tapio/pkg/impactapi"
	ue "github.com/yairfalse/tapio/pkg/unifiedevent"
)

type fixedDependents map[string][]string

func (d fixedDependents) dependentsOf(s string) []string { return d[s] }

func scoreOf(t *testing.T, cfg ImpactConfig, c ue.CorrelationRecord, deps dependents) impactapi.Incident {
	t.Helper()
	inc, _, err := readCorrelation(logsOf(c).ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0))
	if err != nil {
		t.Fatal(err)
	}
	newScorer(cfg).score(&inc, deps)
	return inc
}

func defaultImpact() ImpactConfig { return createDefaultConfig().(*Config).Impact }

func configuredImpact() ImpactConfig {
	cfg := createDefaultConfig().(*Config)
	businessConfig(cfg)
	return cfg.Impact
}

func unavailableFigures(im impactapi.Impact) map[string]string {
	out := map[string]string{}
	for _, u := range im.Unavailable {
		out[u.Figure] = u.Reason
	}
	return out
}

func TestScoringUnconfiguredLeavesFiguresAbsent(t *testing.T) {
	inc := scoreOf(t, defaultImpact(), oomChain(), nil)
	im := inc.Impact
	if im.CustomerFacing != nil || im.FailedTransactions != nil || im.RevenueAtRisk != nil || im.SLOBurn != nil {
		t.Fatalf("unconfigured figures must be absent, got %+v", im)
	}
	want := map[string]string{
		figureCustomerFacing:     "impact.customer_facing is not configured",
		figureFailedTransactions: "impact.transactions.routes is not configured; 2 failed requests counted in failed_requests",
		figureRevenueAtRisk:      "impact.transactions.value_per_transaction is not configured",
		figureSLOBurn:            "impact.slos is not configured",
	}
	if got := unavailableFigures(im); !reflect.DeepEqual(got, want) {
		t.Fatalf("unavailable = %v, want %v", got, want)
	}
	// Data-backed figures need no configuration.
	if im.AffectedUsers == nil || im.AffectedUsers.Count != 2 {
		t.Fatalf("affected users = %+v, want 2", im.AffectedUsers)
	}
	if im.Cascade == nil || len(im.Cascade.Services) != 3 || im.Cascade.Level != "MEDIUM" {
		t.Fatalf("cascade = %+v", im.Cascade)
	}
	// Failed requests are counted from the data: the two failed checkout SERVER spans are root
	// spans. Without transactions configured they weigh in the score instead.
	if fr := im.FailedRequests; fr == nil || fr.Count != 2 || len(fr.Routes) != 1 || fr.Routes[0] != "checkout /api/checkout" {
		t.Fatalf("failed requests = %+v, want 2 on checkout /api/checkout", fr)
	}
	// root cause 0.30 + 2 failed requests 0.10 + 2 users 0.05 + 2 more services on the chain 0.10
	if inc.Score != 0.55 || inc.Severity != impactapi.SeverityHigh {
		t.Fatalf("score %v %s, want 0.55 HIGH; factors %+v", inc.Score, inc.Severity, im.ScoreFactors)
	}
}

func TestScoringConfiguredComputesEveryFigure(t *testing.T) {
	inc := scoreOf(t, configuredImpact(), oomChain(), fixedDependents{"checkout": {"web"}, "web": {"mobile-bff"}})
	im := inc.Impact
	if len(im.Unavailable) != 0 {
		t.Fatalf("unavailable = %+v, want none", im.Unavailable)
	}
	if cf := im.CustomerFacing; cf == nil || !cf.Value || !reflect.DeepEqual(cf.Services, []string{"checkout"}) {
		t.Fatalf("customer facing = %+v", cf)
	}
	if ft := im.FailedTransactions; ft == nil || ft.Count != 2 {
		t.Fatalf("failed transactions = %+v, want 2 (the two SERVER 500s; CLIENT errors are not transactions)", ft)
	}
	want := &impactapi.Money{Amount: 85, Currency: "EUR", Source: "2 failed transactions × 42.50 EUR configured per transaction"}
	if !reflect.DeepEqual(im.RevenueAtRisk, want) {
		t.Fatalf("revenue = %+v, want %+v", im.RevenueAtRisk, want)
	}
	if len(im.SLOBurn) != 1 {
		t.Fatalf("slo burn = %+v", im.SLOBurn)
	}
	b := im.SLOBurn[0]
	if b.BadEvents != 2 || math.Abs(b.BudgetEvents-1000) > 1e-6 || math.Abs(b.BudgetConsumed-0.002) > 1e-9 {
		t.Fatalf("slo burn = %+v, want 2 of a 1000-request budget", b)
	}
	if b.Source != "checkout availability 99.9% over 720h0m0s: 2 tapio.trace.server_error spans of an error budget of 1000 requests ((1 − 0.999) × 1000000 expected)" {
		t.Fatalf("slo source = %q", b.Source)
	}
	if c := im.Cascade; !reflect.DeepEqual(c.DependentsAtRisk, []string{"mobile-bff", "web"}) || c.Level != "HIGH" {
		t.Fatalf("cascade = %+v", c)
	}
	// 0.30 root + 0.20 customer-facing + 0.10 failed + 0.05 users + 0.05 slo + 0.15 cascade (capped)
	if inc.Score != 0.85 || inc.Severity != impactapi.SeverityCritical {
		t.Fatalf("score %v %s, want 0.85 CRITICAL; factors %+v", inc.Score, inc.Severity, im.ScoreFactors)
	}
	sum := 0.0
	for _, f := range im.ScoreFactors {
		if f.Reason == "" {
			t.Errorf("factor %s has no reason", f.Factor)
		}
		sum += f.Contribution
	}
	if math.Abs(sum-inc.Score) > 1e-9 {
		t.Fatalf("factors add to %v, score is %v", sum, inc.Score)
	}
}

func TestScoringTable(t *testing.T) {
	kernelOnly := func() ue.CorrelationRecord {
		c := oomChain()
		c.Chain = c.Chain[:2]
		c.TraceIDs, c.PrimaryTraceID = nil, pcommon.TraceID{}
		return c
	}
	tests := []struct {
		name  string
		cfg   func(*ImpactConfig)
		input func() ue.CorrelationRecord
		check func(t *testing.T, inc impactapi.Incident)
	}{
		{
			name:  "configured transactions but no spans on the chain: absent, not zero",
			cfg:   func(c *ImpactConfig) { *c = configuredImpact() },
			input: kernelOnly,
			check: func(t *testing.T, inc impactapi.Incident) {
				if inc.Impact.FailedTransactions != nil || inc.Impact.RevenueAtRisk != nil || inc.Impact.AffectedUsers != nil || inc.Impact.SLOBurn != nil {
					t.Fatalf("figures without data must be absent: %+v", inc.Impact)
				}
				u := unavailableFigures(inc.Impact)
				if u[figureFailedTransactions] != "the chain has no spans to count transactions on" ||
					u[figureRevenueAtRisk] != "failed transactions are absent (see failed_transactions)" ||
					u[figureFailedRequests] != "the chain has no spans to count requests on" {
					t.Fatalf("unavailable = %v", u)
				}
			},
		},
		{
			name: "configured routes that no failed request is on: absent, never zero-filled",
			cfg: func(c *ImpactConfig) {
				*c = configuredImpact()
				c.Transactions.Routes = []RouteMatch{{Route: "/api/refund"}}
			},
			input: oomChain,
			check: func(t *testing.T, inc impactapi.Incident) {
				if ft, r := inc.Impact.FailedTransactions, inc.Impact.RevenueAtRisk; ft != nil || r != nil {
					t.Fatalf("failed transactions %+v, revenue %+v: want both absent", ft, r)
				}
				u := unavailableFigures(inc.Impact)
				if got := u[figureFailedTransactions]; got != "no failed request on a configured transaction route; 2 failed requests on other routes" {
					t.Fatalf("failed transactions unavailable because %q", got)
				}
				if inc.Impact.FailedRequests == nil || inc.Impact.FailedRequests.Count != 2 {
					t.Fatalf("failed requests = %+v, want 2", inc.Impact.FailedRequests)
				}
			},
		},
		{
			name:  "customer-facing by route on any service",
			cfg:   func(c *ImpactConfig) { c.CustomerFacing.Routes = []string{"/api/checkout"} },
			input: oomChain,
			check: func(t *testing.T, inc impactapi.Incident) {
				if cf := inc.Impact.CustomerFacing; cf == nil || !cf.Value || !reflect.DeepEqual(cf.Routes, []string{"/api/checkout"}) {
					t.Fatalf("customer facing = %+v", cf)
				}
			},
		},
		{
			name:  "configured customer-facing service not on the chain: false",
			cfg:   func(c *ImpactConfig) { c.CustomerFacing.Services = []string{"search"} },
			input: oomChain,
			check: func(t *testing.T, inc impactapi.Incident) {
				if cf := inc.Impact.CustomerFacing; cf == nil || cf.Value {
					t.Fatalf("customer facing = %+v", cf)
				}
			},
		},
		{
			name: "users: one identity per span, most specific key first, distinct",
			cfg:  func(*ImpactConfig) {},
			input: func() ue.CorrelationRecord {
				c := oomChain()
				c.Chain[2].SessionID = "sess-1"
				c.Chain[3].UserID = "u-1"
				c.Chain[3].SessionID = "sess-2"
				c.Chain[5].EndUserID = "user-17" // same user as chain[4]
				return c
			},
			check: func(t *testing.T, inc impactapi.Incident) {
				u := inc.Impact.AffectedUsers
				want := map[string]int64{ue.KeyEndUserID: 1, ue.KeyUserID: 1, ue.KeySessionID: 1}
				if u == nil || u.Count != 3 || !reflect.DeepEqual(u.ByKey, want) {
					t.Fatalf("affected users = %+v", u)
				}
			},
		},
		{
			name: "no user ids: absent",
			cfg:  func(*ImpactConfig) {},
			input: func() ue.CorrelationRecord {
				c := oomChain()
				c.Chain[4].EndUserID, c.Chain[5].EndUserID, c.Chain[5].SessionID = "", "", ""
				return c
			},
			check: func(t *testing.T, inc impactapi.Incident) {
				if inc.Impact.AffectedUsers != nil {
					t.Fatalf("affected users = %+v", inc.Impact.AffectedUsers)
				}
			},
		},
		{
			name: "latency SLO counts slow spans",
			cfg: func(c *ImpactConfig) {
				c.SLOs = []SLOConfig{{Service: "checkout", Route: "/api/checkout", Latency: 0.99, Window: time.Hour, ExpectedRequests: 200}}
			},
			input: func() ue.CorrelationRecord {
				c := oomChain()
				c.Chain[4].EventName = string(ue.SlowSpan)
				return c
			},
			check: func(t *testing.T, inc impactapi.Incident) {
				b := inc.Impact.SLOBurn
				if len(b) != 1 || b[0].Objective != "latency" || b[0].BadEvents != 1 || math.Abs(b[0].BudgetConsumed-0.5) > 1e-9 {
					t.Fatalf("slo burn = %+v", b)
				}
			},
		},
		{
			name: "SLO of a service without spans on the chain: absent",
			cfg: func(c *ImpactConfig) {
				c.SLOs = []SLOConfig{{Service: "search", Availability: 0.99, Window: time.Hour, ExpectedRequests: 10}}
			},
			input: oomChain,
			check: func(t *testing.T, inc impactapi.Incident) {
				if inc.Impact.SLOBurn != nil || unavailableFigures(inc.Impact)[figureSLOBurn] == "" {
					t.Fatalf("slo burn = %+v", inc.Impact)
				}
			},
		},
		{
			name: "warning-level root cause on one service: LOW",
			cfg:  func(*ImpactConfig) {},
			input: func() ue.CorrelationRecord {
				c := oomChain()
				c.RootCause.EventName = string(ue.TCPRetransmit)
				c.Chain = c.Chain[1:2]
				c.Services = []string{"payment"}
				return c
			},
			check: func(t *testing.T, inc impactapi.Incident) {
				if inc.Score != 0.15 || inc.Severity != impactapi.SeverityLow || inc.Impact.Cascade.Level != "LOW" {
					t.Fatalf("score %v %s cascade %+v", inc.Score, inc.Severity, inc.Impact.Cascade)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := defaultImpact()
			tt.cfg(&cfg)
			tt.check(t, scoreOf(t, cfg, tt.input(), nil))
		})
	}
}

func TestDependencyEdges(t *testing.T) {
	inc, _, err := readCorrelation(logsOf(oomChain()).ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0))
	if err != nil {
		t.Fatal(err)
	}
	var got [][2]string
	dependencyEdges(&inc, func(dep, dependent string) { got = append(got, [2]string{dep, dependent}) })
	want := [][2]string{{"ledger-db", "payment"}, {"payment", "checkout"}, {"payment", "checkout"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("edges = %v, want %v", got, want)
	}
}

// A chain cut at max_events_per_incident counts what it kept: the figures say they are a floor.
func TestCountsOnACutChainSayTheyAreAFloor(t *testing.T) {
	c := oomChain()
	c.EventCount = 5000
	inc := scoreOf(t, configuredImpact(), c, nil)
	for _, src := range []string{inc.Impact.FailedRequests.Source, inc.Impact.FailedTransactions.Source} {
		if !strings.Contains(src, "at least: the chain keeps 6 of the incident's 5000 events") {
			t.Errorf("source %q does not say the count is a floor", src)
		}
	}
	if full := scoreOf(t, configuredImpact(), oomChain(), nil); strings.Contains(full.Impact.FailedRequests.Source, "at least") {
		t.Errorf("a whole chain's count is exact: %q", full.Impact.FailedRequests.Source)
	}
}

// A chain entry that stands for merged repeats (log_count) counts as its events: a whole chain
// whose refused connects were merged into one entry is not a floor, and the API shows the count.
func TestAMergedChainEntryCountsAsItsEvents(t *testing.T) {
	c := oomChain()
	refused := slices.IndexFunc(c.Chain, func(e ue.ChainEntry) bool { return e.EventName == string(ue.ConnectionRefused) })
	if refused < 0 {
		t.Fatal("the oom_chain scenario has no connection_refused entry")
	}
	c.Chain[refused].Count = 1000
	c.EventCount += 999
	inc := scoreOf(t, configuredImpact(), c, nil)
	if got := inc.Chain[refused].Count; got != 1000 {
		t.Errorf("chain entry count %d, want 1000", got)
	}
	if src := inc.Impact.FailedRequests.Source; strings.Contains(src, "at least") {
		t.Errorf("a whole chain with a merged entry is exact, not a floor: %q", src)
	}
	c.EventCount++
	cut := scoreOf(t, configuredImpact(), c, nil)
	want := fmt.Sprintf("at least: the chain keeps %d of the incident's %d events", c.EventCount-1, c.EventCount)
	if src := cut.Impact.FailedRequests.Source; !strings.Contains(src, want) {
		t.Errorf("source %q, want it to say %q", src, want)
	}
	for i, e := range inc.Chain {
		if i != refused && e.Count != 0 {
			t.Errorf("chain entry %d (%s) has count %d; only the merged one has one", i, e.EventName, e.Count)
		}
	}
}
