package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/yairfalse/tapio/test/load/internal/child"
	"github.com/yairfalse/tapio/test/load/internal/gen"
	"github.com/yairfalse/tapio/test/load/internal/metrics"
	"github.com/yairfalse/tapio/test/load/internal/procstat"
)

// The CPUs the collector and the load generator are pinned to in the fixed-rate and capacity
// runs: one each, so that neither's work is taken from the other's and the collector's rate is
// that of one core (as make bench states targets per core). Other work on the machine still
// shares both; the report says how much. The senders runs pin neither (cpusFor).
const (
	collectorCPU = "1"
	clientCPU    = "0"
)

// cpusFor is what a run's process is pinned to: nothing in the senders runs, where applications
// and the collector share the machine as they do on a node.
func cpusFor(mode, cpus string) string {
	if mode == senders {
		return ""
	}
	return cpus
}

// runResult is one pipeline under one load in one mode.
type runResult struct {
	Load     string `json:"load"`
	Pipeline string `json:"pipeline"`
	Mode     string `json:"mode"`
	// Round is which of the -repeat rounds the run was (from 1).
	Round int `json:"round"`
	// OfferedTarget is the rate asked of the generator (0 = unlimited).
	OfferedTarget float64 `json:"offered_target_per_s"`
	// ClientMade is the items/s the generator made in the window (loadgen only).
	ClientMade float64 `json:"client_made_per_s,omitempty"`
	// Accepted is items/s the collector's receiver accepted in the window.
	Accepted      float64 `json:"accepted_per_s"`
	Items         float64 `json:"items"`
	WindowS       float64 `json:"window_s"`
	CPUSeconds    float64 `json:"cpu_s"`
	CPUPerMillion float64 `json:"cpu_s_per_million_items"`
	// Cores is the collector's CPU time over the window's wall time.
	Cores float64 `json:"collector_cores"`
	// MachineIdle is the idle share of the whole machine (all CPUs) during the window.
	MachineIdle float64 `json:"machine_idle"`
	LoadAvg1    float64 `json:"loadavg_1m"`
	PeakRSSMiB  float64 `json:"peak_rss_mib"`
	// ClientCPU is the load generator's own CPU time over its whole run (warm-up included), on
	// its own CPU: not in the collector's.
	ClientCPU float64 `json:"client_cpu_s"`
	// Sender is the generator's own report (nil for telemetrygen, which reports none).
	Sender *gen.Result `json:"sender,omitempty"`
	// Problems are the collector's refused/dropped/evicted/failed counters that rose over the
	// whole run (warm-up and drain included).
	Problems []metrics.Count `json:"problems,omitempty"`
	// Sustained: at the fixed rate, the collector accepted at least 95 % of the rate asked.
	Sustained bool     `json:"sustained"`
	Notes     []string `json:"notes,omitempty"`
}

func (r runResult) problemTotal() float64 {
	var t float64
	for _, p := range r.Problems {
		t += p.Delta
	}
	return t
}

// collectorRun is a started collector.
type collectorRun struct {
	proc    *child.Child
	metrics string
}

