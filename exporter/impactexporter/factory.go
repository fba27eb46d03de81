package impactexporter

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/yairfalse/tapio/exporter/impactexporter/internal/metadata"
	"github.com/yairfalse/tapio/pkg/impactapi"
)

// DefaultEndpoint is where the API listens unless configured: loopback only.
const DefaultEndpoint = "127.0.0.1:8765"

// NewFactory returns the factory of the impact exporter.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(
		metadata.Type,
		createDefaultConfig,
		exporter.WithLogs(createLogsExporter, metadata.LogsStability),
	)
}

func createDefaultConfig() component.Config {
	server := confighttp.NewDefaultServerConfig()
	server.NetAddr.Endpoint = DefaultEndpoint
	// The stream endpoint lifts the write deadline for its own responses.
	server.WriteTimeout = 30 * time.Second

	webhook := confighttp.NewDefaultClientConfig()
	webhook.Timeout = 10 * time.Second
	// The collector's exponential backoff (×1.5, ±50 % jitter, up to 30 s), from 1 s as the
	// schedule before retry_on_failure, given up after a minute: one worker delivers, so a
	// notification retried for longer holds up the ones queued behind it.
	webhookRetry := configretry.NewDefaultBackOffConfig()
	webhookRetry.InitialInterval = time.Second
	webhookRetry.MaxElapsedTime = time.Minute

	return &Config{
		HTTP: server,
		Storage: StorageConfig{
			Directory:          "tapio-data",
			Retention:          7 * 24 * time.Hour,
			MaxIncidents:       100_000,
			MaxSizeMiB:         1024,
			RetentionInterval:  time.Minute,
			OpenTimeout:        time.Second,
			MaxDependencyEdges: 10000,
		},
		Impact: ImpactConfig{
			SeverityThresholds: SeverityThresholds{Medium: 0.25, High: 0.5, Critical: 0.75},
		},
		Notifications: NotificationsConfig{
			Webhook: WebhookConfig{
				ClientConfig:   webhook,
				MinSeverity:    impactapi.SeverityLow,
				QueueSize:      1000,
				RetryOnFailure: webhookRetry,
			},
			LogSummary: LogSummaryConfig{Enabled: false, MinSeverity: impactapi.SeverityHigh},
		},
		QueueConfig: configoptional.Some(exporterhelper.NewDefaultQueueConfig()),
	}
}

func createLogsExporter(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Logs, error) {
	e, err := newImpactExporter(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	return exporterhelper.NewLogs(ctx, set, cfg, e.consumeLogs,
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		exporterhelper.WithQueue(cfg.(*Config).QueueConfig),
		exporterhelper.WithStart(e.start),
		exporterhelper.WithShutdown(e.shutdown))
}
