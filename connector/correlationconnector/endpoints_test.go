package correlationconnector

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

// rootOfOneIncident flushes everything and returns the root-cause entity of the one incident.
func rootOfOneIncident(t *testing.T, h *harness) string {
	t.Helper()
	h.clock.Advance(time.Hour)
	h.flush()
	recs := h.records()
	if len(recs) != 1 {
		t.Fatalf("%d incidents, want 1", len(recs))
	}
	return str(recs[0].Attributes(), unifiedevent.KeyRootCauseEntityID)
}

// Many workloads listen on 127.0.0.1:8080, one per network namespace: a refused connection in one
// namespace is about the listener of that namespace, and a wildcard listen serves loopback.
func TestLoopbackEndpointsAreScopedByHostAndNamespace(t *testing.T) {
	host := map[string]any{unifiedevent.KeyHostName: "node-a"}
	listen := func(entity, addr string, netns int) ev {
		attrs := map[string]any{unifiedevent.KeySourceAddress: addr, unifiedevent.KeySourcePort: 8080}
		if netns != 0 {
			attrs[unifiedevent.KeyNetworkNamespace] = netns
		}
		return ev{name: unifiedevent.Listen, entity: entity, resource: host, attrs: attrs}
	}
	refusedFrom := func(netns int) ev {
		attrs := map[string]any{unifiedevent.KeyDestinationAddress: "127.0.0.1", unifiedevent.KeyDestinationPort: 8080}
		if netns != 0 {
			attrs[unifiedevent.KeyNetworkNamespace] = netns
		}
		return ev{name: unifiedevent.ConnectionRefused, id: 10, entity: "node-a/900", resource: host, at: 2 * time.Second, attrs: attrs}
	}
	for _, tc := range []struct {
		name    string
		listens []ev
		netns   int
		root    string
	}{
		{"namespace A", []ev{listen("node-a/1", "127.0.0.1", 4026531001), listen("node-a/2", "127.0.0.1", 4026531002)}, 4026531001, "node-a/1"},
		{"namespace B", []ev{listen("node-a/1", "127.0.0.1", 4026531001), listen("node-a/2", "127.0.0.1", 4026531002)}, 4026531002, "node-a/2"},
		{"the collector's namespace, wildcard listen", []ev{listen("node-a/3", "0.0.0.0", 0), listen("node-a/2", "127.0.0.1", 4026531002)}, 0, "node-a/3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, defaultConfig())
			must(t, h.c.consumeLogs(ctx, logsOf(tc.listens...)))
			// The listener's kill is what the client's failure is about.
			var kills []ev
			for i, l := range tc.listens {
				kills = append(kills, ev{name: unifiedevent.OOMKill, id: 1 + i, entity: l.entity, resource: host, at: time.Second})
			}
			must(t, h.c.consumeLogs(ctx, logsOf(kills...)))
			must(t, h.c.consumeLogs(ctx, logsOf(refusedFrom(tc.netns),
				ev{name: unifiedevent.ErrorLog, id: 11, entity: "node-a/900", resource: host, at: 2*time.Second + time.Millisecond})))
			h.clock.Advance(time.Hour)
			h.flush()
			for _, r := range h.records() {
				if str(r.Attributes(), unifiedevent.KeyCorrelationEventCount) == "1" {
					continue // the other namespace's OOM kill, an incident of its own
				}
				if got := str(r.Attributes(), unifiedevent.KeyRootCauseEntityID); got != tc.root {
					t.Errorf("root cause on %s, want %s (chain %v)", got, tc.root, chainField(r, unifiedevent.ChainKeyLinkDetail))
				}
				return
			}
			t.Fatal("no incident holds the refused connection")
		})
	}
}

// A server-side socket event says which workload accepted connections on an endpoint: a client's
// failure to reach it later is about that workload.
func TestAcceptedConnectionsNameTheServingWorkload(t *testing.T) {
	host := map[string]any{unifiedevent.KeyHostName: "node-a"}
	h := newHarness(t, defaultConfig())
	must(t, h.c.consumeLogs(ctx, logsOf(
		ev{name: unifiedevent.ConnectionReset, id: 1, entity: "node-a/7", resource: host, attrs: map[string]any{
			unifiedevent.KeyNetworkSide: "server", unifiedevent.KeySourceAddress: "127.0.0.1", unifiedevent.KeySourcePort: 6379,
			unifiedevent.KeyDestinationAddress: "127.0.0.1", unifiedevent.KeyDestinationPort: 40000}},
	)))
	h.clock.Advance(time.Hour) // the reset's group closes: nobody suffered from it
	h.flush()
	h.clock.Set(scenarioStart.Add(time.Hour + time.Minute))
	must(t, h.c.consumeLogs(ctx, logsOf(
		ev{name: unifiedevent.OOMKill, id: 2, entity: "node-a/7", resource: host, at: time.Hour + time.Minute},
		ev{name: unifiedevent.ConnectionRefused, id: 3, entity: "node-a/900", resource: host, at: time.Hour + time.Minute + time.Second, attrs: map[string]any{
			unifiedevent.KeyDestinationAddress: "127.0.0.1", unifiedevent.KeyDestinationPort: 6379}},
		ev{name: unifiedevent.ErrorLog, id: 4, entity: "node-a/900", resource: host, at: time.Hour + time.Minute + time.Second},
	)))
	if got := rootOfOneIncident(t, h); got != "node-a/7" {
		t.Errorf("root cause on %s, want node-a/7, the workload that accepted connections on 127.0.0.1:6379", got)
	}
}

