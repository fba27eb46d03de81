package impactexporter

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/yairfalse/tapio/pkg/impactapi"
	ue "github.com/yairfalse/tapio/pkg/unifiedevent"
)

// Names of the figures and score factors, as the API reports them.
const (
	figureRootCause          = "root_cause"
	figureCustomerFacing     = "customer_facing"
	figureFailedRequests     = "failed_requests"
	figureFailedTransactions = "failed_transactions"
	figureRevenueAtRisk      = "revenue_at_risk"
	figureAffectedUsers      = "affected_users"
	figureSLOBurn            = "slo_burn"
	figureCascade            = "cascade"
)

// Score contributions. They are documented in the README; the score is their sum, capped at 1.
const (
	rootCauseError   = 0.30
	rootCauseWarning = 0.15
	rootCauseOther   = 0.05
	customerFacing   = 0.20
	cascadePerHop    = 0.05
	cascadeMax       = 0.15
)

// stepContribution is a contribution that grows in steps with a count.
type stepContribution struct {
	atLeast float64
	value   float64
}

var (
	failedTransactionSteps = []stepContribution{{100, 0.20}, {10, 0.15}, {1, 0.10}}
	affectedUserSteps      = []stepContribution{{100, 0.15}, {10, 0.10}, {1, 0.05}}
	budgetConsumedSteps    = []stepContribution{{1, 0.20}, {0.1, 0.10}, {math.SmallestNonzeroFloat64, 0.05}}
)

func step(steps []stepContribution, x float64) float64 {
	for _, s := range steps {
		if x >= s.atLeast {
			return s.value
		}
	}
	return 0
}

// dependents answers which services were observed depending on a service.
type dependents interface {
	dependentsOf(service string) []string
}

// scorer turns a correlation into an impact. It is read-only after construction and safe for
// concurrent use.
type scorer struct {
	cfg           ImpactConfig
	customerSvc   map[string]struct{}
	customerRoute map[string]struct{}
}

func newScorer(cfg ImpactConfig) *scorer {
	s := &scorer{cfg: cfg, customerSvc: map[string]struct{}{}, customerRoute: map[string]struct{}{}}
	for _, v := range cfg.CustomerFacing.Services {
		s.customerSvc[v] = struct{}{}
	}
	for _, v := range cfg.CustomerFacing.Routes {
		s.customerRoute[v] = struct{}{}
	}
	return s
}

