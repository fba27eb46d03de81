package ebpfreceiver

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/confmap/xconfmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/yairfalse/tapio/receiver/ebpfreceiver/internal/kernel"
	"github.com/yairfalse/tapio/receiver/ebpfreceiver/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	load := func(name string) (*Config, error) {
		cfg := NewFactory().CreateDefaultConfig()
		sub, err := cm.Sub(component.NewIDWithName(metadata.Type, name).String())
		if err != nil {
			t.Fatal(err)
		}
		if err := sub.Unmarshal(cfg); err != nil {
			t.Fatal(err)
		}
		return cfg.(*Config), xconfmap.Validate(cfg)
	}

	def, err := load("")
	if err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	for _, p := range kernel.ProbeTable {
		if on, named := def.Probes[p.Name]; named != p.Switchable || on != p.Default {
			t.Errorf("default of probe %s: %v (named %v), want %v", p.Name, on, named, p.Default)
		}
	}
	if !def.ProcessExit.AbnormalOnly || def.ProcessExit.SignalWindow != time.Minute || def.RingBufferBytes != 4<<20 || !def.MergeRepeats {
		t.Errorf("defaults: %+v", def)
	}
	all, err := load("all")
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Probes.Enabled()) != len(kernel.SwitchableProbes()) || all.ProcessExit.AbnormalOnly || all.ProcessExit.SignalWindow != 10*time.Second ||
		len(all.Workload.CgroupPatterns) != 1 || all.Batch.MaxSize != 1024 || all.Batch.Timeout != time.Second ||
		all.RingBufferBytes != 8<<20 || all.RetransmitInterval != 2*time.Second || all.RateLimits["tapio.kernel.process_exec"] != 200 || all.IOLatency.Threshold != 250*time.Millisecond || all.MergeRepeats {
		t.Errorf("custom config: %+v", all)
	}
	some, err := load("some")
	if err != nil {
		t.Fatal(err)
	}
	if got := some.Probes.Enabled(); !slices.Equal(got, []kernel.Probe{kernel.ProbeProcessExec, kernel.ProbeProcessExit, kernel.ProbeOOMKill,
		kernel.ProbeFatalSignal, kernel.ProbeConnectionReset, kernel.ProbeTCPRetransmit, kernel.ProbeBlockIO}) {
		t.Errorf("probes named in the config change only themselves; the others keep their default: %v", got)
	}
	// merge_repeats is a bool: anything else is refused when the configuration is read.
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, "bad_merge").String())
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Unmarshal(NewFactory().CreateDefaultConfig()); err == nil || !strings.Contains(err.Error(), "merge_repeats") {
		t.Errorf("merge_repeats: sometimes read as %v, want an error naming merge_repeats", err)
	}
	for name, want := range map[string]string{
		"nothing":                  "every probe is off",
		"bad_ring":                 "ring_buffer_bytes must be a power of two",
		"bad_rate":                 `"tapio.application.error_log" is not an event this receiver emits`,
		"latency_without_block_io": "io_latency.threshold is set but probes.block_io is off",
		"bad_pattern":              "workload.cgroup_patterns[0]: error parsing regexp",
		"match_all_pattern":        "workload.cgroup_patterns[1]: \".*\" matches every cgroup name",
		"bad_window":               "process_exit.signal_window must be positive",
	} {
		if _, err := load(name); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: Validate() = %v, want %q", name, err, want)
		}
	}
	for name, want := range map[string]string{
		"unknown_probe":   `"process_fork" is not a probe; the probes are process_exec, process_exit,`,
		"always_on_probe": `"process_tree" is always on`,
	} {
		cfg := NewFactory().CreateDefaultConfig()
		sub, err := cm.Sub(component.NewIDWithName(metadata.Type, name).String())
		if err != nil {
			t.Fatal(err)
		}
		if err := sub.Unmarshal(cfg); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: Unmarshal = %v, want %q", name, err, want)
		}
	}
	if err := componenttest.CheckConfigStruct(createDefaultConfig()); err != nil {
		t.Error(err)
	}
}

func TestLifecycleWithoutStartAndTwice(t *testing.T) {
	f := NewFactory()
	set := receivertest.NewNopSettings(metadata.Type)
	logs, err := f.CreateLogs(context.Background(), set, createDefaultConfig(), consumertest.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := f.CreateMetrics(context.Background(), set, createDefaultConfig(), consumertest.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if logs != metrics {
		t.Error("a logs and a metrics pipeline with the same id must share one receiver (one set of kernel programs)")
	}
	for i := 0; i < 2; i++ {
		if err := logs.Shutdown(context.Background()); err != nil {
			t.Fatalf("Shutdown #%d without Start: %v", i+1, err)
		}
	}
}

func TestStartTwiceShutdownTwice(t *testing.T) {
	rr := startReceiver(t, nil) // starts once and shuts down in cleanup
	_ = rr
	f := NewFactory()
	set := receivertest.NewNopSettings(metadata.Type)
	set.ID = component.NewIDWithName(metadata.Type, "twice")
	r, err := f.CreateLogs(context.Background(), set, createDefaultConfig(), consumertest.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := r.Start(context.Background(), componenttest.NewNopHost()); err != nil {
			t.Fatalf("Start #%d: %v", i+1, err)
		}
	}
	for i := 0; i < 2; i++ {
		if err := r.Shutdown(context.Background()); err != nil {
			t.Fatalf("Shutdown #%d: %v", i+1, err)
		}
	}
}
