package ebpfreceiver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf/ringbuf"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
	"golang.org/x/time/rate"

	"github.com/yairfalse/tapio/internal/ratelog"
	"github.com/yairfalse/tapio/internal/sharedcomponent"
	"github.com/yairfalse/tapio/internal/telemetryattrs"
	"github.com/yairfalse/tapio/receiver/ebpfreceiver/internal/kernel"
	"github.com/yairfalse/tapio/receiver/ebpfreceiver/internal/metadata"
)

// counterPollInterval is how often the kernel's drop and filter counters are read.
const counterPollInterval = time.Second

type ebpfReceiver struct {
	cfg       *Config
	set       receiver.Settings
	telemetry *metadata.TelemetryBuilder
	obs       *receiverhelper.ObsReport
	sampled   *zap.Logger
	host      string

	logs    consumer.Logs
	metrics consumer.Metrics

	mu       sync.Mutex
	shared   *sharedcomponent.Component[kernelSession]
	started  bool
	stopped  bool
	programs *kernel.Programs
	cancel   context.CancelFunc
	done     chan struct{}
	// draining is set by stop once the programs are detached: the reader's next ErrFlushed means
	// the ring buffer is empty for good.
	draining atomic.Bool

	// Owned by the reading goroutine.
	limiters     [kernel.KindCount]*rate.Limiter
	kindAttrs    telemetryattrs.Enum[kernel.Kind]
	received     [kernel.KindCount]int64
	rateLimited  [kernel.KindCount]int64
	decodeErrors int64
	lastDropped  [kernel.KindCount]uint64
	lastFiltered [kernel.KindCount]uint64
	lastEvicted  uint64
	clock        wallClock
	retransmits  map[kernel.Connection]uint64
	runs         failureRuns
	counters     *entityCounters
	cgroups      *cgroupCache
	// existingListeners were listening before the receiver started; they are reported once.
	existingListeners []kernel.ExistingListener
}

func newReceiver(set receiver.Settings, cfg *Config) (*ebpfReceiver, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	obs, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{ReceiverID: set.ID, Transport: "ebpf", ReceiverCreateSettings: set})
	if err != nil {
		return nil, err
	}
	host, err := os.Hostname()
	if err != nil {
		return nil, fmt.Errorf("reading the host name: %w", err)
	}
	r := &ebpfReceiver{cfg: cfg, set: set, telemetry: tb, obs: obs, host: host,
		retransmits: map[kernel.Connection]uint64{}}
	r.sampled = ratelog.Sampled(set.Logger)
	kindNames := make([]string, kernel.KindCount)
	for kind := kernel.Kind(1); kind < kernel.KindCount; kind++ {
		kindNames[kind] = string(eventNameOfKind(kind))
	}
	r.kindAttrs = telemetryattrs.NewEnum[kernel.Kind]("event", kindNames)
	for kind := kernel.Kind(1); kind < kernel.KindCount; kind++ {
		name := kindNames[kind]
		if limit, ok := cfg.RateLimits[name]; ok {
			r.limiters[kind] = rate.NewLimiter(rate.Limit(limit), int(limit)+1)
		}
	}
	return r, nil
}

func (r *ebpfReceiver) setLogs(next consumer.Logs)       { r.logs = next }
func (r *ebpfReceiver) setMetrics(next consumer.Metrics) { r.metrics = next }

// start loads and attaches the programs; the shared handle runs it once (see Start).
func (r *ebpfReceiver) start(_ context.Context, _ component.Host) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return nil
	}
	if runtime.GOOS != "linux" {
		return fmt.Errorf("the ebpf receiver needs Linux; this is %s", runtime.GOOS)
	}
	own, err := selfCgroups()
	if err != nil {
		return fmt.Errorf("reading the collector's own cgroups, which never name a workload: %w", err)
	}
	workloads, err := newWorkloadCgroups(r.cfg.Workload.CgroupPatterns, own)
	if err != nil {
		return err
	}
	cpus, err := kernel.PossibleCPUs()
	if err != nil {
		return err
	}
	r.runs = newFailureRuns(cpus)
	programs, err := kernel.Load(kernel.Options{Probes: r.cfg.Probes.Enabled(), ExitAbnormalOnly: r.cfg.ProcessExit.AbnormalOnly,
		SignalWindow: r.cfg.ProcessExit.SignalWindow, RingBufferBytes: r.cfg.RingBufferBytes, IOLatencyThreshold: r.cfg.IOLatency.Threshold,
		CountRepeats: r.cfg.MergeRepeats})
	if err != nil {
		return err
	}
	// The programs see forks and listens from now on; what already existed is read from /proc.
	r.existingListeners, err = programs.Seed("/proc")
	if err != nil {
		r.set.Logger.Warn("reading the processes and listeners that predate the receiver; their workers may be named by their own pid", zap.Error(err))
	}
	r.programs = programs
	r.clock.sync()
	r.cgroups = newCgroupCache(programs.CgroupPath, workloads, r.host)
	r.counters = newEntityCounters(r.cgroups, r.cfg.MaxMetricEntities, r.host, time.Now())
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.done = make(chan struct{})
	r.started = true
	go r.run(ctx)
	return nil
}

