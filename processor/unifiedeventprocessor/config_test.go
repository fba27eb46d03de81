package unifiedeventprocessor

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/confmap/xconfmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.uber.org/goleak"

	"github.com/yairfalse/tapio/processor/unifiedeventprocessor/internal/metadata"
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
	custom.Include = []string{"tapio.kernel.oom_kill", "tapio.trace.server_error", "tapio.kubernetes.pod_oomkilled"}
	custom.OnInvalid = Drop
	custom.MaxNarrativeBytes = 512
	custom.Kubernetes.NormalEvents = Keep
	custom.Logs.Unmatched = Drop
	custom.Spans.SlowThreshold = time.Second
	custom.Spans.Annotation = AnnotateMinimal
	custom.Spans.SlowThresholds = []SlowThreshold{
		{Service: "checkout", Route: "/api/checkout", Threshold: 300 * time.Millisecond},
		{Service: "payment", Threshold: 500 * time.Millisecond},
	}
	tests := []struct {
		id      component.ID
		want    *Config
		wantErr string
	}{
		{component.NewID(metadata.Type), defaultConfig(), ""},
		{component.NewIDWithName(metadata.Type, "custom"), custom, ""},
		{component.NewIDWithName(metadata.Type, "bad_disposition"), nil, `on_invalid must be one of pass, drop, got "maybe"`},
		{component.NewIDWithName(metadata.Type, "bad_name"), nil, `exclude: "oom_kill" is not an event name of the UnifiedEvent catalogue`},
		{component.NewIDWithName(metadata.Type, "bad_rule"), nil, "spans.slow_thresholds[0]: set service, route or both"},
		{component.NewIDWithName(metadata.Type, "bad_annotation"), nil, `spans.annotation must be one of full, minimal, got "short"`},
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
			got := cfg.(*Config)
			if got.OnInvalid != tt.want.OnInvalid || got.MaxNarrativeBytes != tt.want.MaxNarrativeBytes ||
				got.Kubernetes != tt.want.Kubernetes || got.Logs != tt.want.Logs ||
				got.Spans.SlowThreshold != tt.want.Spans.SlowThreshold ||
				len(got.Spans.SlowThresholds) != len(tt.want.Spans.SlowThresholds) ||
				strings.Join(got.Include, ",") != strings.Join(tt.want.Include, ",") {
				t.Errorf("config = %+v\nwant     %+v", got, tt.want)
			}
			for i := range tt.want.Spans.SlowThresholds {
				if got.Spans.SlowThresholds[i] != tt.want.Spans.SlowThresholds[i] {
					t.Errorf("slow_thresholds[%d] = %+v", i, got.Spans.SlowThresholds[i])
				}
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
		{"tiny narrative", func(c *Config) { c.MaxNarrativeBytes = 3 }, "max_narrative_bytes must be at least 16"},
		{"negative default", func(c *Config) { c.Spans.SlowThreshold = -time.Second }, "must not be negative"},
		{"zero rule", func(c *Config) { c.Spans.SlowThresholds = []SlowThreshold{{Service: "a"}} }, "threshold must be positive"},
		{"duplicate rule", func(c *Config) {
			c.Spans.SlowThresholds = []SlowThreshold{{Service: "a", Threshold: 1}, {Service: "a", Threshold: 2}}
		}, "listed twice"},
		{"both include and exclude", func(c *Config) {
			c.Include = []string{"tapio.kernel.oom_kill"}
			c.Exclude = []string{"tapio.kernel.oom_kill"}
		}, "both included and excluded"},
		{"normal events", func(c *Config) { c.Kubernetes.NormalEvents = Pass }, "kubernetes.normal_events must be one of keep, drop"},
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

func TestLifecycleIsIdempotent(t *testing.T) {
	f := NewFactory()
	set := processortest.NewNopSettings(metadata.Type)
	ctx := context.Background()
	logs, err := f.CreateLogs(ctx, set, defaultConfig(), consumertest.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	traces, err := f.CreateTraces(ctx, set, defaultConfig(), consumertest.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := f.CreateMetrics(ctx, set, defaultConfig(), consumertest.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []component.Component{logs, traces, metrics} {
		if err := c.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown without Start: %v", err)
		}
		if err := c.Start(ctx, componenttest.NewNopHost()); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			if err := c.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown #%d: %v", i+1, err)
			}
		}
	}
	if !logs.Capabilities().MutatesData {
		t.Error("the processor mutates data and must say so")
	}
}
