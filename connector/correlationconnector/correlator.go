package correlationconnector

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/yairfalse/tapio/connector/correlationconnector/internal/metadata"
	"github.com/yairfalse/tapio/internal/ratelog"
	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

// clock is where the connector reads the time; tests inject one they move by hand.
type clock interface{ Now() time.Time }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// evictReason names the cap that forced state out early.
type evictReason uint8

const (
	evictSpans evictReason = iota
	evictProblemEvents
	evictIncidents
	evictIncidentEvents
	evictPeers
	evictMetricSeries
	evictReasonCount
)

var evictReasonNames = [evictReasonCount]string{
	evictSpans:          "max_events_spans",
	evictProblemEvents:  "max_events_problem_events",
	evictIncidents:      "max_incidents",
	evictIncidentEvents: "max_events_per_incident",
	evictPeers:          "max_peers",
	evictMetricSeries:   "max_metric_series",
}

// emitTrigger says why a correlation record was emitted.
type emitTrigger uint8

const (
	emitDecision emitTrigger = iota
	emitClose
	emitEviction
	emitShutdown
	emitTriggerCount
)

var emitTriggerNames = [emitTriggerCount]string{
	emitDecision: "decision",
	emitClose:    "close",
	emitEviction: "eviction",
	emitShutdown: "shutdown",
}

// internCap bounds the intern table; past it the table starts afresh, and strings still held by
// events stay alive through those events alone.
const internCap = 1 << 16

// keyKind is what a link key is made of.
type keyKind uint8

const (
	keyTrace keyKind = iota + 1
	keyEntity
	keyPod
	keyService
	keyDestination
)

// linkKey is one piece of evidence an event shares with others: a trace, an entity, a pod, a
// service, an address clients failed to reach. Events sharing a key (inside the window, for all
// but traces) belong to one incident.
type linkKey struct {
	kind  keyKind
	trace pcommon.TraceID
	name  string
	port  int64
}

type binding struct {
	incident *incident
	last     int64 // time of the latest event bound through this key
}

// incident is one open correlation: a connected group of problem events. Its events slice is
// append-only — no element is written after it is appended — so a snapshot of it (the slice
// header) can be read without the lock while new events keep joining.
type incident struct {
	id           string
	version      int64
	lastEvidence int64 // clock time the latest event joined
	dirtySince   int64 // clock time of the first evidence not yet emitted
	events       []problemEvent
	eventCount   int
	told         int // events whose links are already counted in self-telemetry
	keys         []linkKey
	mergedIDs    []string
	dirty        bool
	prev, next   *incident // least recently updated first
	closed       bool
}

// snapshot is what a correlation record is built from: taken under c.mu, read without it.
type snapshot struct {
	id         string
	version    int64
	eventCount int
	events     []problemEvent
	told       int
	mergedIDs  []string
	trigger    emitTrigger
}

// correlator is the state shared by the three signal pairs of one component id.
type correlator struct {
	cfg       *Config
	logger    *zap.Logger
	sampled   *zap.Logger
	telemetry *metadata.TelemetryBuilder
	clock     clock
	window    int64
	skew      int64
	useTicker bool

	store      *spanStore
	peers      *peerDirectory
	thresholds *thresholdEvaluator
	advice     recommendationTable
	batches    sync.Pool

	internMu sync.Mutex // guards the intern tables
	intern   map[string]string
	pods     map[podRef]string

	mu       sync.Mutex // guards the incidents and their bindings
	bindings map[linkKey]binding
	oldest   *incident
	newest   *incident
	open     int
	held     int        // problem events held by open incidents
	pending  []snapshot // of incidents evicted while ingesting, built after the lock is released

	// buildMu serialises building (it owns scratch) and emitMu emission, so that records leave in
	// the order their snapshots were taken. Lock order: mu, then buildMu, then emitMu.
	buildMu sync.Mutex
	scratch chainScratch
	emitMu  sync.Mutex

	outMu   sync.Mutex
	outputs []registeredOutput
	nextOut int

	lifeMu  sync.Mutex
	stop    chan struct{}
	done    chan struct{}
	stopped bool

	// One-element option slices, built once: passing a fresh variadic option to Add allocates.
	acceptAttrs     [acceptKindCount][]metric.AddOption
	ignoreAttrs     [ignoreReasonCount][]metric.AddOption
	evictAttrs      [evictReasonCount][]metric.AddOption
	emitAttrs       [emitTriggerCount][]metric.AddOption
	linkAttrs       [linkReasonCount][]metric.AddOption
	lateAttrs       []metric.AddOption
	noOutput        []metric.AddOption
	downstreamError []metric.AddOption
	spanStore       []metric.AddOption
	problemStore    []metric.AddOption
	ruleAttrs       [][]metric.AddOption
}

