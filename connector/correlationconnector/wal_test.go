package correlationconnector

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

// appendRawEntry appends entry, framed, as the log's next entry: what a build of another layout,
// or a damaged disk, would have left there.
func appendRawEntry(t testing.TB, w *walLog, entry []byte) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	frame := append(make([]byte, walFrameHeader), entry...)
	frameHeader(frame)
	must(t, w.segments.append(frame))
}

func persistentConfig() *Config {
	cfg := defaultConfig()
	cfg.DecisionWait = 5 * time.Second
	cfg.IncidentTimeout = time.Minute
	return cfg
}

// startPersistent makes a harness whose write-ahead log is in dir and starts it (restoring what
// dir holds); its clock starts at at.
func startPersistent(t testing.TB, cfg *Config, dir string, at time.Time) *harness {
	t.Helper()
	cfg.WriteAheadLog.Directory = dir
	h := newHarness(t, cfg)
	h.c.id = component.MustNewID("correlation")
	h.clock.Set(at)
	if err := h.c.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	return h
}

// crash stops the harness the way SIGKILL does: no final flush, nothing written at the end. The
// log's files are closed only so that the next harness of this process can take the directory.
func (h *harness) crash(t testing.TB) {
	t.Helper()
	c := h.c
	c.stopLoop()
	if c.wal != nil {
		if err := c.wal.close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// oomStory is an OOM kill of ledger-db and the failures it caused: one incident.
func oomStory(at time.Duration) plog.Logs {
	return logsOf(
		ev{name: unifiedevent.OOMKill, id: 1, at: at, entity: "ledger-db", service: "ledger"},
		ev{name: unifiedevent.CrashLoopBackOff, id: 2, at: at + time.Second, entity: "ledger-db", service: "ledger"},
	)
}

func TestWALRestoresAnOpenIncidentAfterACrash(t *testing.T) {
	dir := t.TempDir()
	cfg := persistentConfig()
	a := startPersistent(t, cfg, dir, scenarioStart.Add(time.Second))
	must(t, a.c.consumeLogs(ctx, oomStory(time.Second)))
	a.clock.Advance(2 * time.Second)
	must(t, a.c.consumeLogs(ctx, logsOf(ev{name: unifiedevent.ErrorLog, id: 3, at: 3 * time.Second, entity: "ledger-db", service: "ledger"})))
	a.flush() // decision_wait not over: nothing emitted
	if n := len(a.records()); n != 0 {
		t.Fatalf("%d records before decision_wait", n)
	}
	crashedAt := a.clock.Now()
	a.crash(t)

	// The reference: the same story without a crash.
	ref := newHarness(t, func() *Config { c := persistentConfig(); c.WriteAheadLog.Directory = ""; return c }())
	ref.clock.Set(scenarioStart.Add(time.Second))
	must(t, ref.c.consumeLogs(ctx, oomStory(time.Second)))
	ref.clock.Advance(2 * time.Second)
	must(t, ref.c.consumeLogs(ctx, logsOf(ev{name: unifiedevent.ErrorLog, id: 3, at: 3 * time.Second, entity: "ledger-db", service: "ledger"})))
	ref.clock.Advance(5 * time.Second)
	ref.flush()

	b := startPersistent(t, cfg, dir, crashedAt)
	if got := b.counter(t, "otelcol_connector_correlation_incidents_open", "", ""); got != 1 {
		t.Fatalf("incidents open after restart = %d, want 1", got)
	}
	if got := b.counter(t, "otelcol_connector_correlation_events_restored", "", ""); got != 3 {
		t.Errorf("events restored = %d, want 3", got)
	}
	b.clock.Advance(5 * time.Second)
	b.flush()
	got, want := b.records(), ref.records()
	if len(got) != 1 || len(want) != 1 {
		t.Fatalf("after restart %d records, without the crash %d; want 1 each", len(got), len(want))
	}
	for _, key := range []string{unifiedevent.KeyCorrelationVersion, unifiedevent.KeyCorrelationEventCount} {
		if g, w := str(got[0].Attributes(), key), str(want[0].Attributes(), key); g != w {
			t.Errorf("%s = %q after restart, %q without the crash", key, g, w)
		}
	}
	if g, w := strings.Join(chainNames(got[0]), ","), strings.Join(chainNames(want[0]), ","); g != w {
		t.Errorf("chain after restart %s, without the crash %s", g, w)
	}
	if g, w := strings.Join(chainField(got[0], unifiedevent.KeyEventID), ","), strings.Join(chainField(want[0], unifiedevent.KeyEventID), ","); g != w {
		t.Errorf("chain event ids after restart %s, without the crash %s", g, w)
	}
	if g, w := got[0].Body().Str(), want[0].Body().Str(); g != w {
		t.Errorf("narrative after restart:\n%s\nwithout the crash:\n%s", g, w)
	}
}

func TestWALNeitherDuplicatesNorRegressesAnEmittedIncident(t *testing.T) {
	dir := t.TempDir()
	cfg := persistentConfig()
	a := startPersistent(t, cfg, dir, scenarioStart.Add(time.Second))
	must(t, a.c.consumeLogs(ctx, oomStory(time.Second)))
	a.clock.Advance(5 * time.Second)
	a.flush()
	first := a.records()
	if len(first) != 1 {
		t.Fatalf("%d records, want 1", len(first))
	}
	id := str(first[0].Attributes(), unifiedevent.KeyCorrelationID)
	crashedAt := a.clock.Now()
	a.crash(t)

	b := startPersistent(t, cfg, dir, crashedAt)
	for i := 0; i < 3; i++ {
		b.clock.Advance(5 * time.Second)
		b.flush()
	}
	if n := len(b.records()); n != 0 {
		t.Fatalf("the restored incident was emitted again without new evidence: %d records", n)
	}
	// New evidence after the restart: the same incident, one version up.
	must(t, b.c.consumeLogs(ctx, logsOf(ev{name: unifiedevent.ErrorLog, id: 9, at: b.clock.Now().Sub(scenarioStart), entity: "ledger-db", service: "ledger"})))
	b.clock.Advance(5 * time.Second)
	b.flush()
	recs := b.records()
	if len(recs) != 1 {
		t.Fatalf("%d records after new evidence, want 1", len(recs))
	}
	if got := str(recs[0].Attributes(), unifiedevent.KeyCorrelationID); got != id {
		t.Errorf("id %s after restart, %s before: the exporter would store a duplicate", got, id)
	}
	if got := str(recs[0].Attributes(), unifiedevent.KeyCorrelationVersion); got != "2" {
		t.Errorf("version %s after restart, want 2 (the exporter keeps only newer versions)", got)
	}
	if got := str(recs[0].Attributes(), unifiedevent.KeyCorrelationEventCount); got != "3" {
		t.Errorf("event_count %s, want 3 (two from before the crash)", got)
	}
}

func TestWALRestoresAMergeAndItsMergedIDs(t *testing.T) {
	dir := t.TempDir()
	cfg := persistentConfig()
	a := startPersistent(t, cfg, dir, scenarioStart.Add(time.Second))
	consumeTwoIncidents(t, a)
	a.clock.Advance(5 * time.Second)
	a.flush()
	if n := len(a.records()); n != 2 {
		t.Fatalf("%d records, want 2 incidents", n)
	}
	// An event of entity b for service sa bridges both.
	must(t, a.c.consumeLogs(ctx, logsOf(ev{name: unifiedevent.CrashLoopBackOff, id: 3, at: 6 * time.Second, entity: "b", service: "sa"})))
	crashedAt := a.clock.Now()
	a.crash(t)

	b := startPersistent(t, cfg, dir, crashedAt)
	if got := b.counter(t, "otelcol_connector_correlation_incidents_open", "", ""); got != 1 {
		t.Fatalf("incidents open after restart = %d, want 1 (merged)", got)
	}
	b.clock.Advance(5 * time.Second)
	b.flush()
	recs := b.records()
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	if got := str(recs[0].Attributes(), unifiedevent.KeyCorrelationVersion); got != "2" {
		t.Errorf("merged incident version %s, want 2", got)
	}
	if merged := sliceOf(recs[0], unifiedevent.KeyCorrelationMergedIDs); len(merged) != 1 {
		t.Errorf("merged_ids %v, want the absorbed incident", merged)
	}
}

func TestWALTruncatesWhatNoOpenIncidentNeeds(t *testing.T) {
	dir := t.TempDir()
	cfg := persistentConfig()
	a := startPersistent(t, cfg, dir, scenarioStart.Add(time.Second))
	must(t, a.c.consumeLogs(ctx, logsOf(ev{name: unifiedevent.OOMKill, id: 1, at: time.Second, entity: "a", service: "sa"})))
	a.clock.Advance(30 * time.Second)
	must(t, a.c.consumeLogs(ctx, logsOf(ev{name: unifiedevent.OOMKill, id: 2, at: 31 * time.Second, entity: "b", service: "sb"})))
	a.flush() // emits both; the first entry is still needed by incident a
	if a.c.wal.head != 0 {
		t.Fatalf("head %d while incident a is open, want 0", a.c.wal.head)
	}
	a.clock.Advance(40 * time.Second) // a quiet for 70s: closed; b for 40s: open
	a.flush()
	if a.c.wal.head == 0 {
		t.Fatal("the entry of the closed incident was not deleted")
	}
	if head, err := a.c.wal.segments.readHead(); err != nil || head != a.c.wal.head {
		t.Fatalf("HEAD holds %d (%v), want %d", head, err, a.c.wal.head)
	}
	a.clock.Advance(time.Minute)
	a.flush()
	if head, next := a.c.wal.head, a.c.wal.nextSeq(); head != next {
		t.Fatalf("every incident closed, yet entries %d..%d are kept", head, next)
	}
	crashedAt := a.clock.Now()
	a.crash(t)

	b := startPersistent(t, cfg, dir, crashedAt)
	if got := b.counter(t, "otelcol_connector_correlation_incidents_open", "", ""); got != 0 {
		t.Errorf("closed incidents came back: %d open", got)
	}
	b.clock.Advance(time.Minute)
	b.flush()
	if n := len(b.records()); n != 0 {
		t.Errorf("%d records of closed incidents after restart", n)
	}
}

var errDiskFull = errors.New("no space left on device")

// flakyFile is a segment file whose writes fail while failing is set, having written half the
// frame first, as a full disk does.
type flakyFile struct {
	segmentFile
	failing *atomic.Bool
}

func (f flakyFile) Write(p []byte) (int, error) {
	if f.failing.Load() {
		n, _ := f.segmentFile.Write(p[:len(p)/2])
		return n, errDiskFull
	}
	return f.segmentFile.Write(p)
}

// failWrites makes the log's segment files flaky; the returned switch turns the failures on.
func failWrites(w *walLog) *atomic.Bool {
	failing := &atomic.Bool{}
	w.mu.Lock()
	defer w.mu.Unlock()
	open := w.segments.open
	w.segments.open = func(path string) (segmentFile, error) {
		f, err := open(path)
		if err != nil {
			return nil, err
		}
		return flakyFile{f, failing}, nil
	}
	if w.segments.file != nil {
		w.segments.file = flakyFile{w.segments.file, failing}
	}
	return failing
}

func TestWALWriteErrorFailsTheConsumeCall(t *testing.T) {
	dir := t.TempDir()
	cfg := persistentConfig()
	a := startPersistent(t, cfg, dir, scenarioStart.Add(time.Second))
	failing := failWrites(a.c.wal)
	failing.Store(true)
	err := a.c.consumeLogs(ctx, oomStory(time.Second))
	if !errors.Is(err, errDiskFull) || !strings.Contains(err.Error(), "not persisted") {
		t.Fatalf("consume with a failing storage returned %v, want the storage error", err)
	}
	if got := a.counter(t, "otelcol_connector_correlation_persistence_errors", "operation", "write"); got != 1 {
		t.Errorf("persistence_errors{operation=write} = %d, want 1", got)
	}
	// A flush that cannot write keeps its changes for the next one, and deletes nothing.
	a.clock.Advance(5 * time.Second)
	a.flush()
	if n := len(a.records()); n != 1 {
		t.Fatalf("%d records, want 1", n)
	}
	// The sender retries once storage works again; this time it is persisted.
	failing.Store(false)
	must(t, a.c.consumeLogs(ctx, oomStory(time.Second)))
	a.flush()
	crashedAt := a.clock.Now()
	a.crash(t)

	b := startPersistent(t, cfg, dir, crashedAt)
	if got := b.counter(t, "otelcol_connector_correlation_events_restored", "", ""); got != 2 {
		t.Errorf("events restored = %d, want the 2 of the retried call", got)
	}
}

func TestWALSkipsAnEntryThatDoesNotDecode(t *testing.T) {
	dir := t.TempDir()
	cfg := persistentConfig()
	a := startPersistent(t, cfg, dir, scenarioStart.Add(time.Second))
	must(t, a.c.consumeLogs(ctx, logsOf(ev{name: unifiedevent.OOMKill, id: 1, at: time.Second, entity: "a", service: "sa"})))
	appendRawEntry(t, a.c.wal, []byte{walLayout, 0x02, 0x01, 0x01, 0xff})
	must(t, a.c.consumeLogs(ctx, logsOf(ev{name: unifiedevent.OOMKill, id: 2, at: time.Second, entity: "b", service: "sb"})))
	crashedAt := a.clock.Now()
	a.crash(t)

	b := startPersistent(t, cfg, dir, crashedAt)
	if got := b.counter(t, "otelcol_connector_correlation_persistence_errors", "operation", "decode"); got != 1 {
		t.Errorf("persistence_errors{operation=decode} = %d, want 1", got)
	}
	if got := b.counter(t, "otelcol_connector_correlation_incidents_open", "", ""); got != 2 {
		t.Errorf("incidents open = %d, want 2: the entries before and after the bad one are restored", got)
	}
}

func TestWALRefusesANewerLayout(t *testing.T) {
	dir := t.TempDir()
	cfg := persistentConfig()
	a := startPersistent(t, cfg, dir, scenarioStart.Add(time.Second))
	appendRawEntry(t, a.c.wal, []byte{walLayout + 1, 0})
	a.crash(t)

	h := newHarness(t, cfg)
	h.c.id = component.MustNewID("correlation")
	err := h.c.Start(ctx, componenttest.NewNopHost())
	if err == nil || !strings.Contains(err.Error(), "newer layout") {
		t.Fatalf("Start on a newer layout: %v, want a refusal naming the layout", err)
	}
	// Counted once, as what it is.
	decode := h.counter(t, "otelcol_connector_correlation_persistence_errors", "operation", "decode")
	read := h.counter(t, "otelcol_connector_correlation_persistence_errors", "operation", "read")
	if decode != 1 || read != 0 {
		t.Errorf("persistence_errors: decode %d, read %d; want 1 and 0", decode, read)
	}
}

func TestStartRefusesADirectoryInUse(t *testing.T) {
	dir := t.TempDir()
	a := startPersistent(t, persistentConfig(), dir, scenarioStart)
	defer a.crash(t)
	cfg := persistentConfig()
	cfg.WriteAheadLog.Directory = dir
	h := newHarness(t, cfg)
	h.c.id = component.MustNewID("correlation")
	err := h.c.Start(ctx, componenttest.NewNopHost())
	if err == nil || !strings.Contains(err.Error(), "in use by another collector") {
		t.Fatalf("Start on a directory another connector holds: %v", err)
	}
	// Another component id takes a directory of its own under the same setting.
	other := newHarness(t, cfg)
	other.c.id = component.MustNewIDWithName("correlation", "other")
	must(t, other.c.Start(ctx, componenttest.NewNopHost()))
	other.crash(t)
}

func TestWALShutdownKeepsIncidentsOpenForTheRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := persistentConfig()
	a := startPersistent(t, cfg, dir, scenarioStart.Add(time.Second))
	must(t, a.c.consumeLogs(ctx, oomStory(time.Second)))
	must(t, a.c.Shutdown(ctx))
	must(t, a.c.Shutdown(ctx)) // idempotent
	recs := a.records()
	if len(recs) != 1 || str(recs[0].Attributes(), unifiedevent.KeyCorrelationVersion) != "1" {
		t.Fatalf("shutdown emitted %d records, want version 1 of the open incident", len(recs))
	}
	id := str(recs[0].Attributes(), unifiedevent.KeyCorrelationID)
	stoppedAt := a.clock.Now()

	b := startPersistent(t, cfg, dir, stoppedAt.Add(10*time.Second))
	must(t, b.c.Start(ctx, componenttest.NewNopHost())) // idempotent
	must(t, b.c.consumeLogs(ctx, logsOf(ev{name: unifiedevent.ErrorLog, id: 5, at: 12 * time.Second, entity: "ledger-db", service: "ledger"})))
	b.clock.Advance(5 * time.Second)
	b.flush()
	recs = b.records()
	if len(recs) != 1 || str(recs[0].Attributes(), unifiedevent.KeyCorrelationID) != id || str(recs[0].Attributes(), unifiedevent.KeyCorrelationVersion) != "2" {
		t.Fatalf("after a graceful restart: %d records, want version 2 of %s", len(recs), id)
	}
}

func TestWALEntryRoundTrip(t *testing.T) {
	rules := []ThresholdRule{{Name: "memory"}}
	events := []pendingEvent{{problemEvent: walSampleEvent()}, {problemEvent: problemEvent{time: 7, name: unifiedevent.OOMKill, layer: unifiedevent.LayerKernel}}}
	ops := []walOp{
		{kind: walOpEvict, id: "old"},
		{kind: walOpJoin, flags: walJoinOpened | walJoinKept, id: "inc-1", event: 0},
		{kind: walOpMerge, flags: walMergeListed, id: "inc-1", other: "inc-2"},
		{kind: walOpJoin, flags: walJoinKept, id: "inc-1", event: 1},
		{kind: walOpEmit, id: "inc-1", version: 3, count: 12},
		{kind: walOpClose, id: "inc-1"},
		{kind: walOpImage, id: "inc-3", image: &incidentImage{version: 2, lastEvidence: 5, dirtySince: 4, eventCount: 9, told: 1, dirty: true, eligible: true,
			mergedIDs: []string{"inc-4"}, events: []problemEvent{walSampleEvent()},
			keys: []boundKey{{key: linkKey{kind: keyTrace, trace: traceID(3)}, last: 5}, {key: linkKey{kind: keyDestination, name: "10.0.0.7", port: 5432, scope: "node-a"}, last: 4}}}},
	}
	data := appendWALEntry(nil, 42, ops, events, rules)
	var got walEntry
	if err := decodeWALEntry(data, rules, &got); err != nil {
		t.Fatal(err)
	}
	if got.now != 42 || len(got.ops) != len(ops) || len(got.events) != 2 {
		t.Fatalf("decoded now %d, %d ops, %d events", got.now, len(got.ops), len(got.events))
	}
	for i := range ops {
		w, g := ops[i], got.ops[i]
		if g.kind != w.kind || g.flags != w.flags || g.id != w.id || g.other != w.other || g.version != w.version || g.count != w.count {
			t.Errorf("op %d: got %+v, want %+v", i, g, w)
		}
	}
	img := got.ops[6].image
	if img == nil || img.version != 2 || img.lastEvidence != 5 || img.dirtySince != 4 || img.eventCount != 9 || img.told != 1 || !img.dirty || !img.eligible ||
		len(img.mergedIDs) != 1 || len(img.events) != 1 || img.events[0].narrative != "POST /pay failed" || len(img.keys) != 2 ||
		img.keys[0] != ops[6].image.keys[0] || img.keys[1] != ops[6].image.keys[1] {
		t.Errorf("image: got %+v", img)
	}
	want := walSampleEvent()
	e := got.events[0]
	if e.time != want.time || e.eventID != want.eventID || e.trace != want.trace || e.span != want.span || e.parent != want.parent ||
		e.name != want.name || e.entity != want.entity || e.service != want.service || e.pod != want.pod || e.peerAddr != want.peerAddr ||
		e.peerTarget != want.peerTarget || e.narrative != want.narrative || e.peerPort != want.peerPort || e.layer != want.layer ||
		e.hasEventID != want.hasEventID || e.isSpan != want.isSpan || e.joinReason != want.joinReason || e.peerVia != want.peerVia || e.class != want.class {
		t.Errorf("event:\n got %+v\nwant %+v", e, want)
	}
	if *e.details != *want.details {
		t.Errorf("details:\n got %+v\nwant %+v", *e.details, *want.details)
	}
	if e.breach == nil || e.breach.rule != 0 || e.breach.value != want.breach.value || len(e.breach.exemplars) != 1 || e.breach.exemplars[0] != want.breach.exemplars[0] {
		t.Errorf("breach: got %+v", e.breach)
	}
	// Every cut of the entry is refused with an error, never a panic or a half event.
	for n := 0; n < len(data); n++ {
		if err := decodeWALEntry(data[:n], rules, &got); err == nil {
			t.Fatalf("entry cut at %d of %d bytes decoded", n, len(data))
		}
	}
}

func walSampleEvent() problemEvent {
	return problemEvent{
		time: 1_700_000_000_123_456_789, eventID: [16]byte{1, 2, 3}, hasEventID: true,
		trace: traceID(5), span: spanID(6), parent: spanID(7), isSpan: true,
		name: unifiedevent.DependencyError, layer: unifiedevent.LayerTrace,
		entity: "checkout-7d9", service: "checkout", pod: "shop/checkout-7d9", peerAddr: "payment", peerTarget: "payment-5c",
		narrative: "POST /pay failed", peerPort: 8080, joinReason: linkTrace, peerVia: peerFromSpan, class: classConsequence,
		details: &eventDetails{kind: 3, httpStatus: 503, duration: 120, route: "/api/checkout", spanName: "POST", errorType: "unavailable",
			endUser: "u1", user: "u2", session: "s", peerScope: "", dbSystem: "", host: "node-a", sender: ""},
		breach: &breachFacts{rule: 0, value: 0.93, exemplars: []pcommon.TraceID{traceID(9)}},
	}
}

func FuzzDecodeWALEntry(f *testing.F) {
	rules := []ThresholdRule{{Name: "memory"}}
	events := []pendingEvent{{problemEvent: walSampleEvent()}}
	f.Add(appendWALEntry(nil, 42, []walOp{{kind: walOpJoin, flags: walJoinKept, id: "inc", event: 0}, {kind: walOpEmit, id: "inc", version: 1, count: 1}}, events, rules))
	f.Add(appendWALEntry(nil, 1, []walOp{{kind: walOpMerge, id: "a", other: "b"}, {kind: walOpClose, id: "a"}}, nil, rules))
	f.Add(appendWALEntry(nil, 3, []walOp{{kind: walOpImage, id: "i", image: &incidentImage{version: 1, eventCount: 1, events: []problemEvent{walSampleEvent()},
		keys: []boundKey{{key: linkKey{kind: keyEntity, name: "e"}, last: 1}}}}}, nil, rules))
	f.Add([]byte{walLayout})
	f.Fuzz(func(t *testing.T, data []byte) {
		var entry walEntry
		if err := decodeWALEntry(data, rules, &entry); err != nil {
			return
		}
		// What decodes encodes again to an entry that decodes to the same.
		pending := make([]pendingEvent, len(entry.events))
		for i := range entry.events {
			pending[i].problemEvent = entry.events[i]
		}
		again := appendWALEntry(nil, entry.now, entry.ops, pending, rules)
		var second walEntry
		if err := decodeWALEntry(again, rules, &second); err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		if len(second.ops) != len(entry.ops) || len(second.events) != len(entry.events) || second.now != entry.now {
			t.Fatalf("re-encoded entry differs: %d/%d ops, %d/%d events", len(second.ops), len(entry.ops), len(second.events), len(entry.events))
		}
		if string(appendWALEntry(nil, second.now, second.ops, pendingOf(second.events), rules)) != string(again) {
			t.Fatal("encoding is not stable")
		}
	})
}

func pendingOf(events []problemEvent) []pendingEvent {
	out := make([]pendingEvent, len(events))
	for i := range events {
		out[i].problemEvent = events[i]
	}
	return out
}

func TestWithoutStorageNothingIsRecorded(t *testing.T) {
	h := newHarness(t, defaultConfig())
	must(t, h.c.Start(ctx, componenttest.NewNopHost()))
	if h.c.wal != nil || h.c.book.keepOpenAtShutdown {
		t.Fatal("persistence on without storage configured")
	}
	b := h.c.getBatch()
	defer h.c.putBatch(b)
	now := h.clock.Now().UnixNano()
	h.c.readLogRecord(b, &resourceFacts{}, oomStory(time.Second).ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0), now, 0)
	h.c.interner.prepareAll(b.problems)
	var ops walOps
	if snaps := h.c.book.joinAll(b.problems, now, &b.tally, &h.c.builder.mu, &ops, nil); len(snaps) > 0 {
		t.Fatalf("%d snapshots", len(snaps))
	}
	if len(ops.ops) != 0 {
		t.Fatalf("%d ops recorded without storage: the hot path pays for a log it does not write", len(ops.ops))
	}
}

