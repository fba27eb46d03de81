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
	// fixedOnly: no unlimited runs, for the reason given.
	fixedOnly string
}

// telemetrygen's traces go through the SDK's batch span processor, which drops spans silently
// once its queue is full: at an unlimited rate it measures its own queue, not the collector.
const tgFixedOnly = "telemetrygen at an unlimited rate drops spans in its own SDK queue, unseen, and spends its core making them: it measures itself, not the collector (loadgen's unlimited runs measure the highest rate)"

var allLoads = []load{
	{name: "healthy", about: "shop traffic, SERVER span + CLIENT child per request, 1 % failing (loadgen)", signal: "traces", client: "loadgen", mix: "healthy", target: "healthy"},
	{name: "storm", about: "error storm: payment down, every checkout failing, SERVER 500 + CLIENT 503 to payment with error.type (loadgen)", signal: "traces", client: "loadgen", mix: "storm", target: "storm"},
	{name: "errorlogs", about: "application logs in trace context, half INFO, half ERROR with error.type (loadgen)", signal: "logs", client: "loadgen", mix: "errorlogs"},
	{name: "kernel", about: "refused-connect storm: connect() to a closed loopback port in a loop, seen by the ebpf receiver", signal: "kernel", client: "loadgen", mix: "refused_connects"},
	{name: "tg-healthy", about: "telemetrygen traces, CLIENT + SERVER span, status unset", signal: "traces", client: "telemetrygen", tgStatus: "Unset", target: "healthy", fixedOnly: tgFixedOnly},
	{name: "tg-storm", about: "telemetrygen traces, every span status Error", signal: "traces", client: "telemetrygen", tgStatus: "Error", target: "storm", fixedOnly: tgFixedOnly},
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
const (
	fixed     = "fixed"
	unlimited = "unlimited"
)

// clientArgv is the load generator's command line for a run lasting warmup + window.
func (h *harness) clientArgv(l load, mode string) []string {
	o := h.opt
	rate := o.rate
	if l.signal == "kernel" {
		rate = o.kernelRate
	}
	if mode == unlimited {
		rate = 0
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	if l.client == "telemetrygen" {
		// telemetrygen paces each span with its own sleep, and a sleep overshoots on a busy
		// machine: many workers at a low rate each lose less of the rate than a few fast ones.
		workers := max(4, int(rate/250))
		argv := []string{o.telemetrygen, "traces", "--otlp-endpoint", h.addr(h.ports.grpc), "--otlp-insecure",
			"--duration", (o.warmup + o.window + h.tail()).String(), "--workers", strconv.Itoa(workers),
			"--rate", f(rate / float64(workers)), "--batch-size", "512", "--status-code", l.tgStatus, "--service", "checkout"}
		return argv
	}
	workers := 4
	if mode == unlimited {
		workers = 16
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