type registeredOutput struct {
	id   int
	next consumer.Logs
}

func newCorrelator(set component.TelemetrySettings, cfg *Config, clk clock) (*correlator, error) {
	tb, err := metadata.NewTelemetryBuilder(set)
	if err != nil {
		return nil, err
	}
	c := &correlator{
		cfg:        cfg,
		logger:     set.Logger,
		telemetry:  tb,
		clock:      clk,
		window:     int64(cfg.Window),
		skew:       int64(cfg.ClockSkew),
		store:      newSpanStore(cfg.Shards, int64(cfg.Window), cfg.MaxEvents),
		peers:      newPeerDirectory(cfg.MaxPeers, int64(cfg.PeerTTL)),
		thresholds: newThresholdEvaluator(cfg.Thresholds, cfg.MaxMetricSeries),
		advice:     newRecommendationTable(cfg.Recommendations, cfg.Thresholds),
		intern:     map[string]string{},
		pods:       map[podRef]string{},
		bindings:   map[linkKey]binding{},
		scratch:    newChainScratch(),
	}
	c.batches.New = func() any { return &batch{tally: tally{breaches: map[int]int64{}}} }
	c.sampled = ratelog.Sampled(set.Logger)
	opt := func(key, value string) []metric.AddOption {
		return []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String(key, value)))}
	}
	for k := range acceptKindCount {
		c.acceptAttrs[k] = opt("kind", acceptKindNames[k])
	}
	for r := range ignoreReasonCount {
		c.ignoreAttrs[r] = opt("reason", ignoreReasonNames[r])
	}
	for r := range evictReasonCount {
		c.evictAttrs[r] = opt("reason", evictReasonNames[r])
	}
	for t := range emitTriggerCount {
		c.emitAttrs[t] = opt("trigger", emitTriggerNames[t])
	}
	for r := range linkReasonCount {
		c.linkAttrs[r] = opt("reason", linkReasonNames[r])
	}
	c.lateAttrs = opt("reason", "late")
	c.noOutput = opt("reason", "no_output")
	c.downstreamError = opt("reason", "downstream_error")
	c.spanStore = opt("store", "spans")
	c.problemStore = opt("store", "problem_events")
	for _, r := range cfg.Thresholds {
		c.ruleAttrs = append(c.ruleAttrs, opt("rule", r.Name))
	}
	return c, nil
}

// Start launches the flush loop. The shared-component wrapper calls it once.
func (c *correlator) Start(context.Context, component.Host) error {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	if c.stop != nil || c.stopped {
		return nil
	}
	c.stop, c.done = make(chan struct{}), make(chan struct{})
	go c.loop(c.stop, c.done)
	return nil
}

func (c *correlator) loop(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	var ticks <-chan time.Time
	if c.useTicker {
		t := time.NewTicker(c.cfg.FlushInterval)
		defer t.Stop()
		ticks = t.C
	}
	for {
		select {
		case <-stop:
			return
		case <-ticks:
			c.flush(context.Background(), c.clock.Now(), false)
		}
	}
}

// Shutdown stops the flush loop and emits every incident with evidence not yet emitted. It is safe
// without Start and safe twice.
func (c *correlator) Shutdown(ctx context.Context) error {
	c.lifeMu.Lock()
	if c.stopped {
		c.lifeMu.Unlock()
		return nil
	}
	c.stopped = true
	stop, done := c.stop, c.done
	c.lifeMu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
	c.flush(ctx, c.clock.Now(), true)
	c.telemetry.Shutdown()
	return nil
}

func (c *correlator) addOutput(id int, next consumer.Logs) {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	c.outputs = append(c.outputs, registeredOutput{id, next})
}

func (c *correlator) removeOutput(id int) {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	for i, o := range c.outputs {
		if o.id == id {
			c.outputs = append(c.outputs[:i], c.outputs[i+1:]...)
			return
		}
	}
}

