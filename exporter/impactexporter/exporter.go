package impactexporter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/yairfalse/tapio/exporter/impactexporter/internal/metadata"
	"github.com/yairfalse/tapio/internal/ratelog"
	"github.com/yairfalse/tapio/internal/telemetryattrs"
	"github.com/yairfalse/tapio/pkg/impactapi"
	ue "github.com/yairfalse/tapio/pkg/unifiedevent"
)

type impactExporter struct {
	cfg       *Config
	set       exporter.Settings
	telemetry *metadata.TelemetryBuilder
	scorer    *scorer
	sampled   *zap.Logger
	now       func() time.Time
	// heartbeat overrides the stream keep-alive interval (tests).
	heartbeat time.Duration

	invalidAttrs  telemetryattrs.Enum[ue.InvalidCorrelationReason]
	evictionAttrs telemetryattrs.Enum[evictionReason]

	// mu guards the lifecycle; consumeLogs holds it for reading so Shutdown waits for it.
	mu       sync.RWMutex
	started  bool
	stopped  bool
	store    *store
	broker   *broker
	notifier *notifier
	server   *http.Server
	listener net.Listener
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

func newImpactExporter(set exporter.Settings, cfg *Config) (*impactExporter, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	e := &impactExporter{
		cfg:           cfg,
		set:           set,
		telemetry:     tb,
		scorer:        newScorer(cfg.Impact),
		now:           time.Now,
		sampled:       ratelog.Sampled(set.Logger),
		invalidAttrs:  telemetryattrs.NewEnum[ue.InvalidCorrelationReason]("reason", invalidReasonNames()),
		evictionAttrs: telemetryattrs.NewEnum[evictionReason]("reason", evictionReasonNames[:]),
	}
	return e, nil
}

func (e *impactExporter) start(ctx context.Context, host component.Host) (err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started {
		return nil
	}
	if e.stopped {
		return errors.New("impact exporter cannot be restarted after shutdown")
	}
	st, err := openStore(e.cfg.Storage)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = st.close()
		}
	}()
	var n *notifier
	if e.cfg.Notifications.Webhook.Endpoint != "" {
		client, err := e.cfg.Notifications.Webhook.ToClient(ctx, host.GetExtensions(), e.set.TelemetrySettings)
		if err != nil {
			return fmt.Errorf("webhook client: %w", err)
		}
		n = newNotifier(e.cfg.Notifications.Webhook, client, e.telemetry, e.sampled)
	}
	b := newBroker(e.telemetry, e.sampled)
	ln, err := e.cfg.HTTP.ToListener(ctx)
	if err != nil {
		return fmt.Errorf("impact API listener on %s: %w", e.cfg.HTTP.NetAddr.Endpoint, err)
	}
	api := &apiHandler{store: st, broker: b, now: e.now, telemetry: e.telemetry, logger: e.sampled, heartbeat: e.heartbeat}
	srv, err := e.cfg.HTTP.ToServer(ctx, host.GetExtensions(), e.set.TelemetrySettings, api.routes())
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("impact API server: %w", err)
	}

	e.store, e.broker, e.notifier, e.server, e.listener = st, b, n, srv, ln
	runCtx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.started = true
	if n != nil {
		n.start(&e.wg)
	}
	e.wg.Add(2)
	go func() {
		defer e.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.set.Logger.Error("impact API server stopped", zap.Error(err))
		}
	}()
	go func() {
		defer e.wg.Done()
		e.retentionLoop(runCtx)
	}()
	e.warnDeprecated()
	if st.totalsRebuilt {
		e.set.Logger.Info("incident store totals counted again: the file had none, or was written since by an exporter that does not keep them",
			zap.String("store", st.db.Path()))
	}
	e.set.Logger.Info("impact exporter serving the incident API",
		zap.String("endpoint", ln.Addr().String()),
		zap.String("store", st.db.Path()),
		zap.Int64("incidents", st.Len()),
		zap.Int64("record_bytes", st.Bytes()))
	return nil
}

// warnDeprecated names each deprecated key the configuration sets, and what replaces it.
func (e *impactExporter) warnDeprecated() {
	wh := &e.cfg.Notifications.Webhook
	for _, k := range wh.deprecatedKeys() {
		old, replacement := "notifications.webhook."+k.key, "notifications.webhook."+k.replacement
		e.set.Logger.Warn(fmt.Sprintf("%s is deprecated and will be removed in the next release: use %s (this configuration's retries read as %s)",
			old, replacement, describeRetry(wh.retryOnFailure())),
			zap.String("deprecated", old), zap.String("replacement", replacement))
	}
}

