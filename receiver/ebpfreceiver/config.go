package ebpfreceiver

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

// Config configures the ebpf receiver.
type Config struct {
	// Probes switches each probe on or off.
	Probes ProbesConfig `mapstructure:"probes"`
	// ProcessExit: abnormal_only keeps exits with a non-zero code or a terminating signal.
	ProcessExit ProcessExitConfig `mapstructure:"process_exit"`
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
	// MaxMetricEntities caps the containers tracked by the counters; the oldest are evicted and counted.
	MaxMetricEntities int `mapstructure:"max_metric_entities"`

	_ struct{}
}

// ProbesConfig switches each probe.
type ProbesConfig struct {
	ProcessExec     bool `mapstructure:"process_exec"`
	ProcessExit     bool `mapstructure:"process_exit"`
	OOMKill         bool `mapstructure:"oom_kill"`
	FatalSignal     bool `mapstructure:"fatal_signal"`
	Connections     bool `mapstructure:"connections"`
	ConnectionReset bool `mapstructure:"connection_reset"`
	TCPRetransmit   bool `mapstructure:"tcp_retransmit"`
	// BlockIO reports failed block requests (io_error), and slow ones when io_latency.threshold is set.
	BlockIO bool `mapstructure:"block_io"`
}

// IOLatencyConfig configures io_latency; a zero threshold turns it off.
type IOLatencyConfig struct {
	Threshold time.Duration `mapstructure:"threshold"`
}

// ProcessExitConfig configures process_exit.
type ProcessExitConfig struct {
	AbnormalOnly bool `mapstructure:"abnormal_only"`
}

// BatchConfig configures batching into plog.Logs.
type BatchConfig struct {
	MaxSize int           `mapstructure:"max_size"`
	Timeout time.Duration `mapstructure:"timeout"`
}

// Validate checks the configuration.
func (cfg *Config) Validate() error {
	var errs []error
	p := cfg.Probes
	if !(p.ProcessExec || p.ProcessExit || p.OOMKill || p.FatalSignal || p.Connections || p.ConnectionReset || p.TCPRetransmit || p.BlockIO) {
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
	if cfg.IOLatency.Threshold < 0 {
		errs = append(errs, fmt.Errorf("io_latency.threshold must not be negative, got %s", cfg.IOLatency.Threshold))
	}
	if cfg.IOLatency.Threshold > 0 && !p.BlockIO {
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