// emit sends correlation records downstream, outside every state lock. Each pipeline pair of the
// connector hands it a consumer; all of them lead to the logs pipelines the connector exports to,
// so records go to the first still attached, once.
func (c *correlator) emit(ctx context.Context, ld plog.Logs) {
	if ld.LogRecordCount() == 0 {
		return
	}
	c.outMu.Lock()
	var next consumer.Logs
	if len(c.outputs) > 0 {
		next = c.outputs[0].next
	}
	c.outMu.Unlock()
	n := int64(ld.LogRecordCount())
	if next == nil {
		c.telemetry.ConnectorCorrelationRecordsRefused.Add(ctx, n, c.noOutput...)
		c.sampled.Warn("correlation records dropped: no logs pipeline is attached (counted in otelcol_connector_correlation_records_refused)", zap.Int64("records", n))
		return
	}
	if err := next.ConsumeLogs(ctx, ld); err != nil {
		c.telemetry.ConnectorCorrelationRecordsRefused.Add(ctx, n, c.downstreamError...)
		c.sampled.Warn("the next consumer refused correlation records (counted in otelcol_connector_correlation_records_refused)", zap.Error(err), zap.Int64("records", n))
	}
}

// commit puts one Consume call's batch into state and reports it.
func (c *correlator) commit(ctx context.Context, b *batch, now int64) error {
	ch := c.store.insert(b.nodes, now)
	b.tally.evicted[evictSpans] += int64(ch.evicted)
	b.tally.spansHeld += int64(ch.inserted - ch.evicted)
	if len(b.problems) > 0 {
		// Copying strings out of the batch needs only the intern table's lock, so concurrent
		// Consume calls overlap it with each other's joins.
		c.internMu.Lock()
		for i := range b.problems {
			c.prepare(&b.problems[i])
		}
		c.internMu.Unlock()
		c.mu.Lock()
		for i := range b.problems {
			c.join(&b.problems[i].problemEvent, now, &b.tally)
		}
		if len(c.pending) > 0 {
			snaps := c.pending
			c.pending = nil
			c.publish(ctx, snaps, &b.tally) // unlocks c.mu
		} else {
			c.mu.Unlock()
		}
	}
	c.report(ctx, &b.tally)
	c.putBatch(b)
	return nil
}

// takeSnapshot marks inc emitted at its next version and returns what its record is built from.
// It runs under c.mu.
func (c *correlator) takeSnapshot(inc *incident, trigger emitTrigger) snapshot {
	inc.version++
	inc.dirty = false
	s := snapshot{
		id:         inc.id,
		version:    inc.version,
		eventCount: inc.eventCount,
		events:     inc.events[:len(inc.events):len(inc.events)],
		told:       inc.told,
		mergedIDs:  slices.Clone(inc.mergedIDs),
		trigger:    trigger,
	}
	inc.told = len(inc.events)
	return s
}

// publish builds the records of snaps and emits them. It is called with c.mu held and releases
// it as soon as the build lock is taken, so ingestion never waits for a build or for downstream.
func (c *correlator) publish(ctx context.Context, snaps []snapshot, t *tally) {
	c.buildMu.Lock()
	c.mu.Unlock()
	out := plog.NewLogs()
	for i := range snaps {
		c.buildRecord(&snaps[i], out, t)
	}
	c.emitMu.Lock()
	c.buildMu.Unlock()
	c.emit(ctx, out)
	c.emitMu.Unlock()
}

