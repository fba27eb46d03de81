package correlationconnector

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

// Joining events the short way (joinAlike) leaves the book exactly as joining each the whole way
// does: the same incidents with the same counts, events, clocks and standing, the same bindings,
// the same write-ahead log operations, snapshots and self-telemetry. Random storms cross every
// cap, the window, recoveries, traces that lead to incidents, I/O errors and the crashes that
// look them up; each seed's calls run through two books, one with the short way off.
func TestAlikeJoinsLeaveTheBookAsWholeJoinsDo(t *testing.T) {
	taken := 0
	for seed := uint64(1); seed <= 400; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		cfg := defaultConfig()
		cfg.Window = 10 * time.Second
		cfg.Incidents.RecoveryDelay = time.Duration(rng.IntN(3)) * time.Second
		cfg.MaxEventsPerIncident = 1 + rng.IntN(4)
		cfg.MaxEvents = cfg.MaxEventsPerIncident + rng.IntN(20)
		cfg.MaxIncidents = 2 + rng.IntN(4)
		if rng.IntN(2) == 0 {
			cfg.Links.Host = 0.99 // a crash's host outweighs its other keys
		}
		if rng.IntN(2) == 0 {
			cfg.Links.Service, cfg.Links.Peer = 0.97, 0.98 // keys listed after the entity outweigh it
		}
		short, whole := newHarness(t, cfg).c, newHarness(t, cfg).c
		whole.book.alike.off = true
		shortIDs, wholeIDs := map[string]int{}, map[string]int{}

		now := scenarioStart.UnixNano()
		for call := 0; call < 40; call++ {
			now += int64(rng.IntN(1500)) * int64(time.Millisecond)
			if rng.IntN(12) == 0 {
				now += int64(cfg.Window) // a quiet spell: the window passes
			}
			events, health := randomCall(rng, now)
			for _, c := range []*correlator{short, whole} {
				c.health.record(slices.Clone(health))
			}
			got := joinForTest(short, slices.Clone(events), now, shortIDs)
			want := joinForTest(whole, slices.Clone(events), now, wholeIDs)
			if got != want {
				t.Fatalf("seed %d, call %d: the short way left\n%s\nthe whole way\n%s", seed, call, got, want)
			}
			if rng.IntN(4) == 0 {
				at := now + int64(rng.IntN(3))*int64(cfg.DecisionWait)
				got, want := dueForTest(short, at, shortIDs), dueForTest(whole, at, wholeIDs)
				if got != want {
					t.Fatalf("seed %d, call %d, flush: the short way left\n%s\nthe whole way\n%s", seed, call, got, want)
				}
			}
		}
		if whole.book.alike.taken != 0 {
			t.Fatalf("seed %d: %d joins went the short way with it off", seed, whole.book.alike.taken)
		}
		taken += short.book.alike.taken
	}
	// Most of the storms' events are alike: a test where none went the short way compares nothing.
	t.Logf("short joins: %d", taken)
	if taken < 10_000 {
		t.Fatalf("only %d joins went the short way", taken)
	}
}

// randomCall makes one Consume call's problem events — mostly repeats of a few templates, as in
// a storm — and the health observations recorded before them.
func randomCall(rng *rand.Rand, now int64) ([]pendingEvent, []healthObservation) {
	entities := []string{"checkout", "ledger-db", "cache"}
	services := []string{"shop", "ledger", ""}
	hosts := []string{"node-a", "node-b"}
	names := []unifiedevent.Name{unifiedevent.DependencyError, unifiedevent.ServerError, unifiedevent.ConnectionRefused,
		unifiedevent.OOMKill, unifiedevent.IOError}
	classes := []eventClass{classConsequence, classOutsideRequest, 0, classCrash | classServing, classSeriousAlone}
	template := func() pendingEvent {
		var e pendingEvent
		e.name = names[rng.IntN(len(names))]
		e.class = classes[rng.IntN(len(classes))]
		e.entity = entities[rng.IntN(len(entities))]
		e.service = services[rng.IntN(len(services))]
		if rng.IntN(2) == 0 {
			e.peerAddr, e.peerPort = "10.0.0.7", 5432
			if rng.IntN(2) == 0 {
				e.peerTarget = "ledger-db"
			}
		}
		if e.name == unifiedevent.IOError || e.name == unifiedevent.OOMKill || rng.IntN(4) == 0 {
			e.problemEvent.details = &eventDetails{host: hosts[rng.IntN(len(hosts))]}
		}
		return e
	}
	templates := make([]pendingEvent, 1+rng.IntN(3))
	for i := range templates {
		templates[i] = template()
	}
	var traces []pcommon.TraceID
	for i := range 4 {
		traces = append(traces, pcommon.TraceID{byte(rng.IntN(3)), byte(i + 1)})
	}
	n := rng.IntN(60)
	events := make([]pendingEvent, n)
	for i := range events {
		if rng.IntN(10) == 0 {
			events[i] = template()
		} else {
			events[i] = templates[rng.IntN(len(templates))]
		}
		e := &events[i]
		e.time = now - int64(rng.IntN(2000))*int64(time.Millisecond)
		if rng.IntN(8) == 0 {
			e.time -= int64(5+rng.IntN(20)) * int64(time.Second) // late, some older than the window
		}
		switch r := rng.IntN(10); {
		case r < 6:
			e.trace = pcommon.TraceID{0xee, byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())}
		case r < 9:
			e.trace = traces[rng.IntN(len(traces))]
		}
		if rng.IntN(20) == 0 {
			e.repeats = 2
		}
	}
	var health []healthObservation
	for range rng.IntN(4) {
		keys := []linkKey{{kind: keyEntity, name: entities[rng.IntN(len(entities))]}, {kind: keyService, name: services[rng.IntN(2)]},
			{kind: keyDestination, name: "10.0.0.7", port: 5432}}
		health = append(health, healthObservation{keys[rng.IntN(len(keys))], now - int64(rng.IntN(4000))*int64(time.Millisecond)})
	}
	return events, health
}

