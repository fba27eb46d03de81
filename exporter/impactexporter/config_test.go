package impactexporter

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/confmap/xconfmap"

	"github.com/yairfalse/tapio/exporter/impactexporter/internal/metadata"
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
		id      component.ID
		check   func(t *testing.T, cfg *Config)
		wantErr string
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
			if wh.Endpoint != "https://hooks.example.com/tapio" || wh.MinSeverity != "HIGH" || wh.MaxAttempts != 3 || wh.QueueSize != 1000 {
				t.Errorf("webhook = %+v", wh)
			}
			if !cfg.Notifications.LogSummary.Enabled || cfg.Notifications.LogSummary.MinSeverity != "HIGH" {
				t.Errorf("log summary = %+v", cfg.Notifications.LogSummary)
			}
		}},
		{id: component.NewIDWithName(metadata.Type, "revenue_without_routes"), wantErr: "value_per_transaction needs impact.transactions.routes"},
		{id: component.NewIDWithName(metadata.Type, "bad_slo"), wantErr: "impact.slos[0].availability must be in (0, 1), got 99.9"},
		{id: component.NewIDWithName(metadata.Type, "bad_severity"), wantErr: `notifications.webhook.min_severity must be LOW, MEDIUM, HIGH or CRITICAL, got "urgent"`},
		{id: component.NewIDWithName(metadata.Type, "no_retention"), wantErr: "storage.retention must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			if err != nil {
				t.Fatal(err)
			}
			if err := sub.Unmarshal(cfg); err != nil {
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
