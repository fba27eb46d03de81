package correlationconnector

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/yairfalse/tapio/connector/correlationconnector/internal/metadata"
	"github.com/yairfalse/tapio/internal/ratelog"
	"github.com/yairfalse/tapio/internal/telemetryattrs"
)

// refusedReason says why correlation records did not go downstream.
type refusedReason uint8

const (
	refusedNoOutput refusedReason = iota
	refusedDownstream
	refusedReasonCount
)

var refusedReasonNames = [refusedReasonCount]string{
	refusedNoOutput:   "no_output",
	refusedDownstream: "downstream_error",
}

// persistOp is the write-ahead log operation that failed.
type persistOp uint8

const (
	persistWrite persistOp = iota
	persistRead
	persistDecode
	persistDelete
	persistOpCount
)

var persistOpNames = [persistOpCount]string{
	persistWrite:  "write",
	persistRead:   "read",
	persistDecode: "decode",
	persistDelete: "delete",
}

// selfTelemetry turns the tally of one Consume call or flush into the connector's instruments
// and its rate-limited log lines. The instruments are safe for concurrent use: it holds no lock.
type selfTelemetry struct {
	tb      *metadata.TelemetryBuilder
	sampled *zap.Logger
	window  time.Duration

	// Attribute options built once: passing a fresh option to Add allocates.
	acceptAttrs  telemetryattrs.Enum[acceptKind]
	ignoreAttrs  telemetryattrs.Enum[ignoreReason]
	evictAttrs   telemetryattrs.Enum[evictReason]
	emitAttrs    telemetryattrs.Enum[emitTrigger]
	linkAttrs    telemetryattrs.Enum[linkReason]
	refusedAttrs telemetryattrs.Enum[refusedReason]
	persistAttrs telemetryattrs.Enum[persistOp]
	ruleAttrs    telemetryattrs.Enum[int]
	lateAttrs    []metric.AddOption
	spanStore    []metric.AddOption
	problemStore []metric.AddOption
}

func newSelfTelemetry(set component.TelemetrySettings, cfg *Config) (*selfTelemetry, error) {
	tb, err := metadata.NewTelemetryBuilder(set)
	if err != nil {
		return nil, err
	}
	ruleNames := make([]string, len(cfg.Thresholds))
	for i, r := range cfg.Thresholds {
		ruleNames[i] = r.Name
	}
	return &selfTelemetry{
		tb:           tb,
		sampled:      ratelog.Sampled(set.Logger),
		window:       cfg.Window,
		acceptAttrs:  telemetryattrs.NewEnum[acceptKind]("kind", acceptKindNames[:]),
		ignoreAttrs:  telemetryattrs.NewEnum[ignoreReason]("reason", ignoreReasonNames[:]),
		evictAttrs:   telemetryattrs.NewEnum[evictReason]("reason", evictReasonNames[:]),
		emitAttrs:    telemetryattrs.NewEnum[emitTrigger]("trigger", emitTriggerNames[:]),
		linkAttrs:    telemetryattrs.NewEnum[linkReason]("reason", linkReasonNames[:]),
		refusedAttrs: telemetryattrs.NewEnum[refusedReason]("reason", refusedReasonNames[:]),
		persistAttrs: telemetryattrs.NewEnum[persistOp]("operation", persistOpNames[:]),
		ruleAttrs:    telemetryattrs.NewEnum[int]("rule", ruleNames),
		lateAttrs:    telemetryattrs.One("reason", "late"),
		spanStore:    telemetryattrs.One("store", "spans"),
		problemStore: telemetryattrs.One("store", "problem_events"),
	}, nil
}

func (s *selfTelemetry) shutdown() { s.tb.Shutdown() }

