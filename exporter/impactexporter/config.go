package impactexporter

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/confmap"
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
	// MaxIncidents bounds the stored incidents: past it, the least recently updated are evicted.
	MaxIncidents int `mapstructure:"max_incidents"`
	// MaxSizeMiB bounds the record bytes of the stored incidents (each one's JSON, metadata and
	// index keys, as the exporter counts them): past it, the least recently updated are evicted.
	// The file is larger by bbolt's page overhead, and does not shrink: freed pages are reused.
	MaxSizeMiB int64 `mapstructure:"max_size_mib"`
	// RetentionInterval is how often expired incidents are deleted.
	RetentionInterval time.Duration `mapstructure:"retention_interval"`
	// OpenTimeout bounds the wait for the file lock, so a second collector on the same directory
	// fails at start instead of hanging.
	OpenTimeout time.Duration `mapstructure:"open_timeout"`
	// MaxDependencyEdges bounds the observed service-dependency graph used for cascade risk.
	MaxDependencyEdges int `mapstructure:"max_dependency_edges"`
}

// maxSizeMiBLimit is the largest storage.max_size_mib: well past what one bbolt file mapped
// into the collector should hold, and far from overflowing the byte count.
const maxSizeMiBLimit = 1 << 20

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
	MinSeverity impactapi.Severity `mapstructure:"min_severity"`
	// QueueSize bounds the notifications waiting for delivery; more are dropped and counted.
	QueueSize int `mapstructure:"queue_size"`
	// RetryOnFailure retries a delivery that failed with a network error, 408, 429 or 5xx, with
	// exponential backoff, until max_elapsed_time has passed since the first attempt; then the
	// notification is given up and counted. Disabled, each notification is tried once.
	RetryOnFailure configretry.BackOffConfig `mapstructure:"retry_on_failure"`

	// Deprecated: MaxAttempts, InitialInterval and MaxInterval are the retry schedule before
	// retry_on_failure (at most max_attempts attempts, the delay doubling without jitter from
	// initial_interval up to max_interval). For one release a configuration that sets any of
	// them keeps that schedule, expressed as retry_on_failure (see retryOnFailure), and a warning
	// names the key to use instead.
	MaxAttempts     *int           `mapstructure:"max_attempts"`
	InitialInterval *time.Duration `mapstructure:"initial_interval"`
	MaxInterval     *time.Duration `mapstructure:"max_interval"`

	// retryOnFailureSet records that the configuration sets retry_on_failure (Config.Unmarshal):
	// it cannot be combined with the deprecated keys.
	retryOnFailureSet bool
}

// Defaults of the deprecated retry schedule, for the keys a configuration leaves out.
const (
	legacyMaxAttempts     = 5
	legacyInitialInterval = time.Second
	legacyMaxInterval     = 30 * time.Second
)

// deprecatedRetryKey is a webhook key of the retry schedule before retry_on_failure, and the
// retry_on_failure key that replaces it.
type deprecatedRetryKey struct {
	key, replacement string
	set              func(*WebhookConfig) bool
}

var deprecatedRetryKeys = []deprecatedRetryKey{
	{"max_attempts", "retry_on_failure.max_elapsed_time", func(c *WebhookConfig) bool { return c.MaxAttempts != nil }},
	{"initial_interval", "retry_on_failure.initial_interval", func(c *WebhookConfig) bool { return c.InitialInterval != nil }},
	{"max_interval", "retry_on_failure.max_interval", func(c *WebhookConfig) bool { return c.MaxInterval != nil }},
}

// Unmarshal decodes the configuration and notes whether it sets the webhook's retry_on_failure,
// which the defaults alone cannot tell.
func (cfg *Config) Unmarshal(conf *confmap.Conf) error {
	if err := conf.Unmarshal(cfg); err != nil {
		return err
	}
	cfg.Notifications.Webhook.retryOnFailureSet = conf.IsSet("notifications::webhook::retry_on_failure")
	return nil
}

// deprecatedKeys are the deprecated retry keys the configuration sets.
func (cfg *WebhookConfig) deprecatedKeys() []deprecatedRetryKey {
	var keys []deprecatedRetryKey
	for _, k := range deprecatedRetryKeys {
		if k.set(cfg) {
			keys = append(keys, k)
		}
	}
	return keys
}

// retryOnFailure is the retry schedule in effect: retry_on_failure, or the deprecated keys'
// schedule expressed as retry_on_failure when the configuration sets any of them.
func (cfg *WebhookConfig) retryOnFailure() configretry.BackOffConfig {
	if len(cfg.deprecatedKeys()) == 0 {
		return cfg.RetryOnFailure
	}
	return legacyRetry(cfg.legacySchedule())
}

