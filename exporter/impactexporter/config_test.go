package impactexporter

import (
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v5"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/confmap/xconfmap"

	"github.com/yairfalse/tapio/exporter/impactexporter/internal/metadata"
	"github.com/yairfalse/tapio/pkg/impactapi"
)

func TestConfigStruct(t *testing.T) {
	if err := componenttest.CheckConfigStruct(createDefaultConfig()); err != nil {
		t.Fatal(err)
	}
}

func TestDefaultConfig(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	if cfg.HTTP.NetAddr.Endpoint != "127.0.0.1:8765" || cfg.Storage.Retention != 7*24*time.Hour {
		t.Fatalf("defaults: endpoint %s, retention %s", cfg.HTTP.NetAddr.Endpoint, cfg.Storage.Retention)
	}
	// The disk is bounded out of the box, by count and by bytes.
	if cfg.Storage.MaxIncidents != 100_000 || cfg.Storage.MaxSizeMiB != 1024 {
		t.Fatalf("defaults: max_incidents %d, max_size_mib %d", cfg.Storage.MaxIncidents, cfg.Storage.MaxSizeMiB)
	}
	if err := xconfmap.Validate(cfg); err != nil {
		t.Fatalf("default config is invalid: %v", err)
	}
}

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		id            component.ID
		check         func(t *testing.T, cfg *Config)
		wantDecodeErr string // the configuration decoder refuses it
		wantErr       string // Validate refuses it
	}{
		{id: component.NewID(metadata.Type), check: func(t *testing.T, cfg *Config) {
			if !reflect.DeepEqual(cfg, createDefaultConfig()) {
				t.Fatalf("empty section differs from the defaults: %+v", cfg)
			}
		}},
		{id: component.NewIDWithName(metadata.Type, "custom"), check: func(t *testing.T, cfg *Config) {
			if cfg.HTTP.NetAddr.Endpoint != "0.0.0.0:9876" || !cfg.HTTP.Auth.HasValue() ||
				cfg.HTTP.Auth.Get().AuthenticatorID.String() != "bearertokenauth" {
				t.Errorf("http = %+v", cfg.HTTP)
			}
			if cfg.Storage.Directory != "/var/lib/otelcol/tapio" || cfg.Storage.Retention != 72*time.Hour || cfg.Storage.RetentionInterval != time.Minute {
				t.Errorf("storage = %+v", cfg.Storage)
			}
			want := ImpactConfig{
				CustomerFacing: CustomerFacingConfig{Services: []string{"checkout", "frontend"}, Routes: []string{"/api/checkout"}},
				Transactions: TransactionsConfig{Routes: []RouteMatch{{Service: "checkout", Route: "/api/checkout"}},
					ValuePerTransaction: 42.5, Currency: "EUR"},
				SLOs:               []SLOConfig{{Service: "checkout", Availability: 0.999, Latency: 0.99, Window: 720 * time.Hour, ExpectedRequests: 1e6}},
				SeverityThresholds: SeverityThresholds{Medium: 0.25, High: 0.5, Critical: 0.75},
			}
			if !reflect.DeepEqual(cfg.Impact, want) {
				t.Errorf("impact = %+v\nwant     %+v", cfg.Impact, want)
			}
			wh := cfg.Notifications.Webhook
			if wh.Endpoint != "https://hooks.example.com/tapio" || wh.MinSeverity != impactapi.SeverityHigh || wh.QueueSize != 1000 {
				t.Errorf("webhook = %+v", wh)
			}
			retry := configretry.NewDefaultBackOffConfig()
			retry.InitialInterval, retry.MaxElapsedTime = 2*time.Second, 2*time.Minute
			if wh.retryOnFailure() != retry || len(wh.deprecatedKeys()) != 0 {
				t.Errorf("retry_on_failure = %+v, want %+v", wh.retryOnFailure(), retry)
			}
			if !cfg.Notifications.LogSummary.Enabled || cfg.Notifications.LogSummary.MinSeverity != "HIGH" {
				t.Errorf("log summary = %+v", cfg.Notifications.LogSummary)
			}
		}},
		{id: component.NewIDWithName(metadata.Type, "revenue_without_routes"), wantErr: "value_per_transaction needs impact.transactions.routes"},
		{id: component.NewIDWithName(metadata.Type, "bad_slo"), wantErr: "impact.slos[0].availability must be in (0, 1), got 99.9"},
		{id: component.NewIDWithName(metadata.Type, "bad_severity"), wantDecodeErr: `'notifications.webhook.min_severity' severity "urgent" is not one of LOW, MEDIUM, HIGH, CRITICAL`},
		{id: component.NewIDWithName(metadata.Type, "bad_log_severity"), wantDecodeErr: `'notifications.log_summary.min_severity' expected type 'impactapi.Severity', got unconvertible type 'int'`},
		{id: component.NewIDWithName(metadata.Type, "bad_retry"), wantErr: "notifications::webhook::retry_on_failure: 'randomization_factor' must be within [0, 1]"},
		{id: component.NewIDWithName(metadata.Type, "deprecated_retry"), check: func(t *testing.T, cfg *Config) {
			wh := cfg.Notifications.Webhook
			keys := []string{}
			for _, k := range wh.deprecatedKeys() {
				keys = append(keys, k.key+" → "+k.replacement)
			}
			if want := []string{"max_attempts → retry_on_failure.max_elapsed_time", "initial_interval → retry_on_failure.initial_interval"}; !reflect.DeepEqual(keys, want) {
				t.Errorf("deprecated keys %q, want %q", keys, want)
			}
			// Three attempts, 2 s then 4 s apart, no jitter: a budget of 6 s plus half the next delay.
			want := configretry.BackOffConfig{Enabled: true, InitialInterval: 2 * time.Second, Multiplier: 2,
				MaxInterval: 10 * time.Second, MaxElapsedTime: 10 * time.Second}
			if got := wh.retryOnFailure(); got != want {
				t.Errorf("read as %+v, want %+v", got, want)
			}
		}},
		{id: component.NewIDWithName(metadata.Type, "deprecated_and_retry_on_failure"), wantErr: "notifications.webhook.max_attempts is deprecated and cannot be combined with notifications.webhook.retry_on_failure: set notifications.webhook.retry_on_failure.max_elapsed_time instead\n" +
			"notifications.webhook.max_interval is deprecated and cannot be combined with notifications.webhook.retry_on_failure: set notifications.webhook.retry_on_failure.max_interval instead"},
		{id: component.NewIDWithName(metadata.Type, "deprecated_bad_attempts"), wantErr: "notifications.webhook.max_attempts must be positive, got 0"},
		{id: component.NewIDWithName(metadata.Type, "no_retention"), wantErr: "storage.retention must be positive"},
		{id: component.NewIDWithName(metadata.Type, "caps"), check: func(t *testing.T, cfg *Config) {
			if cfg.Storage.MaxIncidents != 5000 || cfg.Storage.MaxSizeMiB != 256 {
				t.Errorf("storage = %+v", cfg.Storage)
			}
			if c := capsOf(cfg.Storage); c.maxIncidents != 5000 || c.maxBytes != 256<<20 {
				t.Errorf("caps = %+v", c)
			}
		}},
		{id: component.NewIDWithName(metadata.Type, "no_max_incidents"), wantErr: "storage.max_incidents must be positive, got 0: it bounds the incidents kept on disk"},
		{id: component.NewIDWithName(metadata.Type, "negative_max_size"), wantErr: "storage.max_size_mib must be a positive whole number of MiB, got -1: it bounds the incident records kept on disk"},
		{id: component.NewIDWithName(metadata.Type, "huge_max_size"), wantErr: "storage.max_size_mib must be at most 1048576 (1 TiB), got 2097152"},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			if err != nil {
				t.Fatal(err)
			}
			err = sub.Unmarshal(cfg)
			if tt.wantDecodeErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantDecodeErr) {
					t.Fatalf("Unmarshal() = %v, want an error containing %q", err, tt.wantDecodeErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			err = xconfmap.Validate(cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Validate() = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, cfg.(*Config))
		})
	}
}

