package unifiedeventprocessor

import (
	"context"

	"go.opentelemetry.io/collector/processor"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/yairfalse/tapio/internal/ratelog"
	"github.com/yairfalse/tapio/internal/telemetryattrs"
	"github.com/yairfalse/tapio/pkg/unifiedevent"
	"github.com/yairfalse/tapio/processor/unifiedeventprocessor/internal/metadata"
)

// normalizer holds only configuration and instruments, so one instance serves concurrent
// Consume calls without locks.
type normalizer struct {
	cfg       *Config
	logger    *zap.Logger
	sampled   *zap.Logger
	telemetry *metadata.TelemetryBuilder
	names     nameFilter
	slow      slowThresholds
	version   string

	layerAttrs   telemetryattrs.Enum[unifiedevent.Layer]
	droppedAttrs telemetryattrs.Enum[dropReason]
	invalidAttrs telemetryattrs.Enum[invalidReason]
}

type dropReason uint8

const (
	dropKubernetesNormal dropReason = iota
	dropKubernetesDeleted
	dropExcluded
	dropInvalid
	dropUnmatched
	dropReasonCount
)

var dropReasonNames = [dropReasonCount]string{
	dropKubernetesNormal:  "kubernetes_normal_event",
	dropKubernetesDeleted: "kubernetes_event_deleted",
	dropExcluded:          "excluded",
	dropInvalid:           "invalid",
	dropUnmatched:         "unmatched",
}

type invalidReason uint8

const (
	invalidUnknownName invalidReason = iota
	invalidInconsistentEvent
	invalidKubernetesEvent
	invalidReasonCount
)

var invalidReasonNames = [invalidReasonCount]string{
	invalidUnknownName:       "unknown_event_name",
	invalidInconsistentEvent: "inconsistent_event",
	invalidKubernetesEvent:   "malformed_kubernetes_event",
}

// tally counts one Consume call so that instruments are updated once per batch, not per record.
type tally struct {
	normalized [unifiedevent.LayerCount]int64
	dropped    [dropReasonCount]int64
	invalid    [invalidReasonCount]int64
}

func newNormalizer(set processor.Settings, cfg *Config) (*normalizer, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	n := &normalizer{
		cfg:       cfg,
		logger:    set.Logger,
		telemetry: tb,
		names:     newNameFilter(cfg.Include, cfg.Exclude),
		slow:      newSlowThresholds(cfg.Spans),
		version:   set.BuildInfo.Version,
	}
	n.sampled = ratelog.Sampled(set.Logger)
	layerNames := make([]string, unifiedevent.LayerCount)
	for l := range layerNames {
		layerNames[l] = unifiedevent.Layer(l).String()
	}
	n.layerAttrs = telemetryattrs.NewEnum[unifiedevent.Layer]("layer", layerNames)
	n.droppedAttrs = telemetryattrs.NewEnum[dropReason]("reason", dropReasonNames[:])
	n.invalidAttrs = telemetryattrs.NewEnum[invalidReason]("reason", invalidReasonNames[:])
	return n, nil
}

func (n *normalizer) shutdown(context.Context) error {
	n.telemetry.Shutdown()
	return nil
}

func (n *normalizer) report(ctx context.Context, t *tally) {
	n.layerAttrs.AddEach(ctx, n.telemetry.ProcessorUnifiedeventRecordsNormalized, t.normalized[:])
	n.invalidAttrs.AddEach(ctx, n.telemetry.ProcessorUnifiedeventRecordsInvalid, t.invalid[:])
	if n.droppedAttrs.AddEach(ctx, n.telemetry.ProcessorUnifiedeventRecordsDropped, t.dropped[:]) > 0 {
		if ce := n.sampled.Check(zapcore.InfoLevel, "unifiedevent processor dropped log records by rule (counted in otelcol_processor_unifiedevent_records_dropped)"); ce != nil {
			ce.Write(n.droppedAttrs.Fields(t.dropped[:])...)
		}
	}
}

// noteInvalid counts a record that could not be read as an event and logs why, at a bounded rate.
func (n *normalizer) noteInvalid(t *tally, reason invalidReason, err error) {
	t.invalid[reason]++
	action := "passed on unchanged"
	if n.cfg.OnInvalid == Drop {
		action = "dropped"
		t.dropped[dropInvalid]++
	}
	n.sampled.Warn("invalid event record "+action+" (further ones are counted in otelcol_processor_unifiedevent_records_invalid)",
		zap.String("reason", invalidReasonNames[reason]), zap.Error(err))
}

// nameFilter applies include and exclude; its zero value allows every name.
type nameFilter struct {
	include map[unifiedevent.Name]struct{}
	exclude map[unifiedevent.Name]struct{}
}

func newNameFilter(include, exclude []string) nameFilter {
	var f nameFilter
	if len(include) > 0 {
		f.include = make(map[unifiedevent.Name]struct{}, len(include))
		for _, name := range include {
			f.include[unifiedevent.Name(name)] = struct{}{}
		}
	}
	if len(exclude) > 0 {
		f.exclude = make(map[unifiedevent.Name]struct{}, len(exclude))
		for _, name := range exclude {
			f.exclude[unifiedevent.Name(name)] = struct{}{}
		}
	}
	return f
}

func (f nameFilter) allows(name unifiedevent.Name) bool {
	if f.include != nil {
		if _, ok := f.include[name]; !ok {
			return false
		}
	}
	if f.exclude != nil {
		if _, ok := f.exclude[name]; ok {
			return false
		}
	}
	return true
}
