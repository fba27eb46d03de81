package correlationconnector

import (
	"context"
	"runtime"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/consumer"

	"github.com/yairfalse/tapio/connector/correlationconnector/internal/metadata"
	"github.com/yairfalse/tapio/internal/sharedcomponent"
	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

// NewFactory returns the factory of the correlation connector.
func NewFactory() connector.Factory {
	return connector.NewFactory(
		metadata.Type,
		createDefaultConfig,
		connector.WithTracesToLogs(createTracesToLogs, metadata.TracesToLogsStability),
		connector.WithLogsToLogs(createLogsToLogs, metadata.LogsToLogsStability),
		connector.WithMetricsToLogs(createMetricsToLogs, metadata.MetricsToLogsStability),
	)
}

func createDefaultConfig() component.Config {
	return &Config{
		Window:               2 * time.Minute,
		DecisionWait:         5 * time.Second,
		MaxUpdateInterval:    30 * time.Second,
		IncidentTimeout:      5 * time.Minute,
		ClockSkew:            2 * time.Second,
		FlushInterval:        time.Second,
		MaxEvents:            1_000_000,
		MaxEventsPerIncident: 1_000,
		MaxIncidents:         10_000,
		MaxPeers:             100_000,
		PeerTTL:              24 * time.Hour,
		MaxMetricSeries:      10_000,
		Shards:               runtime.GOMAXPROCS(0),
		Incidents: IncidentPolicy{
			ConsequenceLayers:   []string{"trace", "application", "kubernetes"},
			SeriousAlone:        []string{string(unifiedevent.OOMKill)},
			ServingCrashSignals: []string{"SIGSEGV", "SIGABRT", "SIGBUS", "SIGILL", "SIGFPE"},
			RecoveryDelay:       2 * time.Second,
		},
		Links: LinkConfidences{
			Trace:      1.0,
			Kubernetes: 0.95,
			Entity:     0.9,
			Peer:       0.8,
			Service:    0.6,
			Host:       0.5,
		},
	}
}

// correlators shares one state among the traces, logs and metrics pipelines of a component id.
var correlators = sharedcomponent.NewMap[component.ID, *correlator]()

func acquire(set connector.Settings, cfg component.Config, next consumer.Logs) (*signalConnector, error) {
	shared, err := correlators.Acquire(set.ID, func() (*correlator, error) {
		c, err := newCorrelator(set.TelemetrySettings, cfg.(*Config), systemClock{})
		if err != nil {
			return nil, err
		}
		c.id = set.ID
		c.useTicker = true
		return c, nil
	})
	if err != nil {
		return nil, err
	}
	return newSignalConnector(shared, next), nil
}

func createTracesToLogs(_ context.Context, set connector.Settings, cfg component.Config, next consumer.Logs) (connector.Traces, error) {
	return acquire(set, cfg, next)
}

func createLogsToLogs(_ context.Context, set connector.Settings, cfg component.Config, next consumer.Logs) (connector.Logs, error) {
	return acquire(set, cfg, next)
}

func createMetricsToLogs(_ context.Context, set connector.Settings, cfg component.Config, next consumer.Logs) (connector.Metrics, error) {
	return acquire(set, cfg, next)
}
