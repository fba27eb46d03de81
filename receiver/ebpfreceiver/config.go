package ebpfreceiver

//go:generate go test -run TestReadmeMatchesProbeTable -update-readme .

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/collector/confmap"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
	"github.com/yairfalse/tapio/receiver/ebpfreceiver/internal/kernel"
)

// Config configures the ebpf receiver.
type Config struct {
	// Probes switches each probe of the probe table on or off (probes.<name>: true|false); a
	// probe the configuration does not name keeps its default.
	Probes ProbeSwitches `mapstructure:"probes"`
	// ProcessExit: abnormal_only keeps exits with a non-zero code or a terminating signal (and a
	// serving process's end whatever its code); signal_window is how long after an ending signal
	// an exit is its consequence.
	ProcessExit ProcessExitConfig `mapstructure:"process_exit"`
	// Workload names which cgroups, beyond the built-in ones, make a workload.
	Workload WorkloadConfig `mapstructure:"workload"`
	// Batch bounds how many records one plog.Logs holds and how long a record waits.
	Batch BatchConfig `mapstructure:"batch"`
	// RingBufferBytes sizes the kernel→user ring buffer: a power of two, at least one page.
	RingBufferBytes uint32 `mapstructure:"ring_buffer_bytes"`
	// RetransmitInterval is how often per-connection retransmit counts are turned into events.
	RetransmitInterval time.Duration `mapstructure:"retransmit_interval"`
	// RateLimits caps events per second per event name (e.g. tapio.kernel.process_exec: 500).
	// Events over the limit are dropped and counted.
	RateLimits map[string]float64 `mapstructure:"rate_limits"`
	// MetricsInterval is how often the per-container counters are emitted (metrics pipelines).
	MetricsInterval time.Duration `mapstructure:"metrics_interval"`
	// IOLatency turns completed block requests slower than threshold into io_latency events.
	IOLatency IOLatencyConfig `mapstructure:"io_latency"`
	// MergeRepeats turns repeats of one connection failure within a batch — same process,
	// thread, kind, remote endpoint and errno (for resets, direction and side) — into one record
	// that carries how many events it stands for (log_count) and the first and last one's times.
	MergeRepeats bool `mapstructure:"merge_repeats"`
	// MaxMetricEntities caps the containers tracked by the counters; the oldest are evicted and counted.
	MaxMetricEntities int `mapstructure:"max_metric_entities"`

	_ struct{}
}

// ProbeSwitches says which probes of kernel.ProbeTable are on.
type ProbeSwitches map[kernel.Probe]bool

// defaultProbeSwitches is every switchable probe at its default, from the probe table.
func defaultProbeSwitches() ProbeSwitches {
	out := ProbeSwitches{}
	for _, p := range kernel.ProbeTable {
		if p.Switchable {
			out[p.Name] = p.Default
		}
	}
	return out
}

// Unmarshal applies the configured switches over the defaults and refuses a name that is not a
// switchable probe.
func (p *ProbeSwitches) Unmarshal(conf *confmap.Conf) error {
	raw := map[string]bool{}
	if err := conf.Unmarshal(&raw); err != nil {
		return err
	}
	if *p == nil {
		*p = defaultProbeSwitches()
	}
	for name, on := range raw {
		spec, ok := kernel.LookupProbe(kernel.Probe(name))
		switch {
		case !ok:
			return fmt.Errorf("%q is not a probe; the probes are %s", name, probeNames())
		case !spec.Switchable:
			return fmt.Errorf("%q is always on: %s", name, spec.Reports)
		}
		(*p)[spec.Name] = on
	}
	return nil
}

// Enabled lists the probes that are on, in table order.
func (p ProbeSwitches) Enabled() []kernel.Probe {
	var out []kernel.Probe
	for _, name := range kernel.SwitchableProbes() {
		if p[name] {
			out = append(out, name)
		}
	}
	return out
}

