package correlationconnector

import (
	"math/rand/v2"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

func TestSpanStoreExpiresWholeBuckets(t *testing.T) {
	window := int64(8 * time.Second) // buckets of 1s
	s := newSpanStore(1, window, 1000)
	t0 := scenarioStart.UnixNano()
	insert := func(at time.Duration, trace uint64, span, parent uint64) {
		nodes := make([][]spanNode, 1)
		nodes[0] = append(nodes[0], spanNode{trace: traceID(trace), span: spanID(span), parent: spanID(parent)})
		s.insert(nodes, t0+int64(at))
	}
	insert(0, 1, 1, 0)
	insert(500*time.Millisecond, 1, 2, 1)
	insert(3*time.Second, 1, 3, 2)
	insert(3*time.Second, 2, 1, 0)
	if s.len() != 4 {
		t.Fatalf("len %d", s.len())
	}
	shape := traceShape{}
	s.shapeOf(traceID(1), shape)
	if len(shape) != 3 || shape[spanID(3)].parent != spanID(2) {
		t.Fatalf("trace 1 shape %v", shape)
	}
	// At 8.9s the first bucket [0s, 1s) is not yet a whole window old; at 9s it is.
	if ch := s.expire(t0 + int64(8900*time.Millisecond)); ch.expired != 0 {
		t.Errorf("expired %d too early", ch.expired)
	}
	if ch := s.expire(t0 + int64(9*time.Second)); ch.expired != 2 {
		t.Errorf("expired %d, want the 2 spans of the first bucket", ch.expired)
	}
	clear(shape)
	s.shapeOf(traceID(1), shape)
	if len(shape) != 1 {
		t.Errorf("after expiry trace 1 keeps only its newest span, got %v", shape)
	}
	s.expire(t0 + int64(20*time.Second))
	if s.len() != 0 || s.shards[0].traces.len() != 0 {
		t.Errorf("everything must expire: %d nodes, %d traces", s.len(), s.shards[0].traces.len())
	}
}

// A failed span reaches the failed span it made fail through unremarkable spans, even when the
// spans arrive child first and in separate batches (children end, and are exported, first).
func TestTraceParentThroughUnremarkableSpansOutOfOrder(t *testing.T) {
	cfg := defaultConfig()
	cfg.DecisionWait = time.Second
	h := newHarness(t, cfg)
	tid := traceID(9)
	must(t, h.c.consumeTraces(ctx, tracesOf(sp{trace: tid, span: 4, parent: 3, kind: ptrace.SpanKindClient, name: unifiedevent.DependencyError, id: 4, service: "payment", entity: "pod-p", end: time.Second})))
	must(t, h.c.consumeTraces(ctx, tracesOf(sp{trace: tid, span: 3, parent: 2, kind: ptrace.SpanKindServer, service: "payment", end: 1100 * time.Millisecond})))
	// An application error log written inside the payment SERVER span (span 3): the failed CLIENT
	// span under it caused it, and it explains the checkout failure above.
	ld := logsOf(ev{name: unifiedevent.ErrorLog, id: 5, entity: "pod-p", service: "payment", trace: tid, at: 1050 * time.Millisecond})
	ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).SetSpanID(spanID(3))
	must(t, h.c.consumeLogs(ctx, ld))
	must(t, h.c.consumeTraces(ctx, tracesOf(sp{trace: tid, span: 2, parent: 1, kind: ptrace.SpanKindClient, service: "checkout", end: 1200 * time.Millisecond})))
	must(t, h.c.consumeTraces(ctx, tracesOf(sp{trace: tid, span: 1, kind: ptrace.SpanKindServer, name: unifiedevent.ServerError, id: 1, service: "checkout", entity: "pod-c", end: 1300 * time.Millisecond})))
	h.clock.Advance(2 * time.Second)
	h.flush()
	recs := h.records()
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	names := chainNames(recs[0])
	links := chainField(recs[0], unifiedevent.ChainKeyLinkReason)
	causes := chainField(recs[0], unifiedevent.ChainKeyLinkCause)
	want := []string{string(unifiedevent.DependencyError), string(unifiedevent.ErrorLog), string(unifiedevent.ServerError)}
	if !equalStrings(names, want) {
		t.Fatalf("chain %v", names)
	}
	if links[2] != "trace.parent" || causes[2] != eventID(5) {
		t.Errorf("the checkout SERVER span must be caused by the payment error log through two unremarkable spans: %s from %s", links[2], causes[2])
	}
	if links[1] != "trace.parent" || causes[1] != eventID(4) {
		t.Errorf("the error log in span 3 must be caused by the failed span under it: %s from %s", links[1], causes[1])
	}
}