// score fills inc.Impact, inc.Score and inc.Severity from the chain and the configuration.
func (s *scorer) score(inc *impactapi.Incident, deps dependents) {
	im := impactapi.Impact{}
	total := 0.0
	factor := func(name string, c float64, reason string) {
		if c <= 0 {
			return
		}
		total += c
		im.ScoreFactors = append(im.ScoreFactors, impactapi.ScoreFactor{Factor: name, Contribution: c, Reason: reason})
	}
	unavailable := func(figure, reason string) {
		im.Unavailable = append(im.Unavailable, impactapi.Unavailable{Figure: figure, Reason: reason})
	}

	c, reason := rootCauseContribution(inc.RootCause.EventName)
	factor(figureRootCause, c, reason)

	hasSpans := slices.ContainsFunc(inc.Chain, isSpanEntry)

	// Customer-facing.
	if len(s.customerSvc) == 0 && len(s.customerRoute) == 0 {
		unavailable(figureCustomerFacing, "impact.customer_facing is not configured")
	} else {
		im.CustomerFacing = s.customerFacing(inc)
		if im.CustomerFacing.Value {
			factor(figureCustomerFacing, customerFacing, im.CustomerFacing.Source)
		}
	}

	// Failed requests, from the data; failed transactions and revenue at risk, from the
	// configured transaction routes — absent, with the reason, when none is configured or no
	// failed request is on one.
	if hasSpans {
		im.FailedRequests = s.failedRequests(inc)
	} else {
		unavailable(figureFailedRequests, "the chain has no spans to count requests on")
	}
	switch {
	case len(s.cfg.Transactions.Routes) == 0:
		unavailable(figureFailedTransactions, "impact.transactions.routes is not configured"+requestsBesides(im.FailedRequests, ""))
	case !hasSpans:
		unavailable(figureFailedTransactions, "the chain has no spans to count transactions on")
	default:
		if ft := s.failedTransactions(inc); ft.Count > 0 {
			im.FailedTransactions = ft
			factor(figureFailedTransactions, step(failedTransactionSteps, float64(ft.Count)), ft.Source)
		} else {
			unavailable(figureFailedTransactions, "no failed request on a configured transaction route"+requestsBesides(im.FailedRequests, "other routes"))
		}
	}
	if im.FailedTransactions == nil && im.FailedRequests != nil && im.FailedRequests.Count > 0 {
		// Without transactions to weigh the failures, the failed requests stand in for them.
		factor(figureFailedRequests, step(failedTransactionSteps, float64(im.FailedRequests.Count)), im.FailedRequests.Source)
	}
	switch {
	case s.cfg.Transactions.ValuePerTransaction <= 0:
		unavailable(figureRevenueAtRisk, "impact.transactions.value_per_transaction is not configured")
	case im.FailedTransactions == nil:
		unavailable(figureRevenueAtRisk, "failed transactions are absent (see failed_transactions)")
	default:
		v := s.cfg.Transactions.ValuePerTransaction
		n := im.FailedTransactions.Count
		im.RevenueAtRisk = &impactapi.Money{
			Amount:   float64(n) * v,
			Currency: s.cfg.Transactions.Currency,
			Source: fmt.Sprintf("%d failed transactions × %s %s configured per transaction",
				n, formatAmount(v), s.cfg.Transactions.Currency),
		}
	}

	// Affected users.
	if users := affectedUsers(inc); users != nil {
		im.AffectedUsers = users
		factor(figureAffectedUsers, step(affectedUserSteps, float64(users.Count)), users.Source)
	} else {
		unavailable(figureAffectedUsers, "no enduser.id, user.id or session.id on the chain's spans")
	}

	// SLO burn.
	if len(s.cfg.SLOs) == 0 {
		unavailable(figureSLOBurn, "impact.slos is not configured")
	} else {
		im.SLOBurn = s.sloBurn(inc)
		if len(im.SLOBurn) == 0 {
			unavailable(figureSLOBurn, "no configured SLO's service has spans on the chain")
		} else {
			worst := slices.MaxFunc(im.SLOBurn, func(a, b impactapi.SLOBurn) int {
				return cmp.Compare(a.BudgetConsumed, b.BudgetConsumed)
			})
			factor(figureSLOBurn, step(budgetConsumedSteps, worst.BudgetConsumed),
				fmt.Sprintf("worst SLO: %s", worst.Source))
		}
	}

	// Cascade risk.
	if len(inc.Services) == 0 {
		unavailable(figureCascade, "no service.name on the chain")
	} else {
		im.Cascade = cascade(inc, deps)
		hops := float64(len(im.Cascade.Services) - 1 + len(im.Cascade.DependentsAtRisk))
		factor(figureCascade, min(cascadeMax, cascadePerHop*hops), im.Cascade.Source)
	}

	inc.Impact = im
	inc.Score = math.Round(min(1, total)*1000) / 1000
	inc.Severity = s.severity(inc.Score)
}

func (s *scorer) severity(score float64) impactapi.Severity {
	th := s.cfg.SeverityThresholds
	switch {
	case score >= th.Critical:
		return impactapi.SeverityCritical
	case score >= th.High:
		return impactapi.SeverityHigh
	case score >= th.Medium:
		return impactapi.SeverityMedium
	}
	return impactapi.SeverityLow
}

func rootCauseContribution(name string) (float64, string) {
	if name == "" {
		return rootCauseOther, "the record names no root cause event"
	}
	def, ok := ue.Lookup(name)
	if !ok {
		if name == string(ue.MetricThresholdBreach) {
			return rootCauseWarning, fmt.Sprintf("root cause %s is a metric threshold breach, weighed as a warning", name)
		}
		return rootCauseOther, fmt.Sprintf("root cause %s is not in the event catalogue", name)
	}
	switch {
	case def.Severity >= plog.SeverityNumberError:
		return rootCauseError, fmt.Sprintf("root cause %s is an error-level event in the catalogue", name)
	case def.Severity >= plog.SeverityNumberWarn:
		return rootCauseWarning, fmt.Sprintf("root cause %s is a warning-level event in the catalogue", name)
	}
	return rootCauseOther, fmt.Sprintf("root cause %s is an informational event in the catalogue", name)
}