// stop stops reading, flushes what was read and detaches the programs; the shared handle runs it
// once, on the last Shutdown. Safe without start.
func (r *ebpfReceiver) stop(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return nil
	}
	r.stopped = true
	if !r.started {
		return nil
	}
	// Detached, the programs write no more records; what the ring buffer holds is still read:
	// records wake the reader only in bulk, so up to a poll interval's worth may be waiting. The
	// flush makes the reader return them and then ErrFlushed, on which it delivers and exits.
	err := r.programs.Detach()
	r.draining.Store(true)
	if flushErr := r.programs.Events.Flush(); flushErr != nil {
		// Without a flush the reader is unblocked by closing it; what it had not read is lost.
		err = errors.Join(err, flushErr, r.programs.Events.Close())
	}
	<-r.done
	r.cancel()
	return errors.Join(err, r.programs.Close())
}

func (r *ebpfReceiver) run(ctx context.Context) {
	defer close(r.done)
	builder := newLogBuilder(r.host, r.set.BuildInfo.Version, r.cgroups)
	builder.ioThreshold = r.cfg.IOLatency.Threshold
	builder.ownNetns = ownNetns()
	builder.mergeRepeats = r.cfg.MergeRepeats
	var (
		rec            ringbuf.Record
		event          kernel.Event
		now            = time.Now()
		batchDeadline  time.Time
		nextPoll       = now.Add(counterPollInterval)
		nextRetransmit = now.Add(r.cfg.RetransmitInterval)
		nextMetrics    = now.Add(r.cfg.MetricsInterval)
	)
	urgent := false // the batch holds an event the kernel woke the reader for
	// startBatch starts the batch's wait when an event that happened at when is its first: it
	// may have waited in the ring buffer for up to a poll interval already.
	startBatch := func(when time.Time) {
		if batchDeadline.IsZero() && builder.count > 0 {
			batchDeadline = earliest(when, now).Add(r.cfg.Batch.Timeout)
		}
	}
	// countedRepeats adds the events the kernel counted in its runs since they were last read.
	countedRepeats := func() {
		if !r.cfg.MergeRepeats {
			return
		}
		err := r.runs.counted(r.programs, func(repeats runRepeats) {
			startBatch(r.addRunRepeats(builder, repeats, now))
		})
		if err != nil {
			r.sampled.Warn("reading the kernel's repeat counts", zap.Error(err))
		}
	}
	flush := func() {
		if builder.count > 0 {
			r.deliverLogs(ctx, builder.take())
		}
		batchDeadline = time.Time{}
		urgent = false
	}
	if r.logs != nil && r.cfg.Probes[kernel.ProbeConnections] && len(r.existingListeners) > 0 {
		builder.observed = pcommonNow(now)
		for i := range r.existingListeners {
			builder.addExistingListener(&r.existingListeners[i], now)
		}
		flush()
	}
	for {
		// Frequent records do not wake the reader one by one, so it also drains the ring buffer
		// on its own at least every batch timeout.
		deadline := earliest(batchDeadline, nextPoll, nextRetransmit, nextMetrics, now.Add(r.cfg.Batch.Timeout))
		r.programs.Events.SetDeadline(deadline)
		err := r.programs.Events.ReadInto(&rec)
		now = time.Now()
		switch {
		case err == nil:
			if decodeErr := event.Decode(rec.RawSample); decodeErr != nil {
				r.decodeErrors++
				r.sampled.Warn("undecodable ring-buffer record", zap.Error(decodeErr))
				break
			}
			if mergeable(event.Kind) && event.RunStart().Number != 0 {
				// Before its own event: the ended run's last events happened before it.
				if ended := r.runs.started(&event); ended.n > 0 {
					startBatch(r.addRunRepeats(builder, ended, now))
				}
			}
			r.received[event.Kind]++
			if l := r.limiters[event.Kind]; l != nil && !l.AllowN(now, 1) {
				r.rateLimited[event.Kind]++
				r.sampled.Warn("kernel events over their rate limit are dropped (counted in otelcol_receiver_ebpf_rate_limited)",
					zap.String("event", string(eventNameOfKind(event.Kind))))
				break
			}
			if event.Kind != kernel.KindProcessExit || event.ExitCode() != 0 {
				r.counters.count(&event.Subject, event.Kind, 1, now)
			}
			if r.logs != nil {
				when := r.clock.wall(event.KTimeNs)
				builder.observed = pcommonNow(now)
				builder.add(&event, when)
				startBatch(when)
				if wokenAtOnce(event.Kind) {
					urgent = true
				}
				// A batch holding an event the kernel woke the reader for (an OOM kill, a fatal
				// signal, an exit, an I/O error) leaves as soon as the ring buffer is drained, not
				// at batch.timeout: read records are only in this process's memory until
				// ConsumeLogs returns, and a crash of the collector meanwhile loses them.
				if builder.count >= r.cfg.Batch.MaxSize || urgent && r.programs.Events.AvailableBytes() == 0 {
					flush()
				}
			}
		case errors.Is(err, os.ErrDeadlineExceeded):
		case errors.Is(err, ringbuf.ErrFlushed) && r.draining.Load(), errors.Is(err, ringbuf.ErrClosed):
			// Shutdown: what was read still goes downstream, under a context that is not canceled.
			ctx = context.WithoutCancel(ctx)
			countedRepeats()
			flush()
			r.pollCounters(ctx, builder)
			return
		default:
			r.sampled.Error("reading the kernel ring buffer", zap.Error(err))
		}
		if err != nil {
			// What was pending has been read: the runs' counts since then join the batch.
			countedRepeats()
		}
		// A batch past its deadline goes once what is pending has been read — the read deadline is
		// then past too, so the reader returns every pending record and then the deadline's error:
		// a reader catching up on a backlog fills whole batches instead of sending one per record.
		if !batchDeadline.IsZero() && !now.Before(batchDeadline) && err != nil {
			flush()
		}
		if !now.Before(nextPoll) {
			r.pollCounters(ctx, builder)
			r.clock.sync()
			nextPoll = now.Add(counterPollInterval)
		}
		if !now.Before(nextRetransmit) {
			r.pollRetransmits(builder, now)
			flush()
			nextRetransmit = now.Add(r.cfg.RetransmitInterval)
		}
		if !now.Before(nextMetrics) {
			if r.metrics != nil {
				r.deliverMetrics(ctx, now)
			}
			nextMetrics = now.Add(r.cfg.MetricsInterval)
		}
	}
}