// legacySchedule is the deprecated keys' schedule, with their defaults for the keys left out.
func (cfg *WebhookConfig) legacySchedule() (attempts int, initial, maxInterval time.Duration) {
	attempts, initial, maxInterval = legacyMaxAttempts, legacyInitialInterval, legacyMaxInterval
	if cfg.MaxAttempts != nil {
		attempts = *cfg.MaxAttempts
	}
	if cfg.InitialInterval != nil {
		initial = *cfg.InitialInterval
	}
	if cfg.MaxInterval != nil {
		maxInterval = *cfg.MaxInterval
	}
	return attempts, initial, maxInterval
}

// legacyRetry expresses "at most attempts attempts, the delay doubling without jitter from
// initial up to maxInterval" as a backoff. The time budget is the attempts−1 delays plus half of
// the next one: the last retry starts within it and another would not, as long as the attempts
// themselves take less than half that next delay in all.
func legacyRetry(attempts int, initial, maxInterval time.Duration) configretry.BackOffConfig {
	r := configretry.BackOffConfig{InitialInterval: initial, Multiplier: 2, MaxInterval: maxInterval}
	if attempts <= 1 {
		return r // one attempt: no retries
	}
	r.Enabled = true
	var budget time.Duration
	delay := initial
	for range attempts - 1 {
		budget += delay
		delay = min(2*delay, maxInterval)
	}
	r.MaxElapsedTime = budget + delay/2
	// retry_on_failure requires max_elapsed_time ≥ max_interval; no delay within the budget is
	// longer than the budget, so the cap changes none of them.
	r.MaxInterval = min(maxInterval, r.MaxElapsedTime)
	return r
}

// describeRetry spells a schedule in configuration terms, for the deprecation warning.
func describeRetry(r configretry.BackOffConfig) string {
	if !r.Enabled {
		return "retry_on_failure: {enabled: false}"
	}
	return fmt.Sprintf("retry_on_failure: {initial_interval: %s, multiplier: %g, randomization_factor: %g, max_interval: %s, max_elapsed_time: %s}",
		r.InitialInterval, r.Multiplier, r.RandomizationFactor, r.MaxInterval, r.MaxElapsedTime)
}

// LogSummaryConfig configures the human summary in the collector log.
type LogSummaryConfig struct {
	Enabled     bool               `mapstructure:"enabled"`
	MinSeverity impactapi.Severity `mapstructure:"min_severity"`
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
	if cfg.Storage.MaxIncidents <= 0 {
		add("storage.max_incidents must be positive, got %d: it bounds the incidents kept on disk", cfg.Storage.MaxIncidents)
	}
	switch mib := cfg.Storage.MaxSizeMiB; {
	case mib <= 0:
		add("storage.max_size_mib must be a positive whole number of MiB, got %d: it bounds the incident records kept on disk", mib)
	case mib > maxSizeMiBLimit:
		add("storage.max_size_mib must be at most %d (1 TiB), got %d", maxSizeMiBLimit, mib)
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
		if u, err := url.Parse(wh.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("notifications.webhook.endpoint must be an http:// or https:// URL, got %q", wh.Endpoint)
		}
		if wh.QueueSize <= 0 {
			add("notifications.webhook.queue_size must be positive")
		}
	}
	if deprecated := wh.deprecatedKeys(); len(deprecated) > 0 {
		for _, k := range deprecated {
			if wh.retryOnFailureSet {
				add("notifications.webhook.%s is deprecated and cannot be combined with notifications.webhook.retry_on_failure: set notifications.webhook.%s instead", k.key, k.replacement)
			}
		}
		attempts, initial, maxInterval := wh.legacySchedule()
		if attempts <= 0 {
			add("notifications.webhook.max_attempts must be positive, got %d", attempts)
		}
		if initial <= 0 || maxInterval < initial {
			add("notifications.webhook needs 0 < initial_interval ≤ max_interval, got %s and %s", initial, maxInterval)
		}
	}
	// The configuration decoder refuses other names; this catches configurations built in code.
	if wh.MinSeverity.Rank() == 0 {
		add("notifications.webhook.min_severity must be LOW, MEDIUM, HIGH or CRITICAL, got %q", wh.MinSeverity)
	}
	if ls := cfg.Notifications.LogSummary; ls.MinSeverity.Rank() == 0 {
		add("notifications.log_summary.min_severity must be LOW, MEDIUM, HIGH or CRITICAL, got %q", ls.MinSeverity)
	}
	return errors.Join(errs...)
}