// TestWALReplaysConcurrentCallsInTheOrderTheBookTookThem: calls racing each other and the flush
// are logged in the book's order, so the restored book holds exactly what the crashed one held.
func TestWALReplaysConcurrentCallsInTheOrderTheBookTookThem(t *testing.T) {
	dir := t.TempDir()
	cfg := persistentConfig()
	cfg.MaxIncidents = 20 // evictions while joining are logged too
	cfg.MaxEventsPerIncident = 30
	a := startPersistent(t, cfg, dir, scenarioStart.Add(time.Minute))
	a.c.wal.compactBytes = 16 << 10 // images are written while calls race
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for call := 0; call < 40; call++ {
				var evs []ev
				for k := 0; k < 5; k++ {
					n := g*1000 + call*5 + k
					// Entities shared across goroutines: joins and merges race.
					evs = append(evs, ev{name: unifiedevent.OOMKill, id: n + 1, at: time.Minute, entity: "pod-" + string(rune('a'+n%23)), service: "svc-" + string(rune('a'+n%29))})
				}
				if err := a.c.consumeLogs(ctx, logsOf(evs...)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	consumed := make(chan struct{})
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		for {
			select {
			case <-consumed:
				return
			default:
			}
			a.clock.Advance(200 * time.Millisecond)
			a.flush()
			time.Sleep(time.Millisecond)
		}
	}()
	wg.Wait()
	close(consumed)
	<-flushed
	open := a.counter(t, "otelcol_connector_correlation_incidents_open", "", "")
	t.Logf("before the crash: entries from %d, %d open, evicted %d by max_incidents, %d by max_events_per_incident, %d emitted", a.c.wal.head,
		open, a.counter(t, "otelcol_connector_correlation_evictions", "reason", "max_incidents"),
		a.counter(t, "otelcol_connector_correlation_evictions", "reason", "max_events_per_incident"),
		a.counter(t, "otelcol_connector_correlation_incidents_emitted", "", ""))
	held := a.counter(t, "otelcol_connector_correlation_events_in_state", "store", "problem_events")
	versions := map[string]int64{}
	a.c.book.mu.Lock()
	for inc := a.c.book.oldest; inc != nil; inc = inc.next {
		versions[inc.id] = inc.version
	}
	a.c.book.mu.Unlock()
	crashedAt := a.clock.Now()
	a.crash(t)

	b := startPersistent(t, cfg, dir, crashedAt)
	if got := b.counter(t, "otelcol_connector_correlation_incidents_open", "", ""); got != open {
		t.Errorf("incidents open after restore %d, before the crash %d", got, open)
	}
	if got := b.counter(t, "otelcol_connector_correlation_events_in_state", "store", "problem_events"); got != held {
		t.Errorf("problem events after restore %d, before the crash %d", got, held)
	}
	b.c.book.mu.Lock()
	defer b.c.book.mu.Unlock()
	for inc := b.c.book.oldest; inc != nil; inc = inc.next {
		v, ok := versions[inc.id]
		if !ok {
			t.Errorf("restored incident %s was not open before the crash", inc.id)
		} else if inc.version != v {
			t.Errorf("incident %s restored at version %d, was %d", inc.id, inc.version, v)
		}
	}
}

// A restart keeps how long calls outside any request have been failing: one refused redial before
// the crash and one recovery_delay later, after it, make an incident — from the log's entries
// replayed, and from an image of the group when the log was compacted.
func TestWALRestoresHowLongCallsOutsideAnyRequestHaveFailed(t *testing.T) {
	refusedDial := func(n int, at time.Duration) ptrace.Traces {
		return tracesOf(sp{trace: traceID(uint64(n)), span: uint64(n), kind: ptrace.SpanKindClient, name: unifiedevent.DependencyError,
			id: n, service: "catalog", end: at, attrs: map[string]any{unifiedevent.KeyServerAddress: "127.0.0.1", unifiedevent.KeyServerPort: 6379}})
	}
	for _, tc := range []struct {
		name      string
		calls     int
		compacted bool
	}{
		{"replayed", 1, false},
		{"from an image", 300, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := persistentConfig()
			a := startPersistent(t, cfg, dir, scenarioStart.Add(time.Second))
			if tc.compacted {
				a.c.wal.compactBytes = 8 << 10
			}
			for n := 1; n <= tc.calls; n++ {
				// All within a second: less than recovery_delay apart.
				must(t, a.c.consumeTraces(ctx, refusedDial(n, time.Second+time.Duration(n)*time.Millisecond)))
				if n%50 == 0 {
					a.flush()
				}
			}
			a.flush()
			if n := len(a.records()); n != 0 {
				t.Fatalf("%d records before the calls failed for recovery_delay", n)
			}
			if compacted := a.c.wal.head != 0; compacted != tc.compacted {
				t.Fatalf("log compacted: %v, want %v", compacted, tc.compacted)
			}
			crashedAt := a.clock.Now()
			a.crash(t)

			b := startPersistent(t, cfg, dir, crashedAt)
			b.clock.Advance(2 * time.Second)
			must(t, b.c.consumeTraces(ctx, refusedDial(tc.calls+1, 3500*time.Millisecond)))
			b.clock.Advance(time.Hour)
			b.flush()
			if n := len(b.records()); n != 1 {
				t.Fatalf("%d incidents after a call failed again recovery_delay after the first, across a restart; want 1", n)
			}
		})
	}
}

