package correlationconnector

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

// Which groups of events are incidents: only those with an observed consequence, or with an event
// the policy names serious on its own.
func TestIncidentPolicy(t *testing.T) {
	listen := ev{name: unifiedevent.Listen, entity: "vm/100", attrs: map[string]any{
		unifiedevent.KeySourceAddress: "127.0.0.1", unifiedevent.KeySourcePort: 6379}}
	exit := func(entity, signal string) ev {
		e := ev{name: unifiedevent.ProcessExit, id: 2, entity: entity, at: time.Second}
		if signal != "" {
			e.attrs = map[string]any{unifiedevent.KeyKernelSignalName: signal}
		}
		return e
	}
	for _, tc := range []struct {
		name      string
		events    []ev
		incidents int
		withheld  map[unifiedevent.Name]int64
	}{
		{"a short-lived process exiting non-zero is an event, not an incident",
			[]ev{exit("vm/200", "")}, 0, map[unifiedevent.Name]int64{unifiedevent.ProcessExit: 1}},
		{"a tool that crashes is an event, not an incident",
			[]ev{{name: unifiedevent.FatalSignal, id: 1, entity: "vm/201", attrs: map[string]any{unifiedevent.KeyKernelSignalName: "SIGSEGV"}}, exit("vm/201", "SIGSEGV")},
			0, map[unifiedevent.Name]int64{unifiedevent.FatalSignal: 1, unifiedevent.ProcessExit: 1}},
		{"a serving workload that crashes is an incident on its own",
			[]ev{listen, exit("vm/100", "SIGSEGV")}, 1, nil},
		{"a serving workload stopped by SIGTERM, with nothing failing, is not an incident",
			[]ev{listen, exit("vm/100", "SIGTERM")}, 0, map[unifiedevent.Name]int64{unifiedevent.ProcessExit: 1}},
		{"an OOM kill is an incident on its own",
			[]ev{{name: unifiedevent.OOMKill, id: 1, entity: "vm/300"}}, 1, nil},
		{"a refused connection nobody suffered from is not an incident",
			[]ev{{name: unifiedevent.ConnectionRefused, id: 1, entity: "vm/400", attrs: map[string]any{
				unifiedevent.KeyDestinationAddress: "127.0.0.1", unifiedevent.KeyDestinationPort: 8080}}},
			0, map[unifiedevent.Name]int64{unifiedevent.ConnectionRefused: 1}},
		{"a refused connection with the error it caused is an incident",
			[]ev{{name: unifiedevent.ConnectionRefused, id: 1, entity: "vm/400"}, {name: unifiedevent.ErrorLog, id: 2, entity: "vm/400", at: time.Second}},
			1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, defaultConfig())
			must(t, h.c.consumeLogs(ctx, logsOf(tc.events...)))
			h.clock.Advance(time.Hour)
			h.flush()
			if got := len(h.records()); got != tc.incidents {
				t.Fatalf("%d incidents, want %d", got, tc.incidents)
			}
			for name, want := range tc.withheld {
				if got := h.counter(t, "otelcol_connector_correlation_events_without_consequence", "event_name", string(name)); got != want {
					t.Errorf("events without consequence %s = %d, want %d", name, got, want)
				}
			}
		})
	}
}