// joinForTest runs one call's joinAll, recording its write-ahead log operations, and describes
// what it returned and left.
func joinForTest(c *correlator, events []pendingEvent, now int64, ids map[string]int) string {
	var t tally
	var ops walOps
	var handoff sync.Mutex
	c.book.rec = &ops // joinAll records into it while it is set (no log to write to here)
	snaps := c.book.joinAll(events, now, &t, &handoff, &ops, nil)
	if len(snaps) > 0 {
		handoff.Unlock()
	}
	var s strings.Builder
	for i := range events {
		// What the write-ahead log encodes of each event, counted or kept.
		fmt.Fprintf(&s, "event %d class %d reason %d\n", i, events[i].class, events[i].joinReason)
	}
	return s.String() + describeForTest(c.book, snaps, ops.ops, &t, ids)
}

func dueForTest(c *correlator, now int64, ids map[string]int) string {
	var t tally
	var ops walOps
	var handoff sync.Mutex
	snaps := c.book.due(now, false, &t, &handoff, &ops)
	if len(snaps) > 0 {
		handoff.Unlock()
	}
	return describeForTest(c.book, snaps, ops.ops, &t, ids)
}

// describeForTest writes down a book's state and what a call returned, with incidents named by
// the order they were first seen (their ids are random).
func describeForTest(b *incidentBook, snaps []snapshot, ops []walOp, t *tally, ids map[string]int) string {
	name := func(id string) int {
		if _, ok := ids[id]; !ok {
			ids[id] = len(ids)
		}
		return ids[id]
	}
	var s strings.Builder
	for _, op := range ops {
		fmt.Fprintf(&s, "op %d %d ev %d flags %d other %v v%d n%d\n", op.kind, name(op.id), op.event, op.flags, op.other != "", op.version, op.count)
	}
	for _, sn := range snaps {
		fmt.Fprintf(&s, "snapshot %d v%d count %d events %d told %d trigger %d\n", name(sn.id), sn.version, sn.eventCount, len(sn.events), sn.told, sn.trigger)
	}
	for inc := b.oldest; inc != nil; inc = inc.next {
		fmt.Fprintf(&s, "incident %d v%d count %d held %d dirty %v since %d eligible %v evidence %d outside %+v merged %d\n",
			name(inc.id), inc.version, inc.eventCount, len(inc.events), inc.dirty, inc.dirtySince, inc.eligible,
			inc.lastEvidence, inc.outsideRequests, len(inc.mergedIDs))
		for _, e := range inc.events {
			fmt.Fprintf(&s, "  event %s at %d class %d reason %d trace %x\n", e.name, e.time, e.class, e.joinReason, e.trace[:])
		}
	}
	var bindings []string
	for k, bd := range b.bindings.all() {
		bindings = append(bindings, fmt.Sprintf("binding %d %x %s:%d %s -> %d at %d", k.kind, k.trace[:], k.name, k.port, k.scope, name(bd.incident.id), bd.last))
	}
	slices.Sort(bindings)
	for _, l := range bindings {
		s.WriteString(l + "\n")
	}
	fmt.Fprintf(&s, "open %d held %d tally %+v\n", b.open, b.held, *t)
	return s.String()
}