// TestWALCompactsAnIncidentThatStaysOpen: an error storm keeps one incident open; its entries are
// replaced by an image, deleted, and the restored incident is the one that was open.
func TestWALCompactsAnIncidentThatStaysOpen(t *testing.T) {
	dir := t.TempDir()
	cfg := persistentConfig()
	cfg.MaxEventsPerIncident = 50
	a := startPersistent(t, cfg, dir, scenarioStart.Add(time.Second))
	a.c.wal.compactBytes = 8 << 10
	for call := 0; call < 200; call++ {
		evs := []ev{{name: unifiedevent.OOMKill, id: 2*call + 1, at: time.Second, entity: "ledger-db", service: "ledger"},
			{name: unifiedevent.ErrorLog, id: 2*call + 2, at: time.Second, entity: "checkout", service: "ledger", trace: traceID(uint64(call))}}
		must(t, a.c.consumeLogs(ctx, logsOf(evs...)))
		if call%10 == 9 {
			a.clock.Advance(time.Second)
			a.flush()
		}
	}
	if a.c.wal.head == 0 {
		t.Fatal("the storm's incident keeps every entry since it opened: nothing was compacted")
	}
	if live := a.c.wal.liveBytes(); live > 4*a.c.wal.compactBytes {
		t.Errorf("%d bytes of live entries, compaction at %d", live, a.c.wal.compactBytes)
	}
	if got := a.counter(t, "otelcol_connector_correlation_incidents_open", "", ""); got != 1 {
		t.Fatalf("%d incidents open, want the storm's one", got)
	}
	a.c.book.mu.Lock()
	inc := a.c.book.oldest
	want := struct {
		id              string
		version         int64
		count, kept     int
		dirty, eligible bool
	}{inc.id, inc.version, inc.eventCount, len(inc.events), inc.dirty, inc.eligible}
	a.c.book.mu.Unlock()
	crashedAt := a.clock.Now()
	a.crash(t)

	b := startPersistent(t, cfg, dir, crashedAt)
	b.c.book.mu.Lock()
	got := b.c.book.oldest
	if got == nil || got.id != want.id || got.version != want.version || got.eventCount != want.count || len(got.events) != want.kept ||
		got.dirty != want.dirty || got.eligible != want.eligible {
		t.Errorf("restored %+v, want %+v", got, want)
	}
	b.c.book.mu.Unlock()
	// Its keys are bound again: the next event of the same workload joins it.
	must(t, b.c.consumeLogs(ctx, logsOf(ev{name: unifiedevent.ErrorLog, id: 999, at: 12 * time.Second, entity: "ledger-db", service: "ledger"})))
	if got := b.counter(t, "otelcol_connector_correlation_incidents_open", "", ""); got != 1 {
		t.Errorf("%d incidents open after new evidence, want 1: the image's keys were not bound", got)
	}
}