func (e *impactExporter) shutdown(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.started || e.stopped {
		e.stopped = true
		return nil
	}
	e.stopped = true
	// Streams never go idle on their own: end them before the server waits for idle connections.
	e.broker.close()
	errs := []error{e.server.Shutdown(ctx)}
	e.cancel()
	if e.notifier != nil {
		e.notifier.stop()
	}
	e.wg.Wait()
	errs = append(errs, e.store.close())
	e.telemetry.Shutdown()
	return errors.Join(errs...)
}

// addr is where the API listens (useful with port 0).
func (e *impactExporter) addr() string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.listener == nil {
		return ""
	}
	return e.listener.Addr().String()
}

// retentionLoop deletes expired incidents every retention_interval and, from the first round
// on, whatever exceeds caps lowered since the store was last written (upserts evict the rest).
func (e *impactExporter) retentionLoop(ctx context.Context) {
	t := time.NewTicker(e.cfg.Storage.RetentionInterval)
	defer t.Stop()
	for {
		e.expireOnce()
		e.evictOnce()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (e *impactExporter) expireOnce() {
	n, err := e.store.expire(e.now().Add(-e.cfg.Storage.Retention), deleteBatch)
	if n > 0 {
		e.telemetry.ExporterImpactIncidentsExpired.Add(context.Background(), n, e.evictionAttrs.Options(evictedByRetention)...)
		e.set.Logger.Debug("incidents expired by retention", zap.Int64("count", n))
	}
	if err != nil {
		e.telemetry.ExporterImpactStoreErrors.Add(context.Background(), 1, metric.WithAttributes(attribute.String("operation", "expire")))
		e.sampled.Warn("incident retention failed (counted in otelcol_exporter_impact_store_errors)", zap.Error(err))
	}
}

func (e *impactExporter) evictOnce() {
	ev, err := e.store.evict(deleteBatch)
	e.noteEvicted(context.Background(), ev)
	if err != nil {
		e.telemetry.ExporterImpactStoreErrors.Add(context.Background(), 1, metric.WithAttributes(attribute.String("operation", "evict")))
		e.sampled.Warn("incident eviction failed (counted in otelcol_exporter_impact_store_errors)", zap.Error(err))
	}
}

// noteEvicted counts incidents evicted by the caps and logs them at most once per ratelog.Tick.
func (e *impactExporter) noteEvicted(ctx context.Context, ev evictions) {
	if n := e.evictionAttrs.AddEach(ctx, e.telemetry.ExporterImpactIncidentsExpired, ev[:]); n > 0 {
		e.sampled.Warn("incident store full: the least recently updated incidents were evicted (storage.max_incidents, storage.max_size_mib; counted in otelcol_exporter_impact_incidents_expired)",
			append(e.evictionAttrs.Fields(ev[:]), zap.Int64("incidents", e.store.Len()), zap.Int64("record_bytes", e.store.Bytes()))...)
	}
}

func (e *impactExporter) consumeLogs(ctx context.Context, ld plog.Logs) error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if !e.started || e.stopped {
		return errors.New("impact exporter is not running")
	}
	now := e.now().UTC()
	var recs []plog.LogRecord
	var ignored int64
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				if rec := lrs.At(k); ue.IsCorrelationRecord(rec) {
					recs = append(recs, rec)
				} else {
					ignored++
				}
			}
		}
	}
	if ignored > 0 {
		e.telemetry.ExporterImpactRecordsIgnored.Add(ctx, ignored)
	}
	if len(recs) == 0 {
		return nil
	}
	// Reading, scoring and encoding are independent per record (pdata is only read): spread them
	// over the cores, so that the single-writer transaction only writes.
	incs := make([]*impactapi.Incident, len(recs))
	raws := make([][]byte, len(recs))
	errs := make([]error, len(recs))
	parallel(len(recs), func(i int) {
		inc, observed, err := readCorrelation(recs[i])
		if err != nil {
			errs[i] = err
			return
		}
		inc.UpdatedAt = now
		inc.DetectedAt = now
		if !observed.IsZero() {
			inc.DetectedAt = observed
		}
		e.scorer.score(&inc, e.store)
		setTimeToDetection(&inc)
		incs[i] = &inc
		raws[i], errs[i] = json.Marshal(&inc)
	})
	n := 0
	for i, err := range errs {
		if err != nil {
			e.noteInvalid(ctx, err)
			continue
		}
		incs[n], raws[n] = incs[i], raws[i]
		n++
	}
	if n == 0 {
		return nil
	}
	return e.ingest(ctx, incs[:n], raws[:n], now)
}