func (c *correlator) report(ctx context.Context, t *tally) {
	tb := c.telemetry
	for k, n := range t.accepted {
		if n > 0 {
			tb.ConnectorCorrelationEventsAccepted.Add(ctx, n, c.acceptAttrs[k]...)
		}
	}
	var ignored int64
	for r, n := range t.ignored {
		if n > 0 {
			tb.ConnectorCorrelationRecordsIgnored.Add(ctx, n, c.ignoreAttrs[r]...)
			ignored += n
		}
	}
	if ignored > 0 {
		if ce := c.sampled.Check(zapcore.DebugLevel, "log records that are not usable UnifiedEvents ignored (counted in otelcol_connector_correlation_records_ignored)"); ce != nil {
			fields := make([]zap.Field, 0, ignoreReasonCount)
			for r, n := range t.ignored {
				if n > 0 {
					fields = append(fields, zap.Int64(ignoreReasonNames[r], n))
				}
			}
			ce.Write(fields...)
		}
	}
	if t.late > 0 {
		tb.ConnectorCorrelationEventsDropped.Add(ctx, t.late, c.lateAttrs...)
		c.sampled.Info("events older than the correlation window dropped (counted in otelcol_connector_correlation_events_dropped)",
			zap.Int64("events", t.late), zap.Duration("window", c.cfg.Window))
	}
	var evicted int64
	for r, n := range t.evicted {
		if n > 0 {
			tb.ConnectorCorrelationEvictions.Add(ctx, n, c.evictAttrs[r]...)
			evicted += n
		}
	}
	if evicted > 0 {
		if ce := c.sampled.Check(zapcore.WarnLevel, "correlation state reached a cap and evicted the oldest (counted in otelcol_connector_correlation_evictions)"); ce != nil {
			fields := make([]zap.Field, 0, evictReasonCount)
			for r, n := range t.evicted {
				if n > 0 {
					fields = append(fields, zap.Int64(evictReasonNames[r], n))
				}
			}
			ce.Write(fields...)
		}
	}
	if t.spansHeld != 0 {
		tb.ConnectorCorrelationEventsInState.Add(ctx, t.spansHeld, c.spanStore...)
	}
	if t.problems != 0 {
		tb.ConnectorCorrelationEventsInState.Add(ctx, t.problems, c.problemStore...)
	}
	if t.openDelta != 0 {
		tb.ConnectorCorrelationIncidentsOpen.Add(ctx, t.openDelta)
	}
	for trig, n := range t.emitted {
		if n > 0 {
			tb.ConnectorCorrelationIncidentsEmitted.Add(ctx, n, c.emitAttrs[trig]...)
		}
	}
	for r, n := range t.links {
		if n > 0 {
			tb.ConnectorCorrelationLinks.Add(ctx, n, c.linkAttrs[r]...)
		}
	}
	for rule, n := range t.breaches {
		tb.ConnectorCorrelationThresholdBreaches.Add(ctx, n, c.ruleAttrs[rule]...)
	}
}

// internPod returns the interned "namespace/name" of a pod without building the string when it
// is already known.
func (c *correlator) internPod(namespace, name string) string {
	if name == "" {
		return ""
	}
	key := podRef{namespace, name}
	if v, ok := c.pods[key]; ok {
		return v
	}
	if len(c.pods) >= internCap {
		c.pods = make(map[podRef]string, internCap/4)
	}
	v := namespace + "/" + name
	c.pods[podRef{strings.Clone(namespace), strings.Clone(name)}] = v
	return v
}

func (c *correlator) internStr(s string) string {
	if s == "" {
		return ""
	}
	if v, ok := c.intern[s]; ok {
		return v
	}
	if len(c.intern) >= internCap {
		c.intern = make(map[string]string, internCap/4)
	}
	v := strings.Clone(s)
	c.intern[v] = v
	return v
}

// prepare copies every string of a pending event out of the pdata batch — low-cardinality ones
// interned, the narrative cloned — and resolves its peer. It runs under c.internMu.
func (c *correlator) prepare(p *pendingEvent) {
	e := &p.problemEvent
	e.entity = c.internStr(e.entity)
	e.service = c.internStr(e.service)
	e.pod = c.internPod(p.podNamespace, p.podName)
	e.peerAddr = c.internStr(e.peerAddr)
	e.narrative = strings.Clone(unifiedevent.Truncate(e.narrative, unifiedevent.DefaultMaxNarrativeBytes))
	if p.details != (eventDetails{}) {
		d := p.details
		d.route = c.internStr(d.route)
		d.spanName = c.internStr(d.spanName)
		d.errorType = c.internStr(d.errorType)
		d.endUser = c.internStr(d.endUser)
		d.user = c.internStr(d.user)
		d.session = c.internStr(d.session)
		e.details = &d
	}
	if e.peerAddr != "" {
		if target, via, ok := c.peers.resolve(e.peerAddr, int64(e.peerPort)); ok {
			e.peerTarget, e.peerVia = c.internStr(target), via
		}
	}
}