func TestUnremarkableSpansNeverOpenIncidents(t *testing.T) {
	h := newHarness(t, defaultConfig())
	var spans []sp
	for i := 0; i < 100; i++ {
		spans = append(spans, sp{trace: traceID(uint64(i)), span: 1, kind: ptrace.SpanKindServer, service: "s", entity: "pod-s"})
	}
	must(t, h.c.consumeTraces(ctx, tracesOf(spans...)))
	must(t, h.c.Shutdown(ctx))
	if n := len(h.records()); n != 0 {
		t.Errorf("%d records from healthy traffic", n)
	}
	if got := h.counter(t, "otelcol_connector_correlation_events_accepted", "kind", "span"); got != 100 {
		t.Errorf("spans accepted = %d", got)
	}
}

func TestContinuousEvidenceIsEmittedWithinMaxDecisionDelay(t *testing.T) {
	cfg := defaultConfig()
	cfg.DecisionWait = 5 * time.Second
	cfg.MaxDecisionDelay = 20 * time.Second
	h := newHarness(t, cfg)
	for i := 1; i <= 30; i++ { // one error a second: never quiet for 5s
		must(t, h.c.consumeLogs(ctx, logsOf(ev{name: unifiedevent.ErrorLog, id: i, entity: "pod-a", service: "a", at: h.clock.Now().Sub(scenarioStart)})))
		h.clock.Advance(time.Second)
		h.flush()
	}
	recs := h.records()
	if len(recs) != 1 {
		t.Fatalf("%d records after 30s of continuous evidence, want 1 (at 20s)", len(recs))
	}
	if c := str(recs[0].Attributes(), unifiedevent.KeyCorrelationEventCount); c != "20" {
		t.Errorf("event_count at the forced emission = %s, want 20", c)
	}
}