// A SIGKILL sent by another workload joins that workload's events.
func TestASignalJoinsTheWorkloadThatSentIt(t *testing.T) {
	h := newHarness(t, defaultConfig())
	must(t, h.c.consumeLogs(ctx, logsOf(
		ev{name: unifiedevent.ErrorLog, id: 1, entity: "node-a/50", at: 0},
		ev{name: unifiedevent.FatalSignal, id: 2, entity: "node-a/9", at: time.Second, attrs: map[string]any{
			unifiedevent.KeyKernelSignalName: "SIGKILL", unifiedevent.KeyKernelSignalSenderEntityID: "node-a/50"}},
	)))
	h.clock.Advance(time.Hour)
	h.flush()
	if recs := h.records(); len(recs) != 1 || str(recs[0].Attributes(), unifiedevent.KeyCorrelationEventCount) != "2" {
		t.Fatalf("%d incidents; want one holding the sender's error and the kill", len(recs))
	}
}

// A span names 127.0.0.1:8080 without saying in which network namespace its process runs: it
// finds the kernel's failures to that address in any namespace of its host, while two kernel
// events in two namespaces never join through the host.
func TestSpansFindLoopbackFailuresInAnyNamespaceOfTheirHost(t *testing.T) {
	host := map[string]any{unifiedevent.KeyHostName: "node-a"}
	timeoutIn := func(id, netns int, entity string) ev {
		return ev{name: unifiedevent.ConnectionTimeout, id: id, entity: entity, resource: host, at: time.Second, attrs: map[string]any{
			unifiedevent.KeyDestinationAddress: "127.0.0.1", unifiedevent.KeyDestinationPort: 8080, unifiedevent.KeyNetworkNamespace: netns}}
	}
	h := newHarness(t, defaultConfig())
	must(t, h.c.consumeLogs(ctx, logsOf(timeoutIn(1, 4026531001, "node-a/10"), timeoutIn(2, 4026531002, "node-a/20"))))
	h.clock.Advance(time.Hour)
	h.flush()
	if n := len(h.records()); n != 0 {
		t.Fatalf("%d incidents from two lone timeouts in two namespaces, want none", n)
	}

	h = newHarness(t, defaultConfig())
	h.c.localHost = "node-a" // the span names no host: it is taken as from the collector's own
	must(t, h.c.consumeLogs(ctx, logsOf(timeoutIn(1, 4026531001, "node-a/10"))))
	// A call inside a request (its SERVER span is the parent).
	must(t, h.c.consumeTraces(ctx, tracesOf(sp{trace: traceID(3), span: 2, parent: 1, kind: ptrace.SpanKindClient, name: unifiedevent.DependencyError, id: 3,
		service: "catalog", end: 1100 * time.Millisecond, attrs: map[string]any{unifiedevent.KeyServerAddress: "127.0.0.1", unifiedevent.KeyServerPort: 8080}})))
	h.clock.Advance(time.Hour)
	h.flush()
	recs := h.records()
	if len(recs) != 1 || str(recs[0].Attributes(), unifiedevent.KeyRootCauseEventName) != string(unifiedevent.ConnectionTimeout) {
		t.Fatalf("%d incidents; want one rooted in the kernel's timeout in the span's namespace", len(recs))
	}
}

// Block I/O is issued by kernel threads, so nothing but the host and the moment ties an I/O error
// to the database that crashed on it: a crash within clock_skew after it is its effect.
func TestAnIOErrorExplainsACrashJustAfterItOnItsHost(t *testing.T) {
	host := map[string]any{unifiedevent.KeyHostName: "node-a"}
	for _, tc := range []struct {
		name  string
		crash time.Duration
		root  unifiedevent.Name
	}{
		{"crash 300ms after the I/O error", 300 * time.Millisecond, unifiedevent.IOError},
		{"crash 5s after: unrelated", 5 * time.Second, unifiedevent.FatalSignal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, defaultConfig())
			must(t, h.c.consumeLogs(ctx, logsOf(
				ev{name: unifiedevent.IOError, id: 1, entity: "node-a/77", resource: host, at: 0},
				ev{name: unifiedevent.FatalSignal, id: 2, entity: "node-a/500", resource: host, at: tc.crash, attrs: map[string]any{unifiedevent.KeyKernelSignalName: "SIGABRT"}},
				ev{name: unifiedevent.ErrorLog, id: 3, entity: "node-a/500", resource: host, at: tc.crash + time.Millisecond},
			)))
			h.clock.Advance(time.Hour)
			h.flush()
			var roots []string
			for _, r := range h.records() {
				roots = append(roots, str(r.Attributes(), unifiedevent.KeyRootCauseEventName))
			}
			if len(roots) != 1 || roots[0] != string(tc.root) {
				t.Fatalf("incidents rooted in %v, want one rooted in %s", roots, tc.root)
			}
		})
	}
}