func (h *harness) startCollector(ctx context.Context, name, cpus string, configs []string, dataDir string) (*collectorRun, error) {
	if err := os.RemoveAll(dataDir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, err
	}
	argv := []string{h.opt.collector}
	for _, c := range configs {
		argv = append(argv, "--config", c)
	}
	p := h.ports
	proc, err := child.Start(child.Spec{
		Name: name, Argv: argv, CPUs: cpus, LogPath: filepath.Join(h.opt.out, "logs", name+".log"),
		Env: append([]string{
			"TAPIO_DATA_DIR=" + dataDir,
			"LOAD_HEALTH_PORT=" + strconv.Itoa(p.health), "LOAD_OTLP_GRPC_PORT=" + strconv.Itoa(p.grpc),
			"LOAD_OTLP_HTTP_PORT=" + strconv.Itoa(p.http), "LOAD_API_PORT=" + strconv.Itoa(p.api),
			"LOAD_PPROF_PORT=" + strconv.Itoa(p.pprof), "LOAD_METRICS_PORT=" + strconv.Itoa(p.metrics),
		}, strings.Fields(h.opt.collectorEnv)...),
	})
	if err != nil {
		return nil, err
	}
	c := &collectorRun{proc: proc, metrics: "http://" + h.addr(p.metrics) + "/metrics"}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if code, _, err := get(ctx, "http://"+h.addr(p.health)+"/", time.Second); err == nil && code == http.StatusOK {
			if _, err := metrics.Scrape(ctx, c.metrics); err == nil {
				return c, nil
			}
		}
		if proc.Exited() || time.Now().After(deadline) || ctx.Err() != nil {
			proc.Stop(5 * time.Second)
			return nil, fmt.Errorf("%s did not become healthy: %s", name, proc.LogTail(1500))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop ends the collector; an exit other than a clean one after SIGTERM is an error.
func (c *collectorRun) stop() error {
	c.proc.Stop(20 * time.Second)
	if err := c.proc.Wait(0); err != nil {
		return fmt.Errorf("%s ended badly (%v): %s", c.proc.Name, err, c.proc.LogTail(800))
	}
	return nil
}

// get is one HTTP GET with its own timeout: status, latency, error.
func get(ctx context.Context, url string, timeout time.Duration) (int, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, time.Since(start), err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, time.Since(start), nil
}

// closedPortCheck makes sure the kernel load's port refuses: a listener there would turn the
// storm into connections.
func (h *harness) closedPortCheck() error {
	conn, err := net.DialTimeout("tcp", h.addr(h.ports.closed), time.Second)
	if err == nil {
		conn.Close()
		return fmt.Errorf("port %d accepts connections; the kernel load needs it closed", h.ports.closed)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("port %d: want connection refused, got %w", h.ports.closed, err)
	}
	return nil
}

// sample is what is read at one instant of a run.
type sample struct {
	at      time.Time
	snap    metrics.Snapshot
	cpu     float64
	machine procstat.Machine
}

func (h *harness) take(ctx context.Context, c *collectorRun) (sample, error) {
	s := sample{at: time.Now()}
	var err error
	if s.cpu, err = procstat.CPUSeconds(c.proc.Pid()); err != nil {
		return s, err
	}
	if s.machine, err = procstat.ReadMachine(); err != nil {
		return s, err
	}
	s.snap, err = metrics.Scrape(ctx, c.metrics)
	return s, err
}

// runPair runs one mode's runs of both pipelines at the same time: each its own collector, ports
// and client. This machine's speed drifts by up to a half between runs a minute apart (the same
// collector measured 2.2 and 3.9 CPU-s per million spans in consecutive runs, every part of its
// profile alike), which one-after-the-other runs put into the ratio; side by side both see the
// same machine.
//   - fixed: the collectors together on the collector's CPU and the clients on the client's.
//     Neither run's rate nears the CPU's, so each has its own time on it.
//   - senders: nothing pinned, four SDK workers and two collectors on the machine. A collector
//     whose answers come later leaves its senders waiting, and the CPU they would have used goes
//     to the other pair's senders: a difference between the pipelines shows larger side by side
//     than one after the other, never smaller.
func (h *harness) runPair(ctx context.Context, l load, mode string) ([]runResult, error) {
	second := *h
	second.ports = h.ports.shifted(10)
	var (
		wg      sync.WaitGroup
		results [2]runResult
		errs    [2]error
	)
	for i, run := range []struct {
		h        *harness
		pipeline string
	}{{h, passThrough}, {&second, tapio}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = run.h.run(ctx, l, run.pipeline, mode, "")
		}()
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	return results[:], nil
}

// shifted is the same set of ports moved by n, but the closed port, which stays the one the
// kernel load connects to.
func (p ports) shifted(n int) ports {
	return ports{health: p.health + n, grpc: p.grpc + n, http: p.http + n, api: p.api + n, pprof: p.pprof + n, metrics: p.metrics + n, closed: p.closed}
}

// run offers one load to one pipeline in one mode and measures the window after the warm-up.
func (h *harness) run(ctx context.Context, l load, pipeline, mode string, profile string) (runResult, error) {
	o := h.opt
	id := fmt.Sprintf("%s-%s-%s", l.name, pipeline, mode)
	if profile != "" {
		id += "-profiled"
	}
	res := runResult{Load: l.name, Pipeline: pipeline, Mode: mode}
	if mode == fixed {
		res.OfferedTarget = o.rate
		if l.signal == "kernel" {
			res.OfferedTarget = o.kernelRate
		}
	}
	c, err := h.startCollector(ctx, id, cpusFor(mode, collectorCPU), h.configs(l, pipeline), filepath.Join(o.out, "data", id))
	if err != nil {
		return res, err
	}
	defer c.proc.Stop(20 * time.Second)
	first, err := h.take(ctx, c)
	if err != nil {
		return res, err
	}
	client, err := child.Start(child.Spec{Name: id + "-client", Argv: h.clientArgv(l, mode), CPUs: cpusFor(mode, clientCPU),
		LogPath: filepath.Join(o.out, "logs", id+"-client.log"), Capture: l.client == "loadgen"})
	if err != nil {
		return res, err
	}
	defer client.Stop(5 * time.Second)
	begin := time.Now()
	if err := sleepCtx(ctx, time.Until(begin.Add(o.warmup))); err != nil {
		return res, err
	}
	s0, err := h.take(ctx, c)
	if err != nil {
		return res, err
	}
	profDone := make(chan error, 1)
	if profile != "" {
		go func() { profDone <- h.fetchProfile(ctx, profile, o.window-time.Second) }()
	} else {
		profDone <- nil
	}
	if err := sleepCtx(ctx, time.Until(s0.at.Add(o.window))); err != nil {
		return res, err
	}
	s1, err := h.take(ctx, c)
	if err != nil {
		return res, err
	}
	if err := client.Wait(o.window + 60*time.Second); err != nil {
		return res, fmt.Errorf("%s: %v: %s", client.Name, err, client.LogTail(800))
	}
	res.ClientCPU = client.CPUSeconds()
	if l.client == "loadgen" {
		var sr gen.Result
		if err := json.Unmarshal(bytes.TrimSpace(client.Stdout()), &sr); err != nil {
			return res, fmt.Errorf("%s: reading its report: %w", client.Name, err)
		}
		res.Sender = &sr
		if sr.WindowS > 0 {
			res.ClientMade = float64(sr.Generated) / sr.WindowS
		}
	}
	if err := <-profDone; err != nil {
		res.Notes = append(res.Notes, "profile: "+err.Error())
	}
	// What the pipeline still had in hand (batches, decisions pending decision_wait) lands.
	if err := sleepCtx(ctx, 3*time.Second); err != nil {
		return res, err
	}
	last, err := h.take(ctx, c)
	if err != nil {
		return res, err
	}
	_, hwm, err := procstat.Memory(c.proc.Pid())
	if err != nil {
		return res, err
	}
	accepted := itemsAccepted(l)
	wall := s1.at.Sub(s0.at).Seconds()
	res.WindowS = wall
	res.Items = accepted(s1.snap) - accepted(s0.snap)
	res.Accepted = res.Items / wall
	res.CPUSeconds = s1.cpu - s0.cpu
	if res.Items > 0 {
		res.CPUPerMillion = res.CPUSeconds / res.Items * 1e6
	}
	res.Cores = res.CPUSeconds / wall
	busy, idle := s1.machine.Busy-s0.machine.Busy, s1.machine.Idle-s0.machine.Idle
	if busy+idle > 0 {
		res.MachineIdle = idle / (busy + idle)
	}
	res.LoadAvg1 = loadAvg1()
	res.PeakRSSMiB = float64(hwm) / (1 << 20)
	res.Problems = last.snap.Problems(first.snap)
	if l.signal == "kernel" {
		refused := s1.snap.Sum("otelcol_receiver_ebpf_events_received", `event="tapio.network.connection_refused"`) -
			s0.snap.Sum("otelcol_receiver_ebpf_events_received", `event="tapio.network.connection_refused"`)
		res.Notes = append(res.Notes, fmt.Sprintf("%.0f kernel events/s accepted, %.0f/s of them connection_refused (any other is the machine's other work: every process on it is seen)", res.Accepted, refused/wall))
	}
	if mode == fixed {
		res.Sustained = res.Accepted >= 0.95*res.OfferedTarget
		if !res.Sustained {
			res.Notes = append(res.Notes, fmt.Sprintf("fixed rate not sustained: %.0f/s accepted of %.0f/s asked", res.Accepted, res.OfferedTarget))
		}
	}
	if err := c.stop(); err != nil {
		return res, err
	}
	return res, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func loadAvg1() float64 {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	var v float64
	fmt.Sscanf(string(raw), "%f", &v)
	return v
}