// join takes a prepared problem event into the incident its keys lead to, opening one or merging
// several as needed. It runs under c.mu.
func (c *correlator) join(e *problemEvent, now int64, t *tally) {
	var keys [maxKeys]keyWithReason
	n := c.keysOf(e, &keys)

	// Find the incidents these keys lead to.
	var found [maxKeys]*incident
	var seen [maxKeys]binding
	nFound := 0
	best := linkNone
	for i, k := range keys[:n] {
		bd, ok := c.bindings[k.key]
		seen[i] = bd
		if !ok || bd.incident.closed {
			continue
		}
		if k.key.kind != keyTrace && absDiff(e.time, bd.last) > c.window {
			continue
		}
		if best == linkNone || c.cfg.Links.of(k.reason) > c.cfg.Links.of(best) {
			best = k.reason
		}
		dup := false
		for _, f := range found[:nFound] {
			dup = dup || f == bd.incident
		}
		if !dup {
			found[nFound] = bd.incident
			nFound++
		}
	}
	e.joinReason = best

	var inc *incident
	switch nFound {
	case 0:
		inc = c.openIncident(t)
	default:
		inc = found[0]
		for _, other := range found[1:nFound] {
			inc = c.merge(inc, other, t)
		}
	}

	inc.eventCount++
	// Make room by closing the least recently updated other incidents; an incident that alone
	// fills the cap keeps counting events but stops keeping them.
	for c.held >= c.cfg.MaxEvents {
		victim := c.oldest
		if victim == inc {
			victim = inc.next
		}
		if victim == nil {
			break
		}
		c.evict(victim, evictProblemEvents, t)
	}
	kept := false
	switch {
	case c.held >= c.cfg.MaxEvents:
		t.evicted[evictProblemEvents]++
	case len(inc.events) >= c.cfg.MaxEventsPerIncident:
		t.evicted[evictIncidentEvents]++
	default:
		inc.events = append(inc.events, *e)
		c.held++
		t.problems++
		kept = true
	}
	for i, k := range keys[:n] {
		if seen[i].incident == inc && seen[i].last >= e.time {
			continue // bound here already, and no later: nothing to write
		}
		if !kept && k.key.kind == keyTrace && seen[i].incident != inc {
			// An event not kept binds no new trace: trace ids are the one unbounded key.
			continue
		}
		bd, ok := c.bindings[k.key]
		if !ok || bd.incident != inc {
			inc.keys = append(inc.keys, k.key)
			bd = binding{incident: inc}
		}
		bd.last = max(bd.last, e.time)
		c.bindings[k.key] = bd
	}
	inc.lastEvidence = now
	if !inc.dirty {
		inc.dirty, inc.dirtySince = true, now
	}
	c.touch(inc)
}

// maxKeys bounds the keys of one event: trace, exemplar traces, entity, pod, service, peer.
const maxKeys = 8 + maxExemplarTraces

type keyWithReason struct {
	key    linkKey
	reason linkReason
}

// keysOf lists the evidence an event offers, with the link each key stands for.
func (c *correlator) keysOf(e *problemEvent, keys *[maxKeys]keyWithReason) int {
	n := 0
	add := func(k linkKey, r linkReason) {
		if n < len(keys) {
			keys[n] = keyWithReason{k, r}
			n++
		}
	}
	if !e.trace.IsEmpty() {
		add(linkKey{kind: keyTrace, trace: e.trace}, linkTrace)
	}
	if e.breach != nil {
		for _, t := range e.breach.exemplars {
			add(linkKey{kind: keyTrace, trace: t}, linkExemplar)
		}
	}
	if e.entity != "" {
		add(linkKey{kind: keyEntity, name: e.entity}, linkEntity)
	}
	if e.pod != "" {
		add(linkKey{kind: keyPod, name: e.pod}, linkKubernetes)
	}
	if e.service != "" {
		add(linkKey{kind: keyService, name: e.service}, linkService)
	}
	if e.peerAddr != "" {
		add(linkKey{kind: keyDestination, name: e.peerAddr, port: int64(e.peerPort)}, linkPeer)
		if e.peerTarget != "" {
			add(linkKey{kind: keyEntity, name: e.peerTarget}, linkPeer)
		} else if !looksLikeIP(e.peerAddr) {
			add(linkKey{kind: keyService, name: firstLabel(e.peerAddr)}, linkPeer)
		}
	}
	return n
}

func absDiff(a, b int64) int64 {
	if a > b {
		return a - b
	}
	return b - a
}

func (c *correlator) openIncident(t *tally) *incident {
	for c.open >= c.cfg.MaxIncidents && c.oldest != nil {
		c.evict(c.oldest, evictIncidents, t)
	}
	inc := &incident{id: unifiedevent.NewEventID()}
	c.open++
	t.openDelta++
	c.append(inc)
	return inc
}