// addRunRepeats accounts for events the kernel counted in a run and adds them to the batch (a
// run's counts leave the kernel at least every batch timeout, so each adds few records); it
// returns when the last of them happened. Rate limits apply to them as to records: the tokens
// left are taken, and the rest is dropped and counted.
func (r *ebpfReceiver) addRunRepeats(builder *logBuilder, repeats runRepeats, now time.Time) time.Time {
	e := repeats.like
	n := int64(repeats.n)
	r.received[e.Kind] += n
	if l := r.limiters[e.Kind]; l != nil {
		allowed := min(n, int64(l.TokensAt(now)))
		if allowed < n {
			r.rateLimited[e.Kind] += n - allowed
			r.sampled.Warn("kernel events over their rate limit are dropped (counted in otelcol_receiver_ebpf_rate_limited)",
				zap.String("event", string(eventNameOfKind(e.Kind))))
		}
		if allowed <= 0 {
			return time.Time{}
		}
		l.AllowN(now, int(allowed))
		n = allowed
	}
	r.counters.count(&e.Subject, e.Kind, uint64(n), now)
	last := r.clock.wall(repeats.toNs)
	if r.logs != nil {
		builder.observed = pcommonNow(now)
		builder.addRepeats(e, n, r.clock.wall(repeats.fromNs), last)
	}
	return last
}

// wokenAtOnce reports the kinds the kernel submits with BPF_RB_FORCE_WAKEUP (submit_rare in
// bpf/tapio.bpf.c): few, and each one matters.
func wokenAtOnce(k kernel.Kind) bool {
	switch k {
	case kernel.KindProcessExit, kernel.KindOOMKill, kernel.KindFatalSignal, kernel.KindIOError:
		return true
	}
	return false
}

func earliest(times ...time.Time) time.Time {
	var min time.Time
	for _, t := range times {
		if !t.IsZero() && (min.IsZero() || t.Before(min)) {
			min = t
		}
	}
	return min
}

func (r *ebpfReceiver) deliverLogs(ctx context.Context, ld plog.Logs) {
	opCtx := r.obs.StartLogsOp(ctx)
	n := ld.LogRecordCount()
	err := r.logs.ConsumeLogs(opCtx, ld)
	r.obs.EndLogsOp(opCtx, "unifiedevent", n, err)
	if err != nil {
		r.sampled.Warn("the next consumer refused kernel events (counted in otelcol_receiver_refused_log_records)", zap.Int("records", n), zap.Error(err))
	}
}

