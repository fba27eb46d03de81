package main

import (
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/yairfalse/tapio/test/load/internal/metrics"
)

// A load is one kind of traffic, offered in turn to both pipelines.
type load struct {
	name string
	// what the table says about it
	about string
	// signal: traces, logs (OTLP from applications) or kernel (refused connects seen by the ebpf
	// receiver).
	signal string
	// client: loadgen (this module's generator on the Go SDK, export latency measured) or
	// telemetrygen.
	client string
	mix    string // loadgen mix
	// tgStatus is telemetrygen's --status-code.
	tgStatus string
	// target names the targets the ratios are checked against: healthy, storm or none.
	target string
	// noCapacity: no capacity runs, for the reason given.
	noCapacity string
}

// telemetrygen's traces go through the SDK's batch span processor, which drops spans silently
// once its queue is full: driven flat out from one core it measures its own queue, not the
// collector, so it has no capacity runs. Its senders runs are the issue's own measurement.
const tgNoCapacity = "telemetrygen drops spans in its own SDK queue, unseen, and spends its core making them: it cannot find a collector's limit (loadgen -raw's capacity runs do)"

var allLoads = []load{
	{name: "healthy", about: "shop traffic, SERVER span + CLIENT child per request, 1 % failing (loadgen)", signal: "traces", client: "loadgen", mix: "healthy", target: "healthy"},
	{name: "storm", about: "error storm: payment down, every checkout failing, SERVER 500 + CLIENT 503 to payment with error.type (loadgen)", signal: "traces", client: "loadgen", mix: "storm", target: "storm"},
	{name: "errorlogs", about: "application logs in trace context, half INFO, half ERROR with error.type (loadgen)", signal: "logs", client: "loadgen", mix: "errorlogs"},
	{name: "kernel", about: "refused-connect storm: connect() to a closed loopback port in a loop, seen by the ebpf receiver", signal: "kernel", client: "loadgen", mix: "refused_connects"},
	{name: "tg-healthy", about: "telemetrygen traces, CLIENT + SERVER span, status unset", signal: "traces", client: "telemetrygen", tgStatus: "Unset", target: "healthy", noCapacity: tgNoCapacity},
	{name: "tg-storm", about: "telemetrygen traces, every span status Error", signal: "traces", client: "telemetrygen", tgStatus: "Error", target: "storm", noCapacity: tgNoCapacity},
}

func findLoad(name string) (load, error) {
	for _, l := range allLoads {
		if l.name == name {
			return l, nil
		}
	}
	return load{}, fmt.Errorf("no load %q", name)
}

// Pipelines.
const (
	passThrough = "pass-through"
	tapio       = "tapio"
)

// configs are the --config files of a pipeline for a load. Tapio is always the shipped
// standalone config with ports and data directory moved; for the application loads the ebpf
// receiver is taken out of its pipelines (tapio-otlp-only.yaml says why).
func (h *harness) configs(l load, pipeline string) []string {
	configs := h.baseConfigs(l, pipeline)
	if pipeline == tapio && h.opt.tapioOverlay != "" {
		configs = append(configs, h.opt.tapioOverlay)
	}
	return configs
}

func (h *harness) baseConfigs(l load, pipeline string) []string {
	dir := h.opt.loadDir
	switch {
	case pipeline == passThrough && l.signal == "kernel":
		return []string{filepath.Join(dir, "passthrough-kernel.yaml")}
	case pipeline == passThrough:
		return []string{filepath.Join(dir, "passthrough.yaml")}
	case l.signal == "kernel":
		return []string{h.opt.shipped, filepath.Join(dir, "tapio-overlay.yaml")}
	default:
		return []string{h.opt.shipped, filepath.Join(dir, "tapio-overlay.yaml"), filepath.Join(dir, "tapio-otlp-only.yaml")}
	}
}

// Modes of a run.
//   - fixed: a fixed offered rate both pipelines sustain, collector and client pinned to a core
//     each: CPU per item.
//   - senders: what applications' SDKs manage to send when nothing limits them but the
//     collector's answers and the machine they share with it — two SDK workers (loadgen's on the
//     Go SDK, or telemetrygen's) flat out, nothing pinned; issue 11 measured the slowdown of the
//     senders this way. The highest sustained rate.
//   - unlimited: the collector's capacity on one core — 16 workers of cheap raw OTLP requests
//     against a collector pinned to one core. On a saturated core, the rate ratio is the inverse
//     of the CPU ratio.
const (
	fixed     = "fixed"
	senders   = "senders"
	unlimited = "unlimited"
)

// sendersWorkers is the number of SDK workers of a senders run: as many as issue 11's
// telemetrygen run had.
const sendersWorkers = 2

// clientArgv is the load generator's command line for a run lasting warmup + window.
func (h *harness) clientArgv(l load, mode string) []string {
	o := h.opt
	rate := o.rate
	if l.signal == "kernel" {
		rate = o.kernelRate
	}
	if mode == unlimited || mode == senders {
		rate = 0
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	if l.client == "telemetrygen" {
		// telemetrygen paces each span with its own sleep, and a sleep overshoots on a busy
		// machine: many workers at a low rate each lose less of the rate than a few fast ones.
		workers := max(4, int(rate/250))
		if mode == senders {
			workers = sendersWorkers // --rate 0: each worker as fast as it can
		}
		argv := []string{o.telemetrygen, "traces", "--otlp-endpoint", h.addr(h.ports.grpc), "--otlp-insecure",
			"--duration", (o.warmup + o.window + h.tail()).String(), "--workers", strconv.Itoa(workers),
			"--rate", f(rate / float64(workers)), "--batch-size", "512", "--status-code", l.tgStatus, "--service", "checkout"}
		return argv
	}
	workers := 4
	switch mode {
	case unlimited:
		workers = 16
	case senders:
		workers = sendersWorkers
	}
	endpoint := h.addr(h.ports.grpc)
	if l.signal == "kernel" {
		endpoint = h.addr(h.ports.closed)
		workers = 1
		if mode == unlimited {
			workers = 2
		}
	}
	argv := []string{o.loadgen, "-endpoint", endpoint, "-mix", l.mix, "-rate", f(rate), "-warmup", o.warmup.String(),
		"-duration", o.window.String(), "-workers", strconv.Itoa(workers)}
	if mode == unlimited && l.signal != "kernel" {
		// From one core the SDK makes spans and log records at about the cost a pass-through
		// collector takes them, so it cannot find the collector's limit: the unlimited runs send
		// the same requests built directly as OTLP messages (loadgen -raw), far cheaper.
		argv = append(argv, "-raw")
	}
	return argv
}

// itemsAccepted counts the items a load offers, as the collector counts them on acceptance. The
// ebpf receiver merges repeats of a connection failure into one record (log_count): its events
// are the records accepted and the events merged into them.
func itemsAccepted(l load) func(metrics.Snapshot) float64 {
	switch l.signal {
	case "traces":
		return func(s metrics.Snapshot) float64 { return s.Sum("otelcol_receiver_accepted_spans", `receiver="otlp"`) }
	case "logs":
		return func(s metrics.Snapshot) float64 {
			return s.Sum("otelcol_receiver_accepted_log_records", `receiver="otlp"`)
		}
	default:
		return func(s metrics.Snapshot) float64 {
			return s.Sum("otelcol_receiver_accepted_log_records", `receiver="ebpf"`) + s.Sum("otelcol_receiver_ebpf_events_merged")
		}
	}
}