// merge joins two incidents that new evidence connected. The one already emitted at the higher
// version (or else the first) keeps its id; the other's id is listed in merged_ids.
func (c *correlator) merge(a, b *incident, t *tally) *incident {
	keep, gone := a, b
	if b.version > a.version {
		keep, gone = b, a
	}
	for i := range gone.events {
		if len(keep.events) < c.cfg.MaxEventsPerIncident {
			keep.events = append(keep.events, gone.events[i])
		} else {
			c.held--
			t.problems--
			t.evicted[evictIncidentEvents]++
		}
	}
	keep.eventCount += gone.eventCount
	for _, k := range gone.keys {
		if bd, ok := c.bindings[k]; ok && bd.incident == gone {
			bd.incident = keep
			c.bindings[k] = bd
			keep.keys = append(keep.keys, k)
		}
	}
	if gone.version > 0 {
		keep.mergedIDs = append(keep.mergedIDs, gone.id)
	}
	keep.mergedIDs = append(keep.mergedIDs, gone.mergedIDs...)
	if !keep.dirty {
		keep.dirty, keep.dirtySince = true, gone.dirtySince
	}
	if gone.dirty {
		keep.dirtySince = min(keep.dirtySince, gone.dirtySince)
	}
	keep.lastEvidence = max(keep.lastEvidence, gone.lastEvidence)
	gone.events, gone.keys, gone.closed = nil, nil, true
	c.unlink(gone)
	c.open--
	t.openDelta--
	return keep
}

// evict closes an incident early because a cap was reached; evidence not yet emitted is emitted
// by the Consume call that caused the eviction, never dropped.
func (c *correlator) evict(inc *incident, reason evictReason, t *tally) {
	if inc.dirty {
		c.pending = append(c.pending, c.takeSnapshot(inc, emitEviction))
	}
	if reason == evictIncidents {
		t.evicted[reason]++
	} else {
		t.evicted[reason] += int64(len(inc.events))
	}
	c.close(inc, t)
}

// close forgets an incident and the keys that lead to it.
func (c *correlator) close(inc *incident, t *tally) {
	for _, k := range inc.keys {
		if bd, ok := c.bindings[k]; ok && bd.incident == inc {
			delete(c.bindings, k)
		}
	}
	c.held -= len(inc.events)
	t.problems -= int64(len(inc.events))
	inc.events, inc.keys, inc.closed = nil, nil, true
	c.unlink(inc)
	c.open--
	t.openDelta--
}

func (c *correlator) append(inc *incident) {
	inc.prev, inc.next = c.newest, nil
	if c.newest != nil {
		c.newest.next = inc
	} else {
		c.oldest = inc
	}
	c.newest = inc
}

func (c *correlator) unlink(inc *incident) {
	if inc.prev != nil {
		inc.prev.next = inc.next
	} else if c.oldest == inc {
		c.oldest = inc.next
	}
	if inc.next != nil {
		inc.next.prev = inc.prev
	} else if c.newest == inc {
		c.newest = inc.prev
	}
	inc.prev, inc.next = nil, nil
}

// touch moves an incident to the newest end of the list.
func (c *correlator) touch(inc *incident) {
	if c.newest == inc {
		return
	}
	c.unlink(inc)
	c.append(inc)
}

// flush emits incidents that have been quiet for decision_wait (or have kept changing for
// max_decision_delay), closes those quiet for incident_timeout, and expires old state. final
// (Shutdown) emits and closes everything.
func (c *correlator) flush(ctx context.Context, at time.Time, final bool) {
	now := at.UnixNano()
	var t tally
	expired := c.store.expire(now)
	t.spansHeld -= int64(expired.expired)
	c.peers.expire(now)
	c.thresholds.expire(now, c.window)

	wait, timeout, maxDelay := int64(c.cfg.DecisionWait), int64(c.cfg.IncidentTimeout), int64(c.cfg.MaxDecisionDelay)
	c.mu.Lock()
	snaps := c.pending
	c.pending = nil
	for inc := c.oldest; inc != nil; {
		next := inc.next
		quiet := now - inc.lastEvidence
		switch {
		case final:
			if inc.dirty {
				snaps = append(snaps, c.takeSnapshot(inc, emitShutdown))
			}
			c.close(inc, &t)
		case quiet >= timeout:
			if inc.dirty {
				snaps = append(snaps, c.takeSnapshot(inc, emitClose))
			}
			c.close(inc, &t)
		case inc.dirty && (quiet >= wait || now-inc.dirtySince >= maxDelay):
			snaps = append(snaps, c.takeSnapshot(inc, emitDecision))
		}
		inc = next
	}
	if len(snaps) > 0 {
		c.publish(ctx, snaps, &t) // unlocks c.mu
	} else {
		c.mu.Unlock()
	}
	c.report(ctx, &t)
}