// pollCounters moves the per-batch tallies and the kernel's per-CPU counters into self-telemetry.
func (r *ebpfReceiver) pollCounters(ctx context.Context, builder *logBuilder) {
	tb := r.telemetry
	r.kindAttrs.AddEach(ctx, tb.ReceiverEbpfEventsReceived, r.received[:])
	r.kindAttrs.AddEach(ctx, tb.ReceiverEbpfRateLimited, r.rateLimited[:])
	merged := builder.takeMerged()
	r.kindAttrs.AddEach(ctx, tb.ReceiverEbpfEventsMerged, merged[:])
	clear(r.received[:])
	clear(r.rateLimited[:])
	if r.decodeErrors > 0 {
		tb.ReceiverEbpfDecodeErrors.Add(ctx, r.decodeErrors)
		r.decodeErrors = 0
	}
	if dropped, err := r.programs.Dropped(); err == nil {
		for kind := kernel.Kind(1); kind < kernel.KindCount; kind++ {
			if delta := dropped[kind] - r.lastDropped[kind]; delta > 0 {
				tb.ReceiverEbpfRingbufDropped.Add(ctx, int64(delta), r.kindAttrs.Options(kernel.Kind(kind))...)
				r.sampled.Warn("the kernel ring buffer was full: events lost (counted in otelcol_receiver_ebpf_ringbuf_dropped); raise ring_buffer_bytes",
					zap.String("event", string(eventNameOfKind(kind))), zap.Uint64("lost", delta))
			}
		}
		r.lastDropped = dropped
	}
	if filtered, err := r.programs.Filtered(); err == nil {
		for kind := kernel.Kind(1); kind < kernel.KindCount; kind++ {
			if delta := filtered[kind] - r.lastFiltered[kind]; delta > 0 {
				tb.ReceiverEbpfFiltered.Add(ctx, int64(delta), r.kindAttrs.Options(kernel.Kind(kind))...)
			}
		}
		r.lastFiltered = filtered
	}
	if evicted, err := r.programs.OwnersEvicted(); err == nil {
		if delta := evicted - r.lastEvicted; delta > 0 {
			tb.ReceiverEbpfSocketOwnersEvicted.Add(ctx, int64(delta))
			r.sampled.Warn("the kernel's socket-owner table was full: connecting sockets were left without their process (counted in otelcol_receiver_ebpf_socket_owners_evicted)",
				zap.Uint64("sockets", delta))
		}
		r.lastEvicted = evicted
	}
	if n := r.counters.takeEvicted(); n > 0 {
		tb.ReceiverEbpfMetricEntitiesEvicted.Add(ctx, n)
	}
}

// pollRetransmits turns each connection's retransmits since the last poll into one event.
func (r *ebpfReceiver) pollRetransmits(builder *logBuilder, now time.Time) {
	if !r.cfg.Probes[kernel.ProbeTCPRetransmit] {
		return
	}
	seen := make(map[kernel.Connection]bool, len(r.retransmits))
	err := r.programs.Retransmits(func(conn kernel.Connection, count, lastNs uint64, owner *kernel.Identity, role kernel.Role) {
		seen[conn] = true
		previous := r.retransmits[conn]
		r.retransmits[conn] = count
		if count <= previous {
			return
		}
		delta := count - previous
		r.counters.countRetransmits(owner, delta, now)
		if r.logs != nil {
			builder.observed = pcommonNow(now)
			builder.addRetransmits(conn, delta, r.cfg.RetransmitInterval, owner, role, r.clock.wall(lastNs))
		}
	})
	if err != nil {
		r.sampled.Warn("reading retransmit counters", zap.Error(err))
	}
	for conn := range r.retransmits {
		if !seen[conn] {
			delete(r.retransmits, conn) // evicted from the kernel's LRU map
		}
	}
}

func (r *ebpfReceiver) deliverMetrics(ctx context.Context, now time.Time) {
	md := r.counters.build(now)
	if md.DataPointCount() == 0 {
		return
	}
	opCtx := r.obs.StartMetricsOp(ctx)
	n := md.DataPointCount()
	err := r.metrics.ConsumeMetrics(opCtx, md)
	r.obs.EndMetricsOp(opCtx, "unifiedevent", n, err)
}

// wallClock converts the kernel's CLOCK_MONOTONIC timestamps to wall-clock time. The offset is
// re-read every second so that clock adjustments are followed.
type wallClock struct{ offset int64 }

func (c *wallClock) sync() {
	var mono unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono); err != nil {
		return
	}
	c.offset = time.Now().UnixNano() - mono.Nano()
}

func (c *wallClock) wall(ktimeNs uint64) time.Time {
	return time.Unix(0, int64(ktimeNs)+c.offset)
}

func pcommonNow(t time.Time) pcommon.Timestamp { return pcommon.NewTimestampFromTime(t) }

// ownNetns is the inode number of the collector's network namespace; 0 when unknown.
func ownNetns() uint32 {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &st); err != nil {
		return 0
	}
	return uint32(st.Ino)
}
