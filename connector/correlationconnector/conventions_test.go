package correlationconnector

import (
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

// A CLIENT span that names its peer with the older net.peer.* keys (as the JS auto-instrumentation
// does by default) reaches the entity serving that address, so a kernel fault there is its root
// cause.
func TestOlderPeerKeysLinkToTheServingEntity(t *testing.T) {
	for _, keys := range [][2]string{
		{unifiedevent.KeyNetPeerNameLegacy, unifiedevent.KeyNetPeerPortLegacy},
		{unifiedevent.KeyServerAddress, unifiedevent.KeyServerPort},
		{unifiedevent.KeyNetSockPeerAddrLegacy, unifiedevent.KeyNetSockPeerPortLegacy},
	} {
		t.Run(keys[0], func(t *testing.T) {
			h := newHarness(t, defaultConfig())
			must(t, h.c.consumeLogs(ctx, logsOf(
				ev{name: unifiedevent.Listen, entity: "vm/4242", attrs: map[string]any{
					unifiedevent.KeySourceAddress: "127.0.0.1", unifiedevent.KeySourcePort: 5432}},
				ev{name: unifiedevent.OOMKill, id: 1, entity: "vm/4242", at: time.Second},
			)))
			must(t, h.c.consumeTraces(ctx, tracesOf(sp{trace: traceID(1), span: 2, parent: 1, kind: ptrace.SpanKindClient,
				name: unifiedevent.DependencyError, id: 2, service: "orders", end: 1100 * time.Millisecond,
				attrs: map[string]any{keys[0]: "127.0.0.1", keys[1]: 5432, unifiedevent.KeyDBSystemLegacy: "postgresql"}})))
			h.clock.Advance(time.Hour)
			h.flush()
			recs := h.records()
			if len(recs) != 1 {
				t.Fatalf("%d incidents, want 1", len(recs))
			}
			if got := str(recs[0].Attributes(), unifiedevent.KeyRootCauseEventName); got != string(unifiedevent.OOMKill) {
				t.Errorf("root cause %s, want the OOM kill (chain %v, links %v)", got, chainNames(recs[0]), chainField(recs[0], unifiedevent.ChainKeyLinkReason))
			}
		})
	}
}

// A pool's connect span and the driver's connect span inside it are one logical call: the chain
// shows the inner, most specific failure once.
func TestNestedClientSpansOfOneCallCountOnce(t *testing.T) {
	h := newHarness(t, defaultConfig())
	tr := traceID(7)
	must(t, h.c.consumeTraces(ctx, tracesOf(
		sp{trace: tr, span: 3, parent: 2, kind: ptrace.SpanKindClient, name: unifiedevent.DependencyError, id: 3, service: "orders", end: 100 * time.Millisecond,
			attrs: map[string]any{unifiedevent.KeyNetPeerNameLegacy: "127.0.0.1", unifiedevent.KeyNetPeerPortLegacy: 5432}},
		sp{trace: tr, span: 2, parent: 1, kind: ptrace.SpanKindClient, name: unifiedevent.DependencyError, id: 2, service: "orders", end: 110 * time.Millisecond},
		sp{trace: tr, span: 1, kind: ptrace.SpanKindServer, name: unifiedevent.ServerError, id: 1, service: "orders", end: 120 * time.Millisecond},
	)))
	h.clock.Advance(time.Hour)
	h.flush()
	recs := h.records()
	if len(recs) != 1 {
		t.Fatalf("%d incidents, want 1", len(recs))
	}
	names := chainNames(recs[0])
	if want := []string{string(unifiedevent.DependencyError), string(unifiedevent.ServerError)}; !slices.Equal(names, want) {
		t.Fatalf("chain %v, want %v", names, want)
	}
	if ids := chainField(recs[0], unifiedevent.KeyEventID); ids[0] != eventID(3) {
		t.Errorf("the chain keeps %s, want the inner call %s", ids[0], eventID(3))
	}
	if n := str(recs[0].Attributes(), unifiedevent.KeyCorrelationEventCount); n != "2" {
		t.Errorf("event count %s, want 2", n)
	}
}
