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
	id        component.ID // names the write-ahead log's directory
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
	// wal persists the open incidents when Config.WriteAheadLog is set; nil otherwise. Set at
	// Start.
	wal *walLog

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

// Start restores the open incidents from the write-ahead log, when storage is configured, and
// launches the flush loop. The shared-component wrapper calls it once.
func (c *correlator) Start(ctx context.Context, host component.Host) error {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	if c.stop != nil || c.stopped {
		return nil
	}
	if c.cfg.WriteAheadLog.Directory != "" {
		w, err := openWAL(c.cfg.WriteAheadLog, c.id, c.telemetry, c.logger, c.cfg.Thresholds)
		if err != nil {
			return err
		}
		if err := c.restore(ctx, w); err != nil {
			_ = w.close(ctx)
			return err
		}
		c.wal = w
		c.book.keepOpenAtShutdown = true
	}
	c.stop, c.done = make(chan struct{}), make(chan struct{})
	go c.loop(c.stop, c.done)
	return nil
}

// restore replays the write-ahead log into the incident book. Nothing is emitted here: the first
// flush emits what is due, as it would have without the crash.
func (c *correlator) restore(ctx context.Context, w *walLog) error {
	var t tally
	unknown := 0
	c.book.beginReplay()
	defer c.book.endReplay()
	err := w.replay(ctx, func(seq uint64, entry *walEntry) {
		for i := range entry.events {
			c.interner.restore(&entry.events[i])
		}
		unknown += c.book.replayEntry(entry.ops, entry.events, seq, entry.now, &t)
	})
	if err != nil {
		return err
	}
	// Only the gauges carry over: the counters counted these events in the process that took them.
	restored := t.problems
	c.telemetry.report(ctx, &tally{problems: t.problems, openDelta: t.openDelta, breaches: map[int]int64{}})
	c.telemetry.restored(ctx, restored)
	c.logger.Info("correlation state restored from the write-ahead log",
		zap.Int64("open_incidents", t.openDelta), zap.Int64("problem_events", restored),
		zap.Uint64("first_entry", w.head), zap.Uint64("next_entry", w.nextSeq()), zap.Int("ops_of_closed_incidents", unknown))
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

// stopLoop marks the correlator stopped and waits for its flush loop to end. It reports false
// when it was stopped already.
func (c *correlator) stopLoop() bool {
	c.lifeMu.Lock()
	if c.stopped {
		c.lifeMu.Unlock()
		return false
	}
	c.stopped = true
	stop, done := c.stop, c.done
	c.lifeMu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
	return true
}

// Shutdown stops the flush loop and emits every incident with evidence not yet emitted. Without
// storage it closes them; with storage they stay open in the write-ahead log, and a restart goes
// on with them. It is safe without Start and safe twice.
func (c *correlator) Shutdown(ctx context.Context) error {
	if !c.stopLoop() {
		return nil
	}
	c.flush(ctx, c.clock.Now(), true)
	c.telemetry.shutdown()
	if c.wal != nil {
		return c.wal.close(ctx)
	}
	return nil
}

// commit puts one Consume call's batch into state and reports it. With storage, the call's
// changes are written before it returns; a failed write fails the call, so the sender sends the
// data again.
func (c *correlator) commit(ctx context.Context, b *batch, now int64) error {
	b.tally.evicted[evictHealthKeys] += int64(c.health.record(b.healthy))
	ch := c.store.insert(b.nodes, now)
	b.tally.evicted[evictSpans] += int64(ch.evicted)
	b.tally.spansHeld += int64(ch.inserted - ch.evicted)
	var err error
	if len(b.problems) > 0 {
		c.interner.prepareAll(b.problems)
		snaps := c.book.joinAll(b.problems, now, &b.tally, &c.builder.mu, &b.ops, c.wal)
		if len(snaps) > 0 {
			// Records of incidents evicted by this call leave before the entry that says they
			// were evicted is written: a crash in between replays them as still open.
			c.publish(ctx, snaps, &b.tally)
		}
		if c.wal != nil {
			err = c.wal.writeLocked(ctx, now, &b.ops, b.problems)
		}
	}
	c.telemetry.report(ctx, &b.tally)
	c.putBatch(b)
	return err
}

// publish builds the records of snaps and sends them. It is called holding the builder's lock,
// taken by the book before it released its own.
func (c *correlator) publish(ctx context.Context, snaps []snapshot, t *tally) {
	out := c.builder.buildLocked(snaps, t, &c.outputs.mu)
	c.outputs.sendLocked(ctx, out)
}

// flush emits incidents due for a decision, closes quiet ones and expires old state. final
// (Shutdown) emits everything not yet emitted. With storage, what the flush emitted and closed is
// written after the records went downstream, then entries no open incident needs are deleted.
func (c *correlator) flush(ctx context.Context, at time.Time, final bool) {
	now := at.UnixNano()
	var t tally
	expired := c.store.expire(now)
	t.spansHeld -= int64(expired.expired)
	c.peers.expire(now)
	c.health.expire(now)
	c.thresholds.expire(now, c.window)
	var ops *walOps
	if c.wal != nil {
		ops = &c.wal.flushOps
	}
	if snaps := c.book.due(now, final, &t, &c.builder.mu, ops); len(snaps) > 0 {
		c.publish(ctx, snaps, &t)
	}
	if c.wal != nil && c.wal.writeFlush(ctx, now) {
		c.compact(ctx, now)
		// Read the next number first: an incident opened after it holds a number at least as high.
		next := c.wal.nextSeq()
		c.wal.truncate(ctx, c.book.lowestFirstSeq(next))
	}
	c.telemetry.report(ctx, &t)
}

// compact writes images of the incidents that keep the oldest entries alive once the live entries
// exceed walCompactBytes: the entries of the oldest half are then no longer needed.
func (c *correlator) compact(ctx context.Context, now int64) {
	w := c.wal
	if w.liveBytes() <= w.compactBytes {
		return
	}
	keepFrom := w.head + (w.nextSeq()-w.head)/2
	ops := &w.compactOps
	defer ops.reset()
	if !c.book.imagesOfOldest(keepFrom, walImagesPerFlush, ops, w) {
		return
	}
	if !w.writeImagesLocked(ctx, now) {
		c.book.restoreFirstSeq(ops)
	}
}