// A failed call made outside any request — a CLIENT span without a parent, as a connection pool's
// redial after a dependency's clean restart — is no incident by itself: nobody's request failed.
// It becomes one when such failures go on for recovery_delay, and a failed call inside a request
// is a consequence at once, as before. With recovery_delay 0 every failed call is.
func TestACallOutsideAnyRequestIsAConsequenceOnlyWhenItsFailuresPersist(t *testing.T) {
	refusedDial := func(span uint64, at time.Duration, parent uint64) sp {
		return sp{trace: traceID(span), span: span, parent: parent, kind: ptrace.SpanKindClient, name: unifiedevent.DependencyError,
			id: int(span), service: "catalog", end: at, attrs: map[string]any{unifiedevent.KeyServerAddress: "127.0.0.1", unifiedevent.KeyServerPort: 6379}}
	}
	for _, tc := range []struct {
		name          string
		recoveryDelay time.Duration
		spans         []sp
		incidents     int
		basis         string
	}{
		{"one redial refused while the dependency restarts", 2 * time.Second,
			[]sp{refusedDial(1, time.Second, 0)}, 0, ""},
		{"redials refused for less than recovery_delay", 2 * time.Second,
			[]sp{refusedDial(1, time.Second, 0), refusedDial(2, 2500*time.Millisecond, 0)}, 0, ""},
		{"redials refused for recovery_delay: the dependency stays down", 2 * time.Second,
			[]sp{refusedDial(1, time.Second, 0), refusedDial(2, 2500*time.Millisecond, 0), refusedDial(3, 3*time.Second, 0)}, 1, "outside any request"},
		{"a call inside a request fails: a consequence at once", 2 * time.Second,
			[]sp{refusedDial(1, time.Second, 7)}, 1, "observed consequence"},
		{"recovery_delay 0: every failed call is a consequence", 0,
			[]sp{refusedDial(1, time.Second, 0)}, 1, "observed consequence"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := defaultConfig()
			cfg.Incidents.RecoveryDelay = tc.recoveryDelay
			h := newHarness(t, cfg)
			for _, s := range tc.spans {
				must(t, h.c.consumeTraces(ctx, tracesOf(s)))
			}
			h.clock.Advance(time.Hour)
			h.flush()
			recs := h.records()
			if len(recs) != tc.incidents {
				t.Fatalf("%d incidents, want %d", len(recs), tc.incidents)
			}
			if tc.incidents == 0 {
				if got := h.counter(t, "otelcol_connector_correlation_events_without_consequence", "event_name", string(unifiedevent.DependencyError)); got != int64(len(tc.spans)) {
					t.Errorf("events without consequence = %d, want %d: a withheld failure is counted", got, len(tc.spans))
				}
				return
			}
			if detail := chainField(recs[0], unifiedevent.ChainKeyLinkDetail)[0]; !strings.Contains(detail, tc.basis) {
				t.Errorf("the root's link detail %q must say why it is an incident (%q)", detail, tc.basis)
			}
		})
	}
}

// Nothing lone is emitted at Shutdown either: the store holds incidents only.
func TestLoneEventsAreNotFlushedAtShutdown(t *testing.T) {
	h := newHarness(t, defaultConfig())
	must(t, h.c.consumeLogs(ctx, logsOf(ev{name: unifiedevent.ProcessExit, id: 1, entity: "vm/1"})))
	must(t, h.c.Shutdown(ctx))
	if n := len(h.records()); n != 0 {
		t.Fatalf("%d records at shutdown, want none", n)
	}
}

// A refused readiness probe, followed by healthy traffic to the same address, is not the root cause
// of an outage there later; without the healthy traffic in between it would be.
func TestRecoveryBreaksCausality(t *testing.T) {
	refused := func(id int, at time.Duration) ev {
		return ev{name: unifiedevent.ConnectionRefused, id: id, entity: "vm/10", at: at, attrs: map[string]any{
			unifiedevent.KeyDestinationAddress: "127.0.0.1", unifiedevent.KeyDestinationPort: 5432}}
	}
	healthy := func(at time.Duration) ptrace.Traces {
		return tracesOf(sp{trace: traceID(9), span: 1, kind: ptrace.SpanKindClient, service: "orders", end: at,
			attrs: map[string]any{unifiedevent.KeyServerAddress: "127.0.0.1", unifiedevent.KeyServerPort: 5432}})
	}
	for _, tc := range []struct {
		name        string
		healthyCall bool
		root        string
	}{
		{"healthy traffic in between: the later refusal is the root cause", true, eventID(3)},
		{"no healthy traffic in between: the probe's refusal is the root cause", false, eventID(1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, defaultConfig())
			must(t, h.c.consumeLogs(ctx, logsOf(refused(1, 0))))
			if tc.healthyCall {
				h.clock.Set(scenarioStart.Add(5 * time.Second))
				must(t, h.c.consumeTraces(ctx, healthy(5*time.Second)))
			}
			h.clock.Set(scenarioStart.Add(10 * time.Second))
			must(t, h.c.consumeLogs(ctx, logsOf(refused(3, 10*time.Second),
				ev{name: unifiedevent.ErrorLog, id: 4, entity: "vm/10", at: 10*time.Second + time.Millisecond})))
			h.clock.Advance(time.Hour)
			h.flush()
			recs := h.records()
			if len(recs) != 1 {
				t.Fatalf("%d incidents, want 1", len(recs))
			}
			if got := str(recs[0].Attributes(), unifiedevent.KeyRootCauseEventID); got != tc.root {
				t.Errorf("root cause %s, want %s (chain %v)", got, tc.root, chainNames(recs[0]))
			}
			if detail := chainField(recs[0], unifiedevent.ChainKeyLinkDetail)[0]; strings.Contains(detail, "recovered") != tc.healthyCall {
				t.Errorf("the root's link detail %q must say whether earlier failures had recovered", detail)
			}
		})
	}
}