// isSpanEntry reports whether a chain entry is a span (or was written inside one).
func isSpanEntry(e impactapi.ChainEntry) bool {
	return e.TraceID != "" && (e.SpanKind != "" || e.Layer == ue.LayerTrace.String())
}

func (s *scorer) customerFacing(inc *impactapi.Incident) *impactapi.CustomerFacing {
	cf := &impactapi.CustomerFacing{}
	for _, svc := range inc.Services {
		if _, ok := s.customerSvc[svc]; ok && !slices.Contains(cf.Services, svc) {
			cf.Services = append(cf.Services, svc)
		}
	}
	for _, e := range inc.Chain {
		if e.Service != "" {
			if _, ok := s.customerSvc[e.Service]; ok && !slices.Contains(cf.Services, e.Service) {
				cf.Services = append(cf.Services, e.Service)
			}
		}
		if e.HTTPRoute != "" {
			if _, ok := s.customerRoute[e.HTTPRoute]; ok && !slices.Contains(cf.Routes, e.HTTPRoute) {
				cf.Routes = append(cf.Routes, e.HTTPRoute)
			}
		}
	}
	cf.Value = len(cf.Services) > 0 || len(cf.Routes) > 0
	switch {
	case cf.Value:
		var parts []string
		if len(cf.Services) > 0 {
			parts = append(parts, "configured customer-facing services on the chain: "+strings.Join(cf.Services, ", "))
		}
		if len(cf.Routes) > 0 {
			parts = append(parts, "configured customer-facing routes on the chain: "+strings.Join(cf.Routes, ", "))
		}
		cf.Source = strings.Join(parts, "; ")
	default:
		cf.Source = "none of the configured customer-facing services or routes is on the chain"
	}
	return cf
}

func (m RouteMatch) matches(e impactapi.ChainEntry) bool {
	return e.HTTPRoute == m.Route && (m.Service == "" || m.Service == e.Service)
}

// spanKey identifies the span of a chain entry, so a span reported twice counts once.
func spanKey(e impactapi.ChainEntry) string {
	if e.SpanID != "" {
		return e.TraceID + "/" + e.SpanID
	}
	if e.EventID != "" {
		return e.EventID
	}
	return e.TraceID + "/" + e.Time.String() + "/" + e.Narrative
}

// keptOnly says when a count is a lower bound: the connector kept fewer events on the chain
// (max_events_per_incident) than the incident had, and the figures count the chain. An entry
// that stands for merged repeats (count) counts as its events.
func keptOnly(inc *impactapi.Incident) string {
	var onChain int64
	for _, e := range inc.Chain {
		onChain += max(e.Count, 1)
	}
	if inc.EventCount <= onChain {
		return ""
	}
	return fmt.Sprintf("; at least: the chain keeps %d of the incident's %d events", onChain, inc.EventCount)
}

// requestsBesides completes an absence reason with the failed requests counted anyway: "; 139
// failed requests on other routes".
func requestsBesides(fr *impactapi.FailedRequests, where string) string {
	if fr == nil || fr.Count == 0 {
		return ""
	}
	noun := "failed requests"
	if fr.Count == 1 {
		noun = "failed request"
	}
	if where == "" {
		return fmt.Sprintf("; %d %s counted in failed_requests", fr.Count, noun)
	}
	return fmt.Sprintf("; %d %s on %s", fr.Count, noun, where)
}

