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

// selfTelemetry turns the tally of one Consume call or flush into the connector's instruments
// and its rate-limited log lines. The instruments are safe for concurrent use: it holds no lock.
type selfTelemetry struct {
	tb      *metadata.TelemetryBuilder
	sampled *zap.Logger
	window  time.Duration

	// One-element option slices, built once: passing a fresh variadic option to Add allocates.
	acceptAttrs  [acceptKindCount][]metric.AddOption
	ignoreAttrs  [ignoreReasonCount][]metric.AddOption
	evictAttrs   [evictReasonCount][]metric.AddOption
	emitAttrs    [emitTriggerCount][]metric.AddOption
	linkAttrs    [linkReasonCount][]metric.AddOption
	refusedAttrs [refusedReasonCount][]metric.AddOption
	lateAttrs    []metric.AddOption
	spanStore    []metric.AddOption
	problemStore []metric.AddOption
	ruleAttrs    [][]metric.AddOption
}

func newSelfTelemetry(set component.TelemetrySettings, cfg *Config) (*selfTelemetry, error) {
	tb, err := metadata.NewTelemetryBuilder(set)
	if err != nil {
		return nil, err
	}
	s := &selfTelemetry{tb: tb, sampled: ratelog.Sampled(set.Logger), window: cfg.Window}
	opt := func(key, value string) []metric.AddOption {
		return []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String(key, value)))}
	}
	for k := range acceptKindCount {
		s.acceptAttrs[k] = opt("kind", acceptKindNames[k])
	}
	for r := range ignoreReasonCount {
		s.ignoreAttrs[r] = opt("reason", ignoreReasonNames[r])
	}
	for r := range evictReasonCount {
		s.evictAttrs[r] = opt("reason", evictReasonNames[r])
	}
	for t := range emitTriggerCount {
		s.emitAttrs[t] = opt("trigger", emitTriggerNames[t])
	}
	for r := range linkReasonCount {
		s.linkAttrs[r] = opt("reason", linkReasonNames[r])
	}
	for r := range refusedReasonCount {
		s.refusedAttrs[r] = opt("reason", refusedReasonNames[r])
	}
	s.lateAttrs = opt("reason", "late")
	s.spanStore = opt("store", "spans")
	s.problemStore = opt("store", "problem_events")
	for _, r := range cfg.Thresholds {
		s.ruleAttrs = append(s.ruleAttrs, opt("rule", r.Name))
	}
	return s, nil
}

func (s *selfTelemetry) shutdown() { s.tb.Shutdown() }

// refused counts records no downstream consumer took.
func (s *selfTelemetry) refused(ctx context.Context, n int64, reason refusedReason, err error) {
	s.tb.ConnectorCorrelationRecordsRefused.Add(ctx, n, s.refusedAttrs[reason]...)
	switch reason {
	case refusedNoOutput:
		s.sampled.Warn("correlation records dropped: no logs pipeline is attached (counted in otelcol_connector_correlation_records_refused)", zap.Int64("records", n))
	default:
		s.sampled.Warn("the next consumer refused correlation records (counted in otelcol_connector_correlation_records_refused)", zap.Error(err), zap.Int64("records", n))
	}
}

func (s *selfTelemetry) report(ctx context.Context, t *tally) {
	tb := s.tb
	for k, n := range t.accepted {
		if n > 0 {
			tb.ConnectorCorrelationEventsAccepted.Add(ctx, n, s.acceptAttrs[k]...)
		}
	}
	var ignored int64
	for r, n := range t.ignored {
		if n > 0 {
			tb.ConnectorCorrelationRecordsIgnored.Add(ctx, n, s.ignoreAttrs[r]...)
			ignored += n
		}
	}
	if ignored > 0 {
		if ce := s.sampled.Check(zapcore.DebugLevel, "log records that are not usable UnifiedEvents ignored (counted in otelcol_connector_correlation_records_ignored)"); ce != nil {
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
		tb.ConnectorCorrelationEventsDropped.Add(ctx, t.late, s.lateAttrs...)
		s.sampled.Info("events older than the correlation window dropped (counted in otelcol_connector_correlation_events_dropped)",
			zap.Int64("events", t.late), zap.Duration("window", s.window))
	}
	var evicted int64
	for r, n := range t.evicted {
		if n > 0 {
			tb.ConnectorCorrelationEvictions.Add(ctx, n, s.evictAttrs[r]...)
			evicted += n
		}
	}
	if evicted > 0 {
		if ce := s.sampled.Check(zapcore.WarnLevel, "correlation state reached a cap and evicted the oldest (counted in otelcol_connector_correlation_evictions)"); ce != nil {
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
		tb.ConnectorCorrelationEventsInState.Add(ctx, t.spansHeld, s.spanStore...)
	}
	if t.problems != 0 {
		tb.ConnectorCorrelationEventsInState.Add(ctx, t.problems, s.problemStore...)
	}
	if t.openDelta != 0 {
		tb.ConnectorCorrelationIncidentsOpen.Add(ctx, t.openDelta)
	}
	for trig, n := range t.emitted {
		if n > 0 {
			tb.ConnectorCorrelationIncidentsEmitted.Add(ctx, n, s.emitAttrs[trig]...)
		}
	}
	for r, n := range t.links {
		if n > 0 {
			tb.ConnectorCorrelationLinks.Add(ctx, n, s.linkAttrs[r]...)
		}
	}
	for name, n := range t.withoutConsequence {
		tb.ConnectorCorrelationEventsWithoutConsequence.Add(ctx, n, metric.WithAttributeSet(attribute.NewSet(attribute.String("event_name", string(name)))))
	}
	for rule, n := range t.breaches {
		tb.ConnectorCorrelationThresholdBreaches.Add(ctx, n, s.ruleAttrs[rule]...)
	}
}
