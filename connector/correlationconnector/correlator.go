package correlationconnector

import (
	"context"
	"os"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.uber.org/zap"
)

// clock is where the connector reads the time; tests inject one they move by hand.
type clock interface{ Now() time.Time }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// correlator is the state shared by the three signal pairs of one component id. Data flows:
//
//	Consume{Traces,Logs,Metrics} (ingest.go, thresholds.go)
//	  -> pdata read once into a pooled batch: span nodes and pending problem events
//	  -> spanStore.insert (span structure, for the chain's trace ancestry)
//	  -> interner.prepareAll (key strings copied out of pdata, peer resolved in the peerDirectory)
//	  -> incidentBook.joinAll (join, merge, evict; interner.keep copies what an incident keeps)
//	     ... flush -> incidentBook.due (decide)
//	  -> snapshots -> recordBuilder (chain.go: order and link the chain; record.go: the record)
//	  -> outputRouter.sendLocked -> the next logs consumer
//	  -> selfTelemetry.report (counters of the batch, once per call)
//
// Each stage owns its lock; snapshots pass from the book to the builder and from the builder to
// the router hand over hand (the next lock is taken before the previous is released), so records
// leave in the order their snapshots were taken and ingestion never waits for a build or for
// downstream.
type correlator struct {
	cfg       *Config
	logger    *zap.Logger
	telemetry *selfTelemetry
	clock     clock
	window    int64
	skew      int64
	useTicker bool
	// localHost is the collector's host name, for telemetry that names none (readResource).
	localHost string

	store      *spanStore
	peers      *peerDirectory
	thresholds *thresholdEvaluator
	interner   *interner
	book       *incidentBook
	builder    *recordBuilder
	health     *healthLedger
	policy     incidentPolicy
	outputs    *outputRouter
	batches    sync.Pool

	lifeMu  sync.Mutex // guards the flush loop's lifecycle
	stop    chan struct{}
	done    chan struct{}
	stopped bool
}

func newCorrelator(set component.TelemetrySettings, cfg *Config, clk clock) (*correlator, error) {
	st, err := newSelfTelemetry(set, cfg)
	if err != nil {
		return nil, err
	}
	peers := newPeerDirectory(cfg.MaxPeers, int64(cfg.PeerTTL))
	store := newSpanStore(cfg.Shards, int64(cfg.Window), cfg.MaxEvents)
	intern := newInterner(peers)
	health := newHealthLedger(cfg.MaxPeers, int64(cfg.Window))
	c := &correlator{
		cfg:        cfg,
		logger:     set.Logger,
		telemetry:  st,
		clock:      clk,
		window:     int64(cfg.Window),
		skew:       int64(cfg.ClockSkew),
		store:      store,
		peers:      peers,
		thresholds: newThresholdEvaluator(cfg.Thresholds, cfg.MaxMetricSeries),
		interner:   intern,
		book:       newIncidentBook(cfg, health, intern),
		health:     health,
		policy:     newIncidentPolicy(cfg.Incidents),
		builder:    newRecordBuilder(cfg, store, clk),
		outputs:    &outputRouter{telemetry: st},
	}
	c.localHost, _ = os.Hostname()
	c.batches.New = func() any { return &batch{tally: tally{breaches: map[int]int64{}}} }
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
	c.telemetry.shutdown()
	return nil
}

// commit puts one Consume call's batch into state and reports it.
func (c *correlator) commit(ctx context.Context, b *batch, now int64) error {
	b.tally.evicted[evictHealthKeys] += int64(c.health.record(b.healthy))
	ch := c.store.insert(b.nodes, now)
	b.tally.evicted[evictSpans] += int64(ch.evicted)
	b.tally.spansHeld += int64(ch.inserted - ch.evicted)
	if len(b.problems) > 0 {
		c.interner.prepareAll(b.problems)
		if snaps := c.book.joinAll(b.problems, now, &b.tally, &c.builder.mu); len(snaps) > 0 {
			c.publish(ctx, snaps, &b.tally)
		}
	}
	c.telemetry.report(ctx, &b.tally)
	c.putBatch(b)
	return nil
}

// publish builds the records of snaps and sends them. It is called holding the builder's lock,
// taken by the book before it released its own.
func (c *correlator) publish(ctx context.Context, snaps []snapshot, t *tally) {
	out := c.builder.buildLocked(snaps, t, &c.outputs.mu)
	c.outputs.sendLocked(ctx, out)
}

// flush emits incidents due for a decision, closes quiet ones and expires old state. final
// (Shutdown) emits and closes everything.
func (c *correlator) flush(ctx context.Context, at time.Time, final bool) {
	now := at.UnixNano()
	var t tally
	expired := c.store.expire(now)
	t.spansHeld -= int64(expired.expired)
	c.peers.expire(now)
	c.health.expire(now)
	c.thresholds.expire(now, c.window)
	if snaps := c.book.due(now, final, &t, &c.builder.mu); len(snaps) > 0 {
		c.publish(ctx, snaps, &t)
	}
	c.telemetry.report(ctx, &t)
}
