package correlationconnector

import (
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/confmap/xconfmap"
	"go.uber.org/goleak"

	"github.com/yairfalse/tapio/connector/correlationconnector/internal/metadata"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	custom := defaultConfig()
	custom.Window = 5 * time.Minute
	custom.DecisionWait = 10 * time.Second
	custom.MaxDecisionDelay = time.Minute
	custom.MaxUpdateInterval = 5 * time.Minute
	custom.IncidentTimeout = 15 * time.Minute
	custom.ClockSkew = time.Second
	custom.FlushInterval = 500 * time.Millisecond
	custom.MaxEvents = 200000
	custom.MaxEventsPerIncident = 2000
	custom.MaxIncidents = 500
	custom.MaxPeers = 5000
	custom.PeerTTL = time.Hour
	custom.MaxMetricSeries = 1000
	custom.Shards = 4
	custom.WriteAheadLog = WriteAheadLogConfig{Directory: "/var/lib/otelcol-tapio/state", FSync: true}
	custom.Links = LinkConfidences{Trace: 1, Kubernetes: 0.9, Entity: 0.85, Peer: 0.7, Service: 0.5, Host: 0.5}
	custom.Thresholds = []ThresholdRule{{
		Name: "memory_high", Metric: "container.memory.utilization", Attributes: map[string]string{"state": "used"},
		Comparison: GreaterThan, Value: 0.9, For: 30 * time.Second, Layer: "container",
	}}
	custom.Recommendations = []RecommendationRule{
		{EventName: "tapio.network.connection_refused", Immediate: "Page the database on-call.",
			ShortTerm: "Find why the database stopped listening.", LongTerm: "Add a replica."},
		{MetricRule: "memory_high", Immediate: "Raise the memory limit."},
	}
	tests := []struct {
		id      component.ID
		want    *Config
		wantErr []string
	}{
		{component.NewID(metadata.Type), defaultConfig(), nil},
		{component.NewIDWithName(metadata.Type, "custom"), custom, nil},
		{component.NewIDWithName(metadata.Type, "old_storage"), nil, []string{"storage (file_storage): the connector no longer writes its state through a storage extension; set write_ahead_log.directory"}},
		{component.NewIDWithName(metadata.Type, "bad_durations"), nil, []string{"decision_wait must be positive, got 0s", "incident_timeout must be positive, got -1s"}},
		{component.NewIDWithName(metadata.Type, "bad_caps"), nil, []string{"max_events must be at least 1, got 0", "max_incidents must be at least 1, got -3"}},
		{component.NewIDWithName(metadata.Type, "bad_rule"), nil, []string{"thresholds[0]: name is required", `comparison must be one of gt, gte, lt, lte, got "above"`, `layer must name a layer`}},
		{component.NewIDWithName(metadata.Type, "bad_recommendation"), nil, []string{`event_name "tapio.kernel.process_exec" is not a problem event`}},
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
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("Validate() = nil, want errors %q", tt.wantErr)
				}
				for _, want := range tt.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("Validate() = %v\nwant it to contain %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg, tt.want) {
				t.Errorf("config = %+v\nwant     %+v", cfg, tt.want)
			}
		})
	}
}

func TestValidateRejects(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{"zero window", func(c *Config) { c.Window = 0 }, "window must be positive"},
		{"timeout not after wait", func(c *Config) { c.IncidentTimeout = c.DecisionWait }, "must be longer than decision_wait"},
		{"delay shorter than wait", func(c *Config) { c.MaxDecisionDelay = c.DecisionWait - 1 }, "max_decision_delay"},
		{"negative update interval", func(c *Config) { c.MaxUpdateInterval = -time.Second }, "max_update_interval"},
		{"negative skew", func(c *Config) { c.ClockSkew = -1 }, "clock_skew must not be negative"},
		{"zero flush interval", func(c *Config) { c.FlushInterval = 0 }, "flush_interval must be positive"},
		{"zero peer ttl", func(c *Config) { c.PeerTTL = 0 }, "peer_ttl must be positive"},
		{"zero shards", func(c *Config) { c.Shards = 0 }, "shards must be at least 1"},
		{"too many shards", func(c *Config) { c.Shards = maxShards + 1 }, "shards must be at most"},
		{"zero per-incident cap", func(c *Config) { c.MaxEventsPerIncident = 0 }, "max_events_per_incident must be at least 1"},
		{"confidence above one", func(c *Config) { c.Links.Peer = 1.5 }, "links.peer must be in (0, 1]"},
		{"zero confidence", func(c *Config) { c.Links.Service = 0 }, "links.service must be in (0, 1]"},
		{"duplicate rule", func(c *Config) {
			r := ThresholdRule{Name: "a", Metric: "m", Comparison: GreaterThan, Layer: "container"}
			c.Thresholds = []ThresholdRule{r, r}
		}, `name "a" is used twice`},
		{"negative for", func(c *Config) {
			c.Thresholds = []ThresholdRule{{Name: "a", Metric: "m", Comparison: LessThan, Layer: "kernel", For: -time.Second}}
		}, "for must not be negative"},
		{"no metric", func(c *Config) {
			c.Thresholds = []ThresholdRule{{Name: "a", Comparison: LessThan, Layer: "kernel"}}
		}, "metric is required"},
		{"recommendation for unknown rule", func(c *Config) {
			c.Recommendations = []RecommendationRule{{MetricRule: "nope", Immediate: "x"}}
		}, `metric_rule "nope" names no threshold rule`},
		{"recommendation with both", func(c *Config) {
			c.Recommendations = []RecommendationRule{{EventName: "tapio.kernel.oom_kill", MetricRule: "x", Immediate: "x"}}
		}, "set event_name or metric_rule, not both"},
		{"empty recommendation", func(c *Config) {
			c.Recommendations = []RecommendationRule{{EventName: "tapio.kernel.oom_kill"}}
		}, "give at least one of immediate, short_term, long_term"},
		{"recommendation twice", func(c *Config) {
			r := RecommendationRule{EventName: "tapio.kernel.oom_kill", Immediate: "x"}
			c.Recommendations = []RecommendationRule{r, r}
		}, "listed twice"},
		{"consequence layer unknown", func(c *Config) { c.Incidents.ConsequenceLayers = []string{"trace", "http"} },
			`incidents.consequence_layers[1]: "http" is not a layer`},
		{"serious_alone not a problem event", func(c *Config) { c.Incidents.SeriousAlone = []string{"tapio.network.listen"} },
			`incidents.serious_alone[0]: "tapio.network.listen" is not a problem event`},
		{"crash signal misspelt", func(c *Config) { c.Incidents.ServingCrashSignals = []string{"segv"} },
			`incidents.serving_crash_signals[0]: "segv" is not a signal name`},
		{"negative recovery delay", func(c *Config) { c.Incidents.RecoveryDelay = -time.Second },
			"incidents.recovery_delay must not be negative"},
		{"recommendation without target", func(c *Config) {
			c.Recommendations = []RecommendationRule{{Immediate: "x"}}
		}, "set event_name or metric_rule"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := defaultConfig()
			tt.mutate(cfg)
			if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate() = %v, want %q", err, tt.wantErr)
			}
		})
	}
	if err := defaultConfig().Validate(); err != nil {
		t.Errorf("the default config is invalid: %v", err)
	}
	if err := componenttest.CheckConfigStruct(defaultConfig()); err != nil {
		t.Error(err)
	}
}

var _ = context.Background