func probeNames() string {
	var names []string
	for _, name := range kernel.SwitchableProbes() {
		names = append(names, string(name))
	}
	return strings.Join(names, ", ")
}

// IOLatencyConfig configures io_latency; a zero threshold turns it off.
type IOLatencyConfig struct {
	Threshold time.Duration `mapstructure:"threshold"`
}

// ProcessExitConfig configures process_exit.
type ProcessExitConfig struct {
	AbnormalOnly bool          `mapstructure:"abnormal_only"`
	SignalWindow time.Duration `mapstructure:"signal_window"`
}

// WorkloadConfig configures how events are given to workloads.
type WorkloadConfig struct {
	// CgroupPatterns are regular expressions (RE2) matched against each component of a process's
	// cgroup path: the deepest matching component names the process's workload
	// (tapio.entity.id = host.name/<component>), as a systemd *.service unit does without
	// configuration. The collector's own cgroup and its ancestors never do.
	CgroupPatterns []string `mapstructure:"cgroup_patterns"`
}

// BatchConfig configures batching into plog.Logs.
type BatchConfig struct {
	MaxSize int           `mapstructure:"max_size"`
	Timeout time.Duration `mapstructure:"timeout"`
}

// Validate checks the configuration.
func (cfg *Config) Validate() error {
	var errs []error
	if len(cfg.Probes.Enabled()) == 0 {
		errs = append(errs, errors.New("probes: every probe is off; enable at least one"))
	}
	if cfg.Batch.MaxSize < 1 {
		errs = append(errs, fmt.Errorf("batch.max_size must be at least 1, got %d", cfg.Batch.MaxSize))
	}
	if cfg.Batch.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("batch.timeout must be positive, got %s", cfg.Batch.Timeout))
	}
	page := uint32(os.Getpagesize())
	if b := cfg.RingBufferBytes; b < page || b&(b-1) != 0 {
		errs = append(errs, fmt.Errorf("ring_buffer_bytes must be a power of two of at least %d (one page), got %d", page, b))
	}
	if cfg.RetransmitInterval <= 0 {
		errs = append(errs, fmt.Errorf("retransmit_interval must be positive, got %s", cfg.RetransmitInterval))
	}
	if cfg.ProcessExit.SignalWindow <= 0 {
		errs = append(errs, fmt.Errorf("process_exit.signal_window must be positive, got %s", cfg.ProcessExit.SignalWindow))
	}
	for i, p := range cfg.Workload.CgroupPatterns {
		if err := validateCgroupPattern(p); err != nil {
			errs = append(errs, fmt.Errorf("workload.cgroup_patterns[%d]: %w", i, err))
		}
	}
	if cfg.IOLatency.Threshold < 0 {
		errs = append(errs, fmt.Errorf("io_latency.threshold must not be negative, got %s", cfg.IOLatency.Threshold))
	}
	if cfg.IOLatency.Threshold > 0 && !cfg.Probes[kernel.ProbeBlockIO] {
		errs = append(errs, errors.New("io_latency.threshold is set but probes.block_io is off"))
	}
	if cfg.MetricsInterval <= 0 {
		errs = append(errs, fmt.Errorf("metrics_interval must be positive, got %s", cfg.MetricsInterval))
	}
	if cfg.MaxMetricEntities < 1 {
		errs = append(errs, fmt.Errorf("max_metric_entities must be at least 1, got %d", cfg.MaxMetricEntities))
	}
	for name, limit := range cfg.RateLimits {
		def, ok := unifiedevent.Lookup(name)
		if !ok || (def.Layer != unifiedevent.LayerKernel && def.Layer != unifiedevent.LayerNetwork && def.Layer != unifiedevent.LayerStorage) {
			errs = append(errs, fmt.Errorf("rate_limits: %q is not an event this receiver emits", name))
		}
		if limit <= 0 {
			errs = append(errs, fmt.Errorf("rate_limits: %s must be positive events per second, got %g", name, limit))
		}
	}
	return errors.Join(errs...)
}