// A storm past max_events_per_incident: the events only counted are logged as counted classes,
// a few bytes each, and the restored incident counts them all and still binds their keys.
func TestWALLogsAStormPastTheIncidentCapAsCountedRuns(t *testing.T) {
	storm := func(first, n int, at time.Duration, peer string) plog.Logs {
		events := make([]ev, n)
		for i := range events {
			// Two kinds of failure, interleaved, as a failing request's server and client spans are.
			name := unifiedevent.ErrorLog
			if i%2 == 1 {
				name = unifiedevent.Exception
			}
			events[i] = ev{name: name, id: first + i, at: at, entity: "ledger-db", service: "ledger",
				body:  fmt.Sprintf("ledger %d: write to %s failed", first+i, peer),
				attrs: map[string]any{unifiedevent.KeyDestinationAddress: peer, unifiedevent.KeyDestinationPort: int64(5432)}}
		}
		return logsOf(events...)
	}
	story := func(h *harness) {
		must(t, h.c.consumeLogs(ctx, oomStory(time.Second)))
		must(t, h.c.consumeLogs(ctx, storm(100, 200, 2*time.Second, "10.0.0.7")))
		h.clock.Advance(time.Second)
		must(t, h.c.consumeLogs(ctx, storm(300, 100, 3*time.Second, "10.0.0.7")))
	}
	cfg := persistentConfig()
	cfg.MaxEventsPerIncident = 5

	dir := t.TempDir()
	a := startPersistent(t, cfg, dir, scenarioStart.Add(time.Second))
	story(a)
	logged := a.c.wal.liveBytes()
	crashedAt := a.clock.Now()
	a.crash(t)
	// 302 events; kept in full, each would take well over 30 bytes.
	if logged > 302*30/4 {
		t.Errorf("the log holds %d bytes for 302 events, 297 of them only counted: they are not logged as counted classes", logged)
	}

	ref := newHarness(t, func() *Config {
		c := persistentConfig()
		c.MaxEventsPerIncident = 5
		c.WriteAheadLog.Directory = ""
		return c
	}())
	ref.clock.Set(scenarioStart.Add(time.Second))
	story(ref)
	ref.clock.Advance(5 * time.Second)
	ref.flush()

	b := startPersistent(t, cfg, dir, crashedAt)
	// A later failure joins the restored incident.
	b.clock.Advance(time.Second)
	must(t, b.c.consumeLogs(ctx, storm(500, 1, 4*time.Second, "10.0.0.7")))
	must(t, ref.c.consumeLogs(ctx, storm(500, 1, 4*time.Second, "10.0.0.7")))
	b.clock.Advance(5 * time.Second)
	b.flush()
	ref.clock.Advance(5 * time.Second)
	ref.flush()
	got, want := b.records(), ref.records()
	if len(got) == 0 || len(want) == 0 {
		t.Fatalf("after restart %d records, without the crash %d", len(got), len(want))
	}
	last, wantLast := got[len(got)-1], want[len(want)-1]
	if g, w := str(last.Attributes(), unifiedevent.KeyCorrelationEventCount), str(wantLast.Attributes(), unifiedevent.KeyCorrelationEventCount); g != w || g != "303" {
		t.Errorf("event count after restart %s, without the crash %s; want 303", g, w)
	}
	if len(got) != 1 {
		t.Errorf("%d records after the restart, want the one incident's", len(got))
	}
}

// consumeTwoIncidents gives h two incidents, one OOM kill each, of entities a and b and services
// sa and sb, in two Consume calls.
func consumeTwoIncidents(t *testing.T, h *harness) {
	t.Helper()
	must(t, h.c.consumeLogs(ctx, logsOf(ev{name: unifiedevent.OOMKill, id: 1, at: time.Second, entity: "a", service: "sa"})))
	must(t, h.c.consumeLogs(ctx, logsOf(ev{name: unifiedevent.OOMKill, id: 2, at: time.Second, entity: "b", service: "sb"})))
}