func TestPeerDirectory(t *testing.T) {
	d := newPeerDirectory(10, int64(time.Hour))
	now := scenarioStart.UnixNano()
	d.register(peerKey{addr: "10.0.0.7", port: 5432}, "pod-db", peerFromListen, now)
	d.register(peerKey{addr: "10.0.0.8", port: 0}, "pod-cache", peerFromPodIP, now)
	d.register(peerKey{addr: "ledger-db", port: 5432}, "pod-db", peerFromListen, now)
	tests := []struct {
		addr   string
		port   int64
		entity string
		via    peerSource
	}{
		{"10.0.0.7", 5432, "pod-db", peerFromListen},
		{"10.0.0.7", 80, "", peerUnknown},
		{"10.0.0.8", 6379, "pod-cache", peerFromPodIP},
		{"ledger-db.shop.svc.cluster.local", 5432, "pod-db", peerFromListen},
		{"ledger-db", 5432, "pod-db", peerFromListen},
		{"other.shop.svc", 5432, "", peerUnknown},
		{"", 5432, "", peerUnknown},
	}
	for _, tt := range tests {
		entity, via, ok := d.resolve(peerKey{addr: tt.addr, port: tt.port})
		if entity != tt.entity || via != tt.via || ok != (tt.entity != "") {
			t.Errorf("resolve(%s, %d) = %q %v %v, want %q %v", tt.addr, tt.port, entity, via, ok, tt.entity, tt.via)
		}
	}
	d.register(peerKey{addr: "10.0.0.8", port: 0}, "pod-cache", peerFromPodIP, now+int64(50*time.Minute)) // refreshed
	d.expire(now + int64(61*time.Minute))
	if _, _, ok := d.resolve(peerKey{addr: "10.0.0.7", port: 5432}); ok {
		t.Error("an entry not seen for the TTL must expire")
	}
	if _, _, ok := d.resolve(peerKey{addr: "10.0.0.8", port: 1}); !ok {
		t.Error("a refreshed entry must stay")
	}
	for _, tt := range []struct {
		addr string
		ip   bool
	}{{"10.0.0.7", true}, {"fe80::1", true}, {"ledger-db", false}, {"a.b.c", false}, {"", false}} {
		if looksLikeIP(tt.addr) != tt.ip {
			t.Errorf("looksLikeIP(%q) = %v", tt.addr, !tt.ip)
		}
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestParseEventID(t *testing.T) {
	var id [16]byte
	if !parseEventID("000102030405060708090a0b0c0d0eff", &id) || id[1] != 1 || id[10] != 0x0a || id[15] != 0xff {
		t.Errorf("parsed %x", id)
	}
	for _, bad := range []string{"", "xyz", "000102030405060708090A0B0C0D0EFF", "000102030405060708090a0b0c0d0eg0", "000102030405060708090a0b0c0d0e"} {
		if parseEventID(bad, &id) {
			t.Errorf("parseEventID(%q) accepted", bad)
		}
		if parseEventID(bad, &id) != unifiedevent.ValidEventID(bad) {
			t.Errorf("parseEventID(%q) disagrees with ValidEventID", bad)
		}
	}
}

// An event that no earlier event explains still says how it belongs to the incident.
func TestUnexplainedEventsCarryTheirJoinLink(t *testing.T) {
	cfg := defaultConfig()
	cfg.DecisionWait = time.Second
	h := newHarness(t, cfg)
	must(t, h.c.consumeLogs(ctx, logsOf(
		ev{name: unifiedevent.Listen, entity: "pod-db", service: "db", attrs: map[string]any{unifiedevent.KeySourceAddress: "10.0.0.7", unifiedevent.KeySourcePort: 5432}},
		ev{name: unifiedevent.ConnectionRefused, id: 1, entity: "pod-pay", service: "payment",
			attrs: map[string]any{unifiedevent.KeyDestinationAddress: "10.0.0.7", unifiedevent.KeyDestinationPort: 5432}},
		ev{name: unifiedevent.OOMKill, id: 2, entity: "pod-db", service: "db", at: 5 * time.Second},
	)))
	h.clock.Advance(2 * time.Second)
	h.flush()
	recs := h.records()
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	names := chainNames(recs[0])
	links := chainField(recs[0], unifiedevent.ChainKeyLinkReason)
	details := chainField(recs[0], unifiedevent.ChainKeyLinkDetail)
	causes := chainField(recs[0], unifiedevent.ChainKeyLinkCause)
	if !equalStrings(names, []string{string(unifiedevent.ConnectionRefused), string(unifiedevent.OOMKill)}) {
		t.Fatalf("chain %v: an OOM kill 5s after the refusal cannot have caused it", names)
	}
	if links[1] != "entity" || causes[1] != "" || details[1] != "no earlier event explains it; it joined by its entity key" {
		t.Errorf("second entry: reason %q cause %q detail %q", links[1], causes[1], details[1])
	}
	if c := str(recs[0].Attributes(), unifiedevent.KeyCorrelationConfidence); c != "0.9" {
		t.Errorf("confidence %s", c)
	}
}

// TestSpanStoreAcrossChunksAndCap fills buckets past several chunks and the shard's cap: every
// node of a trace spread over chunks and buckets stays reachable, eviction at the cap drops the
// oldest bucket whole, and what expires gives its chunks back.
func TestSpanStoreAcrossChunksAndCap(t *testing.T) {
	window := int64(8 * time.Second)
	const capacity = 5 * chunkNodes
	s := newSpanStore(1, window, capacity)
	t0 := scenarioStart.UnixNano()
	// Trace 1 gets one span every 1000 nodes, across three buckets of 2.5 chunks each.
	var want []uint64
	for b := 0; b < 3; b++ {
		nodes := make([][]spanNode, 1)
		for i := 0; i < 5*chunkNodes/2; i++ {
			n := uint64(b*10*chunkNodes + i + 2)
			trace := n
			if i%1000 == 0 {
				trace = 1
				if b > 0 {
					want = append(want, n) // the first bucket is evicted at the cap
				}
			}
			nodes[0] = append(nodes[0], spanNode{trace: traceID(trace), span: spanID(n), parent: spanID(n - 1)})
		}
		ch := s.insert(nodes, t0+int64(b)*int64(time.Second))
		if wantEvicted := map[int]int{0: 0, 1: 0, 2: 5 * chunkNodes / 2}[b]; ch.evicted != wantEvicted {
			t.Fatalf("bucket %d: evicted %d, want %d", b, ch.evicted, wantEvicted)
		}
	}
	if s.len() != capacity {
		t.Fatalf("store holds %d nodes, want its cap %d", s.len(), capacity)
	}
	shape := traceShape{}
	s.shapeOf(traceID(1), shape)
	if len(shape) != len(want) {
		t.Fatalf("trace 1 has %d nodes, want %d", len(shape), len(want))
	}
	for _, n := range want {
		if shape[spanID(n)].parent != spanID(n-1) {
			t.Fatalf("node %d of trace 1 missing or wrong: %v", n, shape[spanID(n)])
		}
	}
	s.expire(t0 + int64(20*time.Second))
	sh := s.shards[0]
	if s.len() != 0 || sh.traces.len() != 0 || len(sh.free) > 1 {
		t.Fatalf("after expiry: %d nodes, %d traces, %d free chunks kept", s.len(), sh.traces.len(), len(sh.free))
	}
}

// The spans of many traces, interleaved within each insert and across inserts, with evictions in
// the middle of inserts: every trace still held lists exactly its spans still held.
func TestSpanStoreLinksInterleavedTraces(t *testing.T) {
	const capacity = 3 * chunkNodes
	s := newSpanStore(1, int64(time.Hour), capacity)
	rng := rand.New(rand.NewPCG(7, 8))
	t0 := scenarioStart.UnixNano()
	var order []pcommon.SpanID // every span inserted, oldest first
	traceOf := map[pcommon.SpanID]uint64{}
	next := uint64(1)
	for round := 0; round < 12; round++ {
		nodes := make([][]spanNode, 1)
		for i := 0; i < chunkNodes; i++ {
			trace := uint64(rng.IntN(400)) + uint64(round/4)*400 // traces live across a few inserts
			id := spanID(next)
			next++
			nodes[0] = append(nodes[0], spanNode{trace: traceID(trace), span: id})
			order = append(order, id)
			traceOf[id] = trace
		}
		s.insert(nodes, t0+int64(round)*int64(time.Millisecond))
	}
	held := order[len(order)-s.len():] // eviction drops the oldest whole buckets
	want := map[uint64]map[pcommon.SpanID]bool{}
	for _, id := range held {
		tr := traceOf[id]
		if want[tr] == nil {
			want[tr] = map[pcommon.SpanID]bool{}
		}
		want[tr][id] = true
	}
	for tr, spans := range want {
		shape := traceShape{}
		s.shapeOf(traceID(tr), shape)
		if len(shape) != len(spans) {
			t.Fatalf("trace %d: %d spans linked, want %d", tr, len(shape), len(spans))
		}
		for id := range spans {
			if _, ok := shape[id]; !ok {
				t.Fatalf("trace %d: span %v not linked", tr, id)
			}
		}
	}
}