// An outage that goes on is served while it goes on: the first version at most decision_wait after
// the first consequence, then new versions as evidence grows — not only once it has been quiet —
// each twice as long after the one before, up to max_update_interval; with it 0, one about every
// decision_wait. When the evidence stops, the last version leaves after decision_wait.
func TestIncidentIsServedWhileTheOutageGoesOn(t *testing.T) {
	for _, tc := range []struct {
		maxUpdate time.Duration
		wantGaps  []time.Duration // between versions while the outage goes on
	}{
		{maxUpdate: 8 * time.Second, wantGaps: []time.Duration{4 * time.Second, 8 * time.Second, 8 * time.Second}},
		{maxUpdate: 0, wantGaps: []time.Duration{2 * time.Second, 2 * time.Second, 2 * time.Second, 2 * time.Second, 2 * time.Second}},
	} {
		t.Run(fmt.Sprintf("max_update_interval=%s", tc.maxUpdate), func(t *testing.T) {
			cfg := defaultConfig()
			cfg.DecisionWait = 2 * time.Second
			cfg.MaxUpdateInterval = tc.maxUpdate
			h := newHarness(t, cfg)
			must(t, h.c.consumeLogs(ctx, logsOf(ev{name: unifiedevent.OOMKill, id: 1, entity: "vm/5"})))
			const step, outage = 250 * time.Millisecond, 30 * time.Second
			var versionsAt []time.Duration
			for at := 100 * time.Millisecond; at <= outage+3*time.Second; at += step {
				h.clock.Set(scenarioStart.Add(at))
				if at <= outage {
					must(t, h.c.consumeLogs(ctx, logsOf(ev{name: unifiedevent.ErrorLog, entity: "vm/5", at: at})))
				}
				h.flush()
				for len(versionsAt) < len(h.records()) {
					versionsAt = append(versionsAt, at)
				}
			}
			if len(versionsAt) == 0 || versionsAt[0] > 100*time.Millisecond+cfg.DecisionWait {
				t.Fatalf("versions at %v: want the first within decision_wait (%s) of the first consequence at 100ms", versionsAt, cfg.DecisionWait)
			}
			last := versionsAt[len(versionsAt)-1]
			if last <= outage || last > outage+cfg.DecisionWait+step {
				t.Errorf("versions at %v: want the last within decision_wait after the evidence stopped at %s", versionsAt, outage)
			}
			for i, want := range tc.wantGaps {
				if i+1 >= len(versionsAt) {
					t.Fatalf("versions at %v: want gaps %v while the outage goes on", versionsAt, tc.wantGaps)
				}
				if got := versionsAt[i+1] - versionsAt[i]; got < want || got > want+step {
					t.Errorf("versions at %v: gap %d is %s, want %s", versionsAt, i+1, got, want)
				}
			}
		})
	}
}
