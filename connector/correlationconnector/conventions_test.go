package correlationconnector

import (
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