// refused counts records no downstream consumer took.
func (s *selfTelemetry) refused(ctx context.Context, n int64, reason refusedReason, err error) {
	s.tb.ConnectorCorrelationRecordsRefused.Add(ctx, n, s.refusedAttrs.Options(reason)...)
	switch reason {
	case refusedNoOutput:
		s.sampled.Warn("correlation records dropped: no logs pipeline is attached (counted in otelcol_connector_correlation_records_refused)", zap.Int64("records", n))
	default:
		s.sampled.Warn("the next consumer refused correlation records (counted in otelcol_connector_correlation_records_refused)", zap.Error(err), zap.Int64("records", n))
	}
}

// restored counts the problem events replayed from the write-ahead log at start.
func (s *selfTelemetry) restored(ctx context.Context, n int64) {
	if n > 0 {
		s.tb.ConnectorCorrelationEventsRestored.Add(ctx, n)
	}
}

// persistenceFailed counts a failed write-ahead log operation and logs it at a sane rate.
func (s *selfTelemetry) persistenceFailed(ctx context.Context, op persistOp, err error) {
	s.tb.ConnectorCorrelationPersistenceErrors.Add(ctx, 1, s.persistAttrs.Options(op)...)
	if op == persistWrite {
		s.sampled.Error("correlation state could not be persisted: the Consume call fails so that the sender retries (counted in otelcol_connector_correlation_persistence_errors)", zap.Error(err))
	} else if op != persistDecode {
		s.sampled.Warn("write-ahead log of the correlation state: storage operation failed (counted in otelcol_connector_correlation_persistence_errors)", zap.String("operation", persistOpNames[op]), zap.Error(err))
	}
}

func (s *selfTelemetry) report(ctx context.Context, t *tally) {
	tb := s.tb
	s.acceptAttrs.AddEach(ctx, tb.ConnectorCorrelationEventsAccepted, t.accepted[:])
	if s.ignoreAttrs.AddEach(ctx, tb.ConnectorCorrelationRecordsIgnored, t.ignored[:]) > 0 {
		if ce := s.sampled.Check(zapcore.DebugLevel, "log records that are not usable UnifiedEvents ignored (counted in otelcol_connector_correlation_records_ignored)"); ce != nil {
			ce.Write(s.ignoreAttrs.Fields(t.ignored[:])...)
		}
	}
	if t.late > 0 {
		tb.ConnectorCorrelationEventsDropped.Add(ctx, t.late, s.lateAttrs...)
		s.sampled.Info("events older than the correlation window dropped (counted in otelcol_connector_correlation_events_dropped)",
			zap.Int64("events", t.late), zap.Duration("window", s.window))
	}
	if s.evictAttrs.AddEach(ctx, tb.ConnectorCorrelationEvictions, t.evicted[:]) > 0 {
		if ce := s.sampled.Check(zapcore.WarnLevel, "correlation state reached a cap and evicted the oldest (counted in otelcol_connector_correlation_evictions)"); ce != nil {
			ce.Write(s.evictAttrs.Fields(t.evicted[:])...)
		}
	}
	if t.spansHeld != 0 {
		tb.ConnectorCorrelationEventsInState.Add(ctx, t.spansHeld, s.spanStore...)
	}
	if t.problems != 0 {
		tb.ConnectorCorrelationEventsInState.Add(ctx, t.problems, s.problemStore...)
	}
	if t.openDelta != 0 {
		tb.ConnectorCorrelationIncidentsOpen.Add(ctx, t.openDelta)
	}
	s.emitAttrs.AddEach(ctx, tb.ConnectorCorrelationIncidentsEmitted, t.emitted[:])
	s.linkAttrs.AddEach(ctx, tb.ConnectorCorrelationLinks, t.links[:])
	for name, n := range t.withoutConsequence {
		tb.ConnectorCorrelationEventsWithoutConsequence.Add(ctx, n, metric.WithAttributeSet(attribute.NewSet(attribute.String("event_name", string(name)))))
	}
	for rule, n := range t.breaches {
		tb.ConnectorCorrelationThresholdBreaches.Add(ctx, n, s.ruleAttrs.Options(rule)...)
	}
}
