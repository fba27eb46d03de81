package correlationconnector

import (
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

// refusedStorm is a merged record of the ebpf receiver's shape: n refused connects of ledger-db
// to 10.0.0.7:5432 (n = 1: an unmerged one), and the OOM story before it.
func refusedStorm(id int, n int64, at time.Duration) ev {
	attrs := map[string]any{unifiedevent.KeyDestinationAddress: "10.0.0.7", unifiedevent.KeyDestinationPort: int64(5432),
		unifiedevent.KeyErrorType: "ECONNREFUSED"}
	if n > 1 {
		attrs[unifiedevent.KeyLogCount] = n
		attrs[unifiedevent.KeyFirstObservedTimestamp] = scenarioStart.Add(at).UTC().Format(unifiedevent.RepeatTimeLayout)
		attrs[unifiedevent.KeyLastObservedTimestamp] = scenarioStart.Add(at + 100*time.Millisecond).UTC().Format(unifiedevent.RepeatTimeLayout)
	}
	return ev{name: unifiedevent.ConnectionRefused, id: id, at: at, entity: "ledger-db", service: "ledger",
		body: fmt.Sprintf("ledger-db's connection to 10.0.0.7:5432 was refused (%d)", id), attrs: attrs}
}

// A record that merged repeats counts as the events it stands for: in the incident's event
// count, in the events accepted, and past max_events_per_incident, where it is only counted.
func TestAMergedRecordCountsAsItsEvents(t *testing.T) {
	cfg := defaultConfig()
	cfg.MaxEventsPerIncident = 3
	h := newHarness(t, cfg)
	// A log_count that says nothing sensible is one event: the record is still one.
	odd := refusedStorm(8, 1, 3*time.Second)
	odd.attrs[unifiedevent.KeyLogCount] = "many"
	zero := refusedStorm(9, 1, 3*time.Second)
	zero.attrs[unifiedevent.KeyLogCount] = int64(0)
	must(t, h.c.consumeLogs(ctx, logsOf(
		ev{name: unifiedevent.OOMKill, id: 1, at: time.Second, entity: "ledger-db", service: "ledger"},
		refusedStorm(2, 1000, 2*time.Second), // kept on the chain
		refusedStorm(3, 1, 2*time.Second),
		refusedStorm(4, 250, 3*time.Second), // past the cap: only counted
		odd, zero,
	)))
	must(t, h.c.Shutdown(ctx))
	recs := h.records()
	if len(recs) != 1 {
		t.Fatalf("%d records, want the one incident", len(recs))
	}
	if got := str(recs[0].Attributes(), unifiedevent.KeyCorrelationEventCount); got != "1254" {
		t.Errorf("event_count %s, want 1254 (1 OOM kill, 1000 + 1 + 250 refused connects, 2 records of one)", got)
	}
	if got := h.counter(t, "otelcol_connector_correlation_events_accepted", "kind", "problem_event"); got != 1254 {
		t.Errorf("problem events accepted: %d, want 1254", got)
	}
	// The chain is of records, and so is its cap; an entry made of a merged record says how
	// many events it stands for.
	counts := map[string]string{}
	ids, logCounts := chainField(recs[0], unifiedevent.KeyEventID), chainField(recs[0], unifiedevent.KeyLogCount)
	if len(ids) != 3 {
		t.Fatalf("chain of %d entries, cap 3", len(ids))
	}
	for i := range ids {
		counts[ids[i]] = logCounts[i]
	}
	if counts[eventID(2)] != "1000" || counts[eventID(1)] != "" || counts[eventID(3)] != "" {
		t.Errorf("chain entries' log_count by event id: %v; want 1000 on the merged record's, none on the others", counts)
	}
}

// Merged records only counted past the cap are logged as counted classes, and a restored incident
// counts what they stood for, as the same story without a crash does.
func TestWALKeepsWhatMergedRecordsCount(t *testing.T) {
	storm := func(first, n int, at time.Duration) plog.Logs {
		events := make([]ev, n)
		for i := range events {
			events[i] = refusedStorm(first+i, int64(1+i%3*50), at) // 1, 51, 101, …
		}
		return logsOf(events...)
	}
	story := func(h *harness) {
		must(t, h.c.consumeLogs(ctx, oomStory(time.Second)))
		must(t, h.c.consumeLogs(ctx, storm(100, 30, 2*time.Second)))
		h.clock.Advance(time.Second)
		must(t, h.c.consumeLogs(ctx, storm(200, 30, 3*time.Second)))
	}
	cfg := persistentConfig()
	cfg.MaxEventsPerIncident = 5

	dir := t.TempDir()
	a := startPersistent(t, cfg, dir, scenarioStart.Add(time.Second))
	story(a)
	crashedAt := a.clock.Now()
	a.crash(t)

	ref := newHarness(t, func() *Config {
		c := persistentConfig()
		c.MaxEventsPerIncident = 5
		c.WriteAheadLog.Directory = ""
		return c
	}())
	ref.clock.Set(scenarioStart.Add(time.Second))
	story(ref)

	b := startPersistent(t, cfg, dir, crashedAt)
	for _, h := range []*harness{b, ref} {
		h.clock.Advance(time.Second)
		must(t, h.c.consumeLogs(ctx, logsOf(refusedStorm(500, 7, 4*time.Second))))
		h.clock.Advance(5 * time.Second)
		h.flush()
	}
	got, want := b.records(), ref.records()
	if len(got) == 0 || len(want) == 0 {
		t.Fatalf("after restart %d records, without the crash %d", len(got), len(want))
	}
	// 2 (the OOM story) + 2 × 10 × (1 + 51 + 101) + 7.
	const events = "3069"
	g, w := str(got[len(got)-1].Attributes(), unifiedevent.KeyCorrelationEventCount), str(want[len(want)-1].Attributes(), unifiedevent.KeyCorrelationEventCount)
	if g != w || g != events {
		t.Errorf("event count after restart %s, without the crash %s; want %s", g, w, events)
	}
}

// A merged record's repeats survive the log's event encoding, kept or compacted.
func TestWALEventKeepsItsRepeats(t *testing.T) {
	e := problemEvent{time: 42, name: unifiedevent.ConnectionRefused, layer: unifiedevent.LayerNetwork, entity: "ledger-db", repeats: 999}
	buf := appendWALEvent(nil, &e, nil)
	r := walReader{data: buf}
	var got problemEvent
	decodeWALEvent(&r, &got, nil)
	if r.err != nil || len(r.data) != 0 {
		t.Fatalf("decode: %v, %d bytes left", r.err, len(r.data))
	}
	if got.repeats != 999 || got.events() != 1000 || got.entity != "ledger-db" {
		t.Errorf("decoded %+v, want 999 repeats", got)
	}
	one := problemEvent{time: 42, name: unifiedevent.ConnectionRefused, layer: unifiedevent.LayerNetwork}
	if b := appendWALEvent(nil, &one, nil); b[0]&evRepeats != 0 {
		t.Error("an event of one is written with repeats: entries without merged records must stay as older builds read them")
	}
}

// A counted run of merged records whose counts pass 31 bits is split: the entry decodes, and it
// counts every event.
func TestWALCountedRunsOfHugeCountsDecode(t *testing.T) {
	var problems []pendingEvent
	var ops []walOp
	const records = 5
	for i := 0; i < records; i++ {
		var e pendingEvent
		e.time, e.name, e.layer, e.entity = int64(i), unifiedevent.ConnectionRefused, unifiedevent.LayerNetwork, "ledger-db"
		e.repeats = unifiedevent.MaxLogCount - 1
		problems = append(problems, e)
		ops = append(ops, walOp{kind: walOpJoin, id: "inc-1", event: int32(i)}) // counted only
	}
	buf := appendWALEntry(nil, 1, ops, problems, nil)
	var entry walEntry
	if err := decodeWALEntry(buf, nil, &entry); err != nil {
		t.Fatalf("decode: %v", err)
	}
	var events int64
	for _, op := range entry.ops {
		switch op.kind {
		case walOpJoin:
			events += int64(entry.events[op.event].events())
		case walOpCount:
			events += op.count
		}
	}
	if want := int64(records) * unifiedevent.MaxLogCount; events != want {
		t.Errorf("the entry counts %d events, want %d", events, want)
	}
}

// A late merged record drops all the events it stands for, and says so.
func TestALateMergedRecordCountsItsEventsDropped(t *testing.T) {
	cfg := defaultConfig()
	cfg.Window = time.Minute
	h := newHarness(t, cfg)
	h.clock.Set(scenarioStart.Add(2 * time.Minute))
	must(t, h.c.consumeLogs(ctx, logsOf(refusedStorm(1, 40, 30*time.Second), refusedStorm(2, 1, 30*time.Second))))
	if got := h.counter(t, "otelcol_connector_correlation_events_dropped", "reason", "late"); got != 41 {
		t.Errorf("late events = %d, want 41 (a record of 40 and one of 1)", got)
	}
}