// failedRequests counts distinct failed SERVER spans where requests entered: root spans, and
// spans of configured customer-facing services.
func (s *scorer) failedRequests(inc *impactapi.Incident) *impactapi.FailedRequests {
	fr := &impactapi.FailedRequests{}
	seen := map[string]struct{}{}
	byRoute := map[string]int{}
	for _, e := range inc.Chain {
		if e.EventName != string(ue.ServerError) || !isSpanEntry(e) {
			continue
		}
		_, customerFacing := s.customerSvc[e.Service]
		if e.ParentSpanID != "" && !customerFacing {
			continue
		}
		k := spanKey(e)
		if _, dup := seen[k]; dup {
			continue
		}
		seen[k] = struct{}{}
		fr.Count++
		route := e.Service
		if e.HTTPRoute != "" {
			route += " " + e.HTTPRoute
		}
		if route != "" {
			byRoute[route]++
		}
	}
	fr.Routes = slices.SortedFunc(maps.Keys(byRoute), func(a, b string) int {
		return cmp.Or(cmp.Compare(byRoute[b], byRoute[a]), cmp.Compare(a, b))
	})
	where := "root spans"
	if len(s.customerSvc) > 0 {
		where += " and configured customer-facing services (" + strings.Join(slices.Sorted(maps.Keys(s.customerSvc)), ", ") + ")"
	}
	fr.Source = fmt.Sprintf("%d distinct failed SERVER spans (%s) at entry points: %s", fr.Count, ue.ServerError, where) + keptOnly(inc)
	return fr
}

func (s *scorer) failedTransactions(inc *impactapi.Incident) *impactapi.FailedTransactions {
	ft := &impactapi.FailedTransactions{}
	seen := map[string]struct{}{}
	for _, e := range inc.Chain {
		if e.EventName != string(ue.ServerError) || !isSpanEntry(e) {
			continue
		}
		for _, m := range s.cfg.Transactions.Routes {
			if !m.matches(e) {
				continue
			}
			k := spanKey(e)
			if _, dup := seen[k]; !dup {
				seen[k] = struct{}{}
				ft.Count++
				if r := m.String(); !slices.Contains(ft.Routes, r) {
					ft.Routes = append(ft.Routes, r)
				}
			}
			break
		}
	}
	routes := make([]string, len(s.cfg.Transactions.Routes))
	for i, m := range s.cfg.Transactions.Routes {
		routes[i] = m.String()
	}
	ft.Source = fmt.Sprintf("%d distinct %s spans on configured transaction routes (%s)",
		ft.Count, ue.ServerError, strings.Join(routes, ", ")) + keptOnly(inc)
	return ft
}

// affectedUsers counts distinct identities on the chain's spans. A span names its user by the
// most specific key it carries — enduser.id, else user.id, else session.id — so one request
// carrying both a user and a session counts once.
func affectedUsers(inc *impactapi.Incident) *impactapi.AffectedUsers {
	type identity struct{ key, value string }
	seen := map[identity]struct{}{}
	byKey := map[string]int64{}
	for _, e := range inc.Chain {
		if e.TraceID == "" {
			continue
		}
		var id identity
		switch {
		case e.EndUserID != "":
			id = identity{ue.KeyEndUserID, e.EndUserID}
		case e.UserID != "":
			id = identity{ue.KeyUserID, e.UserID}
		case e.SessionID != "":
			id = identity{ue.KeySessionID, e.SessionID}
		default:
			continue
		}
		if _, dup := seen[id]; !dup {
			seen[id] = struct{}{}
			byKey[id.key]++
		}
	}
	if len(seen) == 0 {
		return nil
	}
	keys := slices.Sorted(maps.Keys(byKey))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", byKey[k], k)
	}
	return &impactapi.AffectedUsers{
		Count:  int64(len(seen)),
		ByKey:  byKey,
		Source: "distinct values on the chain's spans: " + strings.Join(parts, ", "),
	}
}