// legacyRetry reproduces the deprecated schedule when attempts take no time: attempts attempts,
// the delays doubling without jitter from initial up to maxInterval. The replay stops as
// backoff.Retry does, before a delay that would end past max_elapsed_time.
func TestLegacyRetryKeepsTheSchedule(t *testing.T) {
	for _, tc := range []struct {
		attempts          int
		initial, interval time.Duration
	}{
		{1, time.Second, 30 * time.Second},
		{2, time.Second, 30 * time.Second},
		{5, time.Second, 30 * time.Second}, // the deprecated defaults
		{8, time.Second, 10 * time.Second}, // capped from the fifth delay on
		{4, 2 * time.Second, 2 * time.Second},
	} {
		r := legacyRetry(tc.attempts, tc.initial, tc.interval)
		if err := r.Validate(); err != nil {
			t.Errorf("%+v: %v", tc, err)
		}
		if r.Enabled != (tc.attempts > 1) {
			t.Errorf("%+v: enabled = %v", tc, r.Enabled)
		}
		var want []time.Duration
		for d := tc.initial; len(want) < tc.attempts-1; d = min(2*d, tc.interval) {
			want = append(want, d)
		}
		var got []time.Duration
		b := &backoff.ExponentialBackOff{InitialInterval: r.InitialInterval, RandomizationFactor: r.RandomizationFactor,
			Multiplier: r.Multiplier, MaxInterval: r.MaxInterval}
		b.Reset()
		for elapsed := time.Duration(0); r.Enabled; {
			next := b.NextBackOff()
			if elapsed+next > r.MaxElapsedTime {
				break
			}
			got = append(got, next)
			elapsed += next
		}
		if !slices.Equal(got, want) {
			t.Errorf("%+v: delays %v, want %v", tc, got, want)
		}
	}
}

func TestWebhookEndpointMustBeAnHTTPURL(t *testing.T) {
	for endpoint, ok := range map[string]bool{
		"https://hooks.example.com/tapio": true,
		"http://127.0.0.1:9000":           true,
		"https://":                        false,
		"ftp://hooks.example.com":         false,
		"hooks.example.com/tapio":         false,
		"http://[::1":                     false,
	} {
		cfg := createDefaultConfig().(*Config)
		cfg.Notifications.Webhook.Endpoint = endpoint
		err := xconfmap.Validate(cfg)
		if ok != (err == nil) {
			t.Errorf("%q: Validate() = %v", endpoint, err)
		}
		if !ok && err != nil && !strings.Contains(err.Error(), "notifications.webhook.endpoint must be an http:// or https:// URL, got "+strconv.Quote(endpoint)) {
			t.Errorf("%q: %v", endpoint, err)
		}
	}
}
