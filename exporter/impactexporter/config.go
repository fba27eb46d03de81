package impactexporter

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/yairfalse/tapio/pkg/impactapi"
)

// Config configures the impact exporter.
type Config struct {
	// HTTP is the API server: TLS, auth extensions (e.g. bearertokenauth), CORS, timeouts.
	HTTP confighttp.ServerConfig `mapstructure:"http"`
	// Storage is the embedded incident store.
	Storage StorageConfig `mapstructure:"storage"`
	// Impact is what the scoring knows about the business. Every figure it has no configuration
	// for is left out of the incident, never guessed.
	Impact ImpactConfig `mapstructure:"impact"`
	// Notifications are sent for new incidents and for incidents whose severity changed.
	Notifications NotificationsConfig `mapstructure:"notifications"`
	// QueueConfig is the collector's standard sending queue: it decouples the pipeline from the
	// store's disk writes and lets several batches be scored while one is written.
	QueueConfig configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// StorageConfig configures the incident store (an embedded bbolt file).
type StorageConfig struct {
	// Directory holds incidents.db. It is created when missing.
	Directory string `mapstructure:"directory"`
	// Retention deletes incidents not updated for this long.
	Retention time.Duration `mapstructure:"retention"`
	// RetentionInterval is how often expired incidents are deleted.
	RetentionInterval time.Duration `mapstructure:"retention_interval"`
	// OpenTimeout bounds the wait for the file lock, so a second collector on the same directory
	// fails at start instead of hanging.
	OpenTimeout time.Duration `mapstructure:"open_timeout"`
	// MaxDependencyEdges bounds the observed service-dependency graph used for cascade risk.
	MaxDependencyEdges int `mapstructure:"max_dependency_edges"`
}

// ImpactConfig is what the business told Tapio about itself.
type ImpactConfig struct {
	CustomerFacing CustomerFacingConfig `mapstructure:"customer_facing"`
	Transactions   TransactionsConfig   `mapstructure:"transactions"`
	SLOs           []SLOConfig          `mapstructure:"slos"`
	// SeverityThresholds map the score to a severity.
	SeverityThresholds SeverityThresholds `mapstructure:"severity_thresholds"`
}

// CustomerFacingConfig names what customers touch.
type CustomerFacingConfig struct {
	// Services whose involvement makes an incident customer-facing.
	Services []string `mapstructure:"services"`
	// Routes (http.route, any service) whose involvement makes an incident customer-facing.
	Routes []string `mapstructure:"routes"`
}

// TransactionsConfig says which requests are business transactions and what one is worth.
type TransactionsConfig struct {
	// Routes are the transactions: an error span on one of them is a failed transaction.
	Routes []RouteMatch `mapstructure:"routes"`
	// ValuePerTransaction turns failed transactions into revenue at risk; 0 leaves it unset.
	ValuePerTransaction float64 `mapstructure:"value_per_transaction"`
	// Currency of ValuePerTransaction (ISO 4217 code, e.g. EUR).
	Currency string `mapstructure:"currency"`
}

// RouteMatch selects spans by http.route and, optionally, service.name.
type RouteMatch struct {
	Service string `mapstructure:"service"`
	Route   string `mapstructure:"route"`
}

func (m RouteMatch) String() string {
	if m.Service == "" {
		return m.Route
	}
	return m.Service + " " + m.Route
}

// SLOConfig is a service level objective of one service (and optionally one route).
type SLOConfig struct {
	Service string `mapstructure:"service"`
	Route   string `mapstructure:"route"`
	// Availability target, e.g. 0.999: failed requests (server_error spans) burn its budget.
	Availability float64 `mapstructure:"availability"`
	// Latency target, e.g. 0.99 of requests within the slow-span threshold configured in the
	// unifiedevent processor: slow_span events burn its budget.
	Latency float64 `mapstructure:"latency"`
	// Window of the objective, e.g. 720h (30 days).
	Window time.Duration `mapstructure:"window"`
	// ExpectedRequests served in one window; sizes the error budget: (1 − target) × this.
	ExpectedRequests float64 `mapstructure:"expected_requests"`
}

// SeverityThresholds are the lowest scores of MEDIUM, HIGH and CRITICAL.
type SeverityThresholds struct {
	Medium   float64 `mapstructure:"medium"`
	High     float64 `mapstructure:"high"`
	Critical float64 `mapstructure:"critical"`
}

// NotificationsConfig configures notifications.
type NotificationsConfig struct {
	Webhook WebhookConfig `mapstructure:"webhook"`
	// LogSummary writes a human summary of new and changed incidents to the collector log.
	LogSummary LogSummaryConfig `mapstructure:"log_summary"`
}

// WebhookConfig is a generic JSON webhook; it is off while endpoint is empty.
type WebhookConfig struct {
	confighttp.ClientConfig `mapstructure:",squash"`
	// MinSeverity is the lowest severity notified.
	MinSeverity string `mapstructure:"min_severity"`
	// QueueSize bounds the notifications waiting for delivery; more are dropped and counted.
	QueueSize int `mapstructure:"queue_size"`
	// MaxAttempts is how many times one notification is tried before it is given up and counted.
	MaxAttempts int `mapstructure:"max_attempts"`
	// InitialInterval is the first retry delay; it doubles up to MaxInterval.
	InitialInterval time.Duration `mapstructure:"initial_interval"`
	MaxInterval     time.Duration `mapstructure:"max_interval"`
}

// LogSummaryConfig configures the human summary in the collector log.
type LogSummaryConfig struct {
	Enabled     bool   `mapstructure:"enabled"`
	MinSeverity string `mapstructure:"min_severity"`
}

// Validate checks the configuration.
func (cfg *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if cfg.Storage.Directory == "" {
		add("storage.directory must be set")
	}
	if cfg.Storage.Retention <= 0 {
		add("storage.retention must be positive, got %s", cfg.Storage.Retention)
	}
	if cfg.Storage.RetentionInterval <= 0 {
		add("storage.retention_interval must be positive, got %s", cfg.Storage.RetentionInterval)
	}
	if cfg.Storage.OpenTimeout <= 0 {
		add("storage.open_timeout must be positive, got %s", cfg.Storage.OpenTimeout)
	}
	if cfg.Storage.MaxDependencyEdges <= 0 {
		add("storage.max_dependency_edges must be positive, got %d", cfg.Storage.MaxDependencyEdges)
	}

	im := cfg.Impact
	for i, s := range im.CustomerFacing.Services {
		if strings.TrimSpace(s) == "" {
			add("impact.customer_facing.services[%d] is empty", i)
		}
	}
	for i, r := range im.CustomerFacing.Routes {
		if strings.TrimSpace(r) == "" {
			add("impact.customer_facing.routes[%d] is empty", i)
		}
	}
	for i, r := range im.Transactions.Routes {
		if r.Route == "" {
			add("impact.transactions.routes[%d].route must be set", i)
		}
	}
	tx := im.Transactions
	if tx.ValuePerTransaction < 0 {
		add("impact.transactions.value_per_transaction must not be negative, got %g", tx.ValuePerTransaction)
	}
	if tx.ValuePerTransaction > 0 {
		if len(tx.Routes) == 0 {
			add("impact.transactions.value_per_transaction needs impact.transactions.routes: revenue at risk is failed transactions × value")
		}
		if tx.Currency == "" {
			add("impact.transactions.currency must be set with value_per_transaction")
		}
	}
	for i, s := range im.SLOs {
		if s.Service == "" {
			add("impact.slos[%d].service must be set", i)
		}
		if s.Availability == 0 && s.Latency == 0 {
			add("impact.slos[%d] needs an availability or a latency target", i)
		}
		for _, t := range []struct {
			name string
			v    float64
		}{{"availability", s.Availability}, {"latency", s.Latency}} {
			if t.v != 0 && (t.v <= 0 || t.v >= 1) {
				add("impact.slos[%d].%s must be in (0, 1), got %g", i, t.name, t.v)
			}
		}
		if s.Window <= 0 {
			add("impact.slos[%d].window must be positive", i)
		}
		if s.ExpectedRequests <= 0 {
			add("impact.slos[%d].expected_requests must be positive: it sizes the error budget", i)
		}
	}
	th := im.SeverityThresholds
	if !(0 < th.Medium && th.Medium < th.High && th.High < th.Critical && th.Critical <= 1) {
		add("impact.severity_thresholds must satisfy 0 < medium < high < critical ≤ 1, got %g, %g, %g", th.Medium, th.High, th.Critical)
	}

	wh := cfg.Notifications.Webhook
	if wh.Endpoint != "" {
		if !strings.HasPrefix(wh.Endpoint, "http://") && !strings.HasPrefix(wh.Endpoint, "https://") {
			add("notifications.webhook.endpoint must be an http:// or https:// URL, got %q", wh.Endpoint)
		}
		if wh.QueueSize <= 0 {
			add("notifications.webhook.queue_size must be positive")
		}
		if wh.MaxAttempts <= 0 {
			add("notifications.webhook.max_attempts must be positive")
		}
		if wh.InitialInterval <= 0 || wh.MaxInterval < wh.InitialInterval {
			add("notifications.webhook needs 0 < initial_interval ≤ max_interval")
		}
	}
	if _, ok := impactapi.ParseSeverity(wh.MinSeverity); !ok {
		add("notifications.webhook.min_severity must be LOW, MEDIUM, HIGH or CRITICAL, got %q", wh.MinSeverity)
	}
	if _, ok := impactapi.ParseSeverity(cfg.Notifications.LogSummary.MinSeverity); !ok {
		add("notifications.log_summary.min_severity must be LOW, MEDIUM, HIGH or CRITICAL, got %q", cfg.Notifications.LogSummary.MinSeverity)
	}
	return errors.Join(errs...)
}