func (s *scorer) sloBurn(inc *impactapi.Incident) []impactapi.SLOBurn {
	var out []impactapi.SLOBurn
	for _, slo := range s.cfg.SLOs {
		observed := false
		var failed, slow int64
		seenFailed, seenSlow := map[string]struct{}{}, map[string]struct{}{}
		for _, e := range inc.Chain {
			if !isSpanEntry(e) || e.Service != slo.Service {
				continue
			}
			observed = true
			if slo.Route != "" && e.HTTPRoute != slo.Route {
				continue
			}
			switch e.EventName {
			case string(ue.ServerError):
				if _, dup := seenFailed[spanKey(e)]; !dup {
					seenFailed[spanKey(e)] = struct{}{}
					failed++
				}
			case string(ue.SlowSpan):
				if _, dup := seenSlow[spanKey(e)]; !dup {
					seenSlow[spanKey(e)] = struct{}{}
					slow++
				}
			}
		}
		if !observed {
			continue
		}
		scope := slo.Service
		if slo.Route != "" {
			scope += " " + slo.Route
		}
		add := func(objective string, target float64, bad int64, what ue.Name) {
			budget := (1 - target) * slo.ExpectedRequests
			consumed := float64(bad) / budget
			out = append(out, impactapi.SLOBurn{
				Service: slo.Service, Route: slo.Route, Objective: objective, Target: target,
				WindowSeconds: slo.Window.Seconds(), BadEvents: bad, BudgetEvents: budget,
				BudgetConsumed: consumed,
				Source: fmt.Sprintf("%s %s %s%% over %s: %d %s spans of an error budget of %s requests ((1 − %s) × %s expected)",
					scope, objective, formatPercent(target), slo.Window, bad, what,
					formatAmount(budget), formatFloat(target), formatAmount(slo.ExpectedRequests)),
			})
		}
		if slo.Availability > 0 {
			add("availability", slo.Availability, failed, ue.ServerError)
		}
		if slo.Latency > 0 {
			add("latency", slo.Latency, slow, ue.SlowSpan)
		}
	}
	return out
}

// cascadeDepth bounds the walk through observed dependents.
const cascadeDepth = 3

func cascade(inc *impactapi.Incident, deps dependents) *impactapi.Cascade {
	c := &impactapi.Cascade{Services: slices.Clone(inc.Services)}
	onChain := map[string]struct{}{}
	for _, s := range inc.Services {
		onChain[s] = struct{}{}
	}
	if deps != nil {
		frontier := inc.Services
		seen := map[string]struct{}{}
		for depth := 0; depth < cascadeDepth && len(frontier) > 0; depth++ {
			var next []string
			for _, svc := range frontier {
				for _, d := range deps.dependentsOf(svc) {
					if _, ok := onChain[d]; ok {
						continue
					}
					if _, ok := seen[d]; ok {
						continue
					}
					seen[d] = struct{}{}
					c.DependentsAtRisk = append(c.DependentsAtRisk, d)
					next = append(next, d)
				}
			}
			frontier = next
		}
		slices.Sort(c.DependentsAtRisk)
	}
	reach := len(c.Services) + len(c.DependentsAtRisk)
	switch {
	case reach >= 4:
		c.Level = "HIGH"
	case reach >= 2:
		c.Level = "MEDIUM"
	default:
		c.Level = "LOW"
	}
	c.Source = fmt.Sprintf("%d services on the chain (%s)", len(c.Services), strings.Join(c.Services, ", "))
	if len(c.DependentsAtRisk) > 0 {
		c.Source += fmt.Sprintf("; %d more observed depending on them (%s)", len(c.DependentsAtRisk), strings.Join(c.DependentsAtRisk, ", "))
	} else {
		c.Source += "; no other service observed depending on them"
	}
	return c
}

// dependencyEdges are the service dependencies a chain shows: the service of an effect depends
// on the service of its cause.
func dependencyEdges(inc *impactapi.Incident, yield func(dependency, dependent string)) {
	byEventID := make(map[string]string, len(inc.Chain))
	for _, e := range inc.Chain {
		if e.EventID != "" && e.Service != "" {
			byEventID[e.EventID] = e.Service
		}
	}
	for _, e := range inc.Chain {
		if e.Service == "" || e.Link.CauseEventID == "" {
			continue
		}
		if cause, ok := byEventID[e.Link.CauseEventID]; ok && cause != e.Service {
			yield(cause, e.Service)
		}
	}
}

// formatAmount prints an amount to the cent, without decimals when it is whole.
func formatAmount(v float64) string {
	v = math.Round(v*100) / 100
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func formatPercent(v float64) string {
	return strconv.FormatFloat(math.Round(v*100*1e6)/1e6, 'f', -1, 64)
}