// ingest stores, streams and notifies scored incidents read from one batch.
func (e *impactExporter) ingest(ctx context.Context, incs []*impactapi.Incident, raws [][]byte, now time.Time) error {
	var edges [][2]string
	for _, inc := range incs {
		dependencyEdges(inc, func(dep, dependent string) { edges = append(edges, [2]string{dep, dependent}) })
	}
	out, err := e.store.upsert(incs, raws, edges, now)
	if refused := out.refusedEdges; refused > 0 {
		e.telemetry.ExporterImpactDependencyEdgesRefused.Add(ctx, int64(refused))
		e.sampled.Warn("service dependency graph is full (storage.max_dependency_edges); new edges are counted, not kept", zap.Int("refused", refused))
	}
	if err != nil {
		e.telemetry.ExporterImpactStoreErrors.Add(ctx, 1, metric.WithAttributes(attribute.String("operation", "upsert")))
		e.sampled.Error("storing incidents failed (counted in otelcol_exporter_impact_store_errors)", zap.Error(err), zap.Int("incidents", len(incs)))
		return fmt.Errorf("store incidents: %w", err)
	}
	e.noteEvicted(ctx, out.evicted)
	var stale int64
	for _, r := range out.results {
		if !r.stored {
			stale++
			continue
		}
		kind := impactapi.EventUpdated
		if r.created {
			kind = impactapi.EventCreated
		}
		e.telemetry.ExporterImpactIncidentsUpserted.Add(ctx, 1, metric.WithAttributes(
			attribute.String("type", kind), attribute.String("severity", r.incident.Severity.String())))
		ev := impactapi.StreamEvent{Type: kind, Incident: *r.incident}
		e.broker.publish(ev)
		if !r.created && r.oldSeverity == r.incident.Severity {
			continue // notify new incidents and severity changes, not every version
		}
		if e.notifier != nil && r.incident.Severity.AtLeast(e.cfg.Notifications.Webhook.MinSeverity) {
			e.notifier.enqueue(ev)
		}
		if ls := e.cfg.Notifications.LogSummary; ls.Enabled && r.incident.Severity.AtLeast(ls.MinSeverity) {
			e.set.Logger.Info(humanSummary(kind, r.incident), zap.String("incident", r.incident.ID),
				zap.Stringer("severity", r.incident.Severity), zap.Float64("score", r.incident.Score))
		}
	}
	if stale > 0 {
		e.telemetry.ExporterImpactIncidentsStale.Add(ctx, stale)
	}
	return nil
}

// parallelMin is the smallest share of a batch worth a goroutine.
const parallelMin = 32

// parallel calls f(0) … f(n-1) on up to GOMAXPROCS goroutines.
func parallel(n int, f func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n/parallelMin)
	if workers <= 1 {
		for i := range n {
			f(i)
		}
		return
	}
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				f(i)
			}
		})
	}
	wg.Wait()
}

func (e *impactExporter) noteInvalid(ctx context.Context, err error) {
	reason := invalidReasonOf(err)
	e.telemetry.ExporterImpactRecordsInvalid.Add(ctx, 1, e.invalidAttrs.Options(reason)...)
	e.sampled.Warn("unreadable tapio.correlation record ignored (further ones are counted in otelcol_exporter_impact_records_invalid)",
		zap.String("reason", reason.String()), zap.Error(err))
}

// humanSummary is the one-paragraph account written to the collector log.
func humanSummary(kind string, inc *impactapi.Incident) string {
	var b strings.Builder
	if kind == impactapi.EventCreated {
		fmt.Fprintf(&b, "New incident %s: %s (score %.2f). ", inc.ID, inc.Severity, inc.Score)
	} else {
		fmt.Fprintf(&b, "Incident %s is now %s (score %.2f). ", inc.ID, inc.Severity, inc.Score)
	}
	if inc.RootCause.Narrative != "" {
		fmt.Fprintf(&b, "Root cause: %s. ", strings.TrimSuffix(inc.RootCause.Narrative, "."))
	}
	im := inc.Impact
	if im.RevenueAtRisk != nil {
		fmt.Fprintf(&b, "Revenue at risk: %s %s. ", formatAmount(im.RevenueAtRisk.Amount), im.RevenueAtRisk.Currency)
	}
	if im.FailedTransactions != nil {
		fmt.Fprintf(&b, "Failed transactions: %d. ", im.FailedTransactions.Count)
	}
	if im.AffectedUsers != nil {
		fmt.Fprintf(&b, "Affected users: %d. ", im.AffectedUsers.Count)
	}
	if len(inc.Services) > 0 {
		fmt.Fprintf(&b, "Services: %s. ", strings.Join(inc.Services, ", "))
	}
	for _, r := range inc.Recommendations {
		if r.Horizon == impactapi.HorizonImmediate {
			fmt.Fprintf(&b, "Do now: %s", r.Action)
			break
		}
	}
	return strings.TrimSpace(b.String())
}
