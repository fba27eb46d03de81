package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/yairfalse/tapio/test/load/internal/child"
	"github.com/yairfalse/tapio/test/load/internal/gen"
	"github.com/yairfalse/tapio/test/load/internal/metrics"
	"github.com/yairfalse/tapio/test/load/internal/procstat"
)

type floodOptions struct {
	duration, recovery time.Duration
	factor             float64
}

// probeStats is what one endpoint answered while probed once a second.
type probeStats struct {
	URL          string  `json:"url"`
	Probes       int     `json:"probes"`
	Failures     int     `json:"failures"`
	MaxMs        float64 `json:"max_ms"`
	FirstFailure string  `json:"first_failure,omitempty"`
}

type floodCheck struct {
	Check  string `json:"check"`
	Passed bool   `json:"passed"`
	Detail string `json:"detail"`
}

type floodResult struct {
	Date            string          `json:"date"`
	Commit          string          `json:"commit"`
	LimitMiB        int             `json:"memory_limiter_limit_mib"`
	CollectorEnv    string          `json:"collector_env,omitempty"`
	CapacityPerS    float64         `json:"capacity_per_s"`
	OfferTargetPerS float64         `json:"offer_target_per_s"`
	OfferedPerS     float64         `json:"offered_per_s"`
	AcceptedPerS    float64         `json:"accepted_per_s"`
	Sender          gen.Result      `json:"sender"`
	SenderCPU       float64         `json:"sender_cpu_s"`
	HeapTop         string          `json:"heap_top,omitempty"`
	MaxRSSMiB       float64         `json:"max_rss_mib"`
	RSSSamples      int             `json:"rss_samples"`
	Probes          []*probeStats   `json:"probes"`
	FloodProblems   []metrics.Count `json:"flood_problems"`
	RecoveryRate    float64         `json:"recovery_rate_per_s"`
	RecoveredAfterS float64         `json:"recovered_after_s"` // -1: not within the bound
	RecoveryLog     []string        `json:"recovery_seconds"`
	RecoveryProbs   []metrics.Count `json:"recovery_problems"`
	RecoverySender  *gen.Result     `json:"recovery_sender,omitempty"`
	Checks          []floodCheck    `json:"checks"`
}

// shippedLimitMiB reads memory_limiter's limit_mib from the shipped config: the flood checks RSS
// against what ships, and refuses to run against a limit that is not explicit.
func shippedLimitMiB(path string) (int, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	var cfg struct {
		Processors map[string]struct {
			LimitMiB int `yaml:"limit_mib"`
		} `yaml:"processors"`
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	ml, ok := cfg.Processors["memory_limiter"]
	if !ok || ml.LimitMiB <= 0 {
		return 0, fmt.Errorf("%s: processors.memory_limiter.limit_mib is not set; the flood needs an explicit limit", path)
	}
	return ml.LimitMiB, nil
}

// flood offers the Tapio pipeline factor × its measured capacity of error-storm traffic for the
// flood's duration, then healthy traffic, and checks that memory stayed under the limit, the
// health check and the impact API kept answering, and healthy traffic was accepted again.
func (h *harness) flood(ctx context.Context) int {
	o := h.opt
	res := floodResult{Date: time.Now().UTC().Format("2006-01-02 15:04 UTC"), Commit: o.commit, RecoveredAfterS: -1}
	limit, err := shippedLimitMiB(o.shipped)
	if err != nil {
		fatal(err)
	}
	res.LimitMiB = limit
	res.CollectorEnv = o.collectorEnv
	storm, _ := findLoad("storm")
	c, err := h.startCollector(ctx, "flood-tapio", collectorCPU, h.configs(storm, tapio), filepath.Join(o.out, "data", "flood-tapio"))
	if err != nil {
		fatal(err)
	}
	defer c.proc.Stop(20 * time.Second)
	accepted := itemsAccepted(storm)

	// Capacity: the most the pipeline accepted from the closed-loop generator, as the load test's
	// unlimited runs measure it.
	step(fmt.Sprintf("capacity: unlimited error storm, %s", o.window))
	capArgv := []string{o.loadgen, "-raw", "-endpoint", h.addr(h.ports.grpc), "-mix", "storm", "-rate", "0", "-warmup", o.warmup.String(), "-duration", o.window.String(), "-workers", "16"}
	var capRes gen.Result
	a, b, err := h.measure(ctx, c, "flood-capacity", capArgv, o.warmup, o.window, &capRes)
	if err != nil {
		fatal(err)
	}
	res.CapacityPerS = (accepted(b.snap) - accepted(a.snap)) / b.at.Sub(a.at).Seconds()
	res.OfferTargetPerS = o.flood.factor * res.CapacityPerS

	// Probes and RSS, every second, from now to the end.
	probes := []*probeStats{
		{URL: "http://" + h.addr(h.ports.health) + "/"},
		{URL: "http://" + h.addr(h.ports.api) + "/healthz"},
		{URL: "http://" + h.addr(h.ports.api) + "/api/v1/incidents?limit=1"},
	}
	res.Probes = probes
	probeCtx, stopProbes := context.WithCancel(ctx)
	var probing sync.WaitGroup
	for _, p := range probes {
		probing.Add(1)
		go func() { defer probing.Done(); probe(probeCtx, p) }()
	}
	var rssMu sync.Mutex
	probing.Add(1)
	go func() {
		defer probing.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			if rss, _, err := procstat.Memory(c.proc.Pid()); err == nil {
				rssMu.Lock()
				res.RSSSamples++
				res.MaxRSSMiB = max(res.MaxRSSMiB, float64(rss)/(1<<20))
				rssMu.Unlock()
			}
			select {
			case <-probeCtx.Done():
				return
			case <-t.C:
			}
		}
	}()

	// The flood: open loop, so the offer does not slow down with the collector.
	step(fmt.Sprintf("flood: %s spans/s offered (%.0f× the capacity of %s/s) for %s", thousands(res.OfferTargetPerS), o.flood.factor, thousands(res.CapacityPerS), o.flood.duration))
	beforeFlood, err := h.take(ctx, c)
	if err != nil {
		fatal(err)
	}
	// The flood client is not pinned: offering ten times what the collector takes needs more than
	// one core, and a flood is an overloaded machine anyway. An Export call gives up after 2 s, as
	// an impatient client does, so that calls the collector holds do not cap the offer; the calls
	// in flight are as many as 2 s of the offer needs, twice over (calls last their 2 s and more;
	// a faster collector needs a bigger flood: at 3 M spans/s that is some 2 GiB of requests in
	// the client). Its batches are 1 024 spans, twice an SDK's: with 512 the client's own CPU ran
	// out at 9.8× a collector of 367 k spans/s (the offer is spans, and an agent collector in
	// front of a gateway sends bigger batches still).
	const floodWorkers, floodBatch, floodTimeout = 32, 1024, 2.0
	// The client is asked 10 % over the target: pacing on a machine the collector keeps busy loses
	// some of what it is asked (6 % at 3.5 M spans/s).
	const floodAsk = 1.10
	inFlight := max(256, int(math.Ceil(2*floodAsk*res.OfferTargetPerS*floodTimeout/(floodWorkers*floodBatch))))
	floodArgv := []string{o.loadgen, "-raw", "-open-loop", "-max-in-flight", strconv.Itoa(inFlight), "-batch", strconv.Itoa(floodBatch), "-export-timeout", "2s", "-endpoint", h.addr(h.ports.grpc), "-mix", "storm",
		"-rate", strconv.FormatFloat(floodAsk*res.OfferTargetPerS, 'f', 0, 64), "-warmup", "0s", "-duration", o.flood.duration.String(), "-workers", strconv.Itoa(floodWorkers)}
	fl, err := child.Start(child.Spec{Name: "flood-client", Argv: floodArgv, LogPath: filepath.Join(o.out, "logs", "flood-client.log"), Capture: true})
	if err != nil {
		fatal(err)
	}
	// Where the memory is, half-way through: the heap profile of the pprof extension.
	heapPath := filepath.Join(o.out, "flood-heap.pprof")
	heapDone := make(chan error, 1)
	go func() {
		if err := sleepCtx(ctx, o.flood.duration/2); err != nil {
			heapDone <- err
			return
		}
		heapDone <- h.fetch(ctx, "http://"+h.addr(h.ports.pprof)+"/debug/pprof/heap", heapPath)
	}()
	if err := fl.Wait(o.flood.duration + 90*time.Second); err != nil {
		fatal(fmt.Errorf("flood client: %v: %s", err, fl.LogTail(800)))
	}
	floodEnd := time.Now()
	res.SenderCPU = fl.CPUSeconds()
	if err := <-heapDone; err != nil {
		res.HeapTop = "heap profile not taken: " + err.Error()
	} else if top, err := pprofTopOf(heapPath, o.collector, "-sample_index=inuse_space", "-cum"); err != nil {
		res.HeapTop = "heap profile not read: " + err.Error()
	} else {
		res.HeapTop = top
	}
	if err := json.Unmarshal(bytes.TrimSpace(fl.Stdout()), &res.Sender); err != nil {
		fatal(fmt.Errorf("flood client report: %w", err))
	}
	afterFlood, err := h.take(ctx, c)
	if err != nil {
		fatal(err)
	}
	res.OfferedPerS = float64(res.Sender.Sent+res.Sender.Failed) / res.Sender.WindowS
	res.AcceptedPerS = (accepted(afterFlood.snap) - accepted(beforeFlood.snap)) / afterFlood.at.Sub(beforeFlood.at).Seconds()
	res.FloodProblems = afterFlood.snap.Problems(beforeFlood.snap)

	// Recovery: healthy traffic at a rate well inside the capacity, accepted with no refusal.
	res.RecoveryRate = min(o.rate, res.CapacityPerS/2)
	step(fmt.Sprintf("recovery: healthy traffic at %s spans/s, within %s", thousands(res.RecoveryRate), o.flood.recovery))
	healthy, _ := findLoad("healthy")
	recArgv := []string{o.loadgen, "-endpoint", h.addr(h.ports.grpc), "-mix", healthy.mix, "-rate", strconv.FormatFloat(res.RecoveryRate, 'f', 0, 64),
		"-warmup", "0s", "-duration", (o.flood.recovery + 5*time.Second).String(), "-workers", "4"}
	rc, err := child.Start(child.Spec{Name: "recovery-client", Argv: recArgv, CPUs: clientCPU, LogPath: filepath.Join(o.out, "logs", "recovery-client.log"), Capture: true})
	if err != nil {
		fatal(err)
	}
	prev := afterFlood
	good := 0
	for time.Since(floodEnd) < o.flood.recovery+5*time.Second && !rc.Exited() {
		if err := sleepCtx(ctx, time.Until(prev.at.Add(time.Second))); err != nil {
			fatal(err)
		}
		cur, err := h.take(ctx, c)
		if err != nil {
			fatal(err)
		}
		dt := cur.at.Sub(prev.at).Seconds()
		rate := (accepted(cur.snap) - accepted(prev.snap)) / dt
		refused := refusals(cur.snap.Problems(prev.snap))
		res.RecoveryLog = append(res.RecoveryLog, fmt.Sprintf("+%.0f s: %s spans/s accepted, %s refused", cur.at.Sub(floodEnd).Seconds(), thousands(rate), thousands(refused)))
		if refused == 0 && rate >= 0.8*res.RecoveryRate {
			good++
		} else {
			good = 0
		}
		if good == 3 && res.RecoveredAfterS < 0 {
			res.RecoveredAfterS = cur.at.Add(-3 * time.Second).Sub(floodEnd).Seconds()
		}
		prev = cur
	}
	if err := rc.Wait(60 * time.Second); err == nil {
		var rr gen.Result
		if json.Unmarshal(bytes.TrimSpace(rc.Stdout()), &rr) == nil {
			res.RecoverySender = &rr
		}
	}
	end, err := h.take(ctx, c)
	if err != nil {
		fatal(err)
	}
	res.RecoveryProbs = end.snap.Problems(afterFlood.snap)
	stopProbes()
	probing.Wait()
	survived := !c.proc.Exited()
	stopErr := c.stop()

	add := func(name string, ok bool, detail string) {
		res.Checks = append(res.Checks, floodCheck{Check: name, Passed: ok, Detail: detail})
	}
	add("offered ≥ factor × capacity", res.OfferedPerS >= o.flood.factor*res.CapacityPerS,
		fmt.Sprintf("%s spans/s offered (in Export calls), %.1f× the capacity of %s/s; %s more shed in the client", thousands(res.OfferedPerS), div(res.OfferedPerS, res.CapacityPerS), thousands(res.CapacityPerS), thousands(float64(res.Sender.NotOffered))))
	add("RSS stayed under limit_mib", res.MaxRSSMiB < float64(limit), fmt.Sprintf("max VmRSS %.0f MiB of %d MiB over %d samples", res.MaxRSSMiB, limit, res.RSSSamples))
	for _, p := range probes {
		add("answered every probe: "+p.URL, p.Failures == 0 && p.Probes > 0, fmt.Sprintf("%d probes, %d failed, max %.0f ms %s", p.Probes, p.Failures, p.MaxMs, p.FirstFailure))
	}
	recDetail := "not recovered"
	if res.RecoveredAfterS >= 0 {
		recDetail = fmt.Sprintf("recovered %.0f s after the flood ended", res.RecoveredAfterS)
	}
	add(fmt.Sprintf("healthy load accepted again, refusal-free, within %s", o.flood.recovery), res.RecoveredAfterS >= 0 && res.RecoveredAfterS <= o.flood.recovery.Seconds(), recDetail)
	stopDetail := "exited cleanly on SIGTERM"
	if stopErr != nil {
		stopDetail = stopErr.Error()
	}
	add("collector survived and shut down cleanly", survived && stopErr == nil, stopDetail)

	md := res.markdown()
	fmt.Print(md)
	if err := os.WriteFile(filepath.Join(o.out, "flood.md"), []byte(md), 0o644); err != nil {
		fatal(err)
	}
	raw, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile(filepath.Join(o.out, "flood.json"), raw, 0o644); err != nil {
		fatal(err)
	}
	for _, ch := range res.Checks {
		if !ch.Passed {
			return 1
		}
	}
	return 0
}

func step(s string) { fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), s) }

// refusals adds the counters that say data was turned away (refused, at the receiver or by the
// memory limiter).
func refusals(counts []metrics.Count) float64 {
	var n float64
	for _, c := range counts {
		if strings.Contains(c.Series, "refused") {
			n += c.Delta
		}
	}
	return n
}

// measure runs a client and reads the collector at the start and the end of its window.
func (h *harness) measure(ctx context.Context, c *collectorRun, name string, argv []string, warmup, window time.Duration, out *gen.Result) (sample, sample, error) {
	cl, err := child.Start(child.Spec{Name: name, Argv: argv, CPUs: clientCPU, LogPath: filepath.Join(h.opt.out, "logs", name+".log"), Capture: true})
	if err != nil {
		return sample{}, sample{}, err
	}
	defer cl.Stop(5 * time.Second)
	begin := time.Now()
	if err := sleepCtx(ctx, time.Until(begin.Add(warmup))); err != nil {
		return sample{}, sample{}, err
	}
	a, err := h.take(ctx, c)
	if err != nil {
		return a, a, err
	}
	if err := sleepCtx(ctx, window); err != nil {
		return a, a, err
	}
	b, err := h.take(ctx, c)
	if err != nil {
		return a, b, err
	}
	if err := cl.Wait(window + 60*time.Second); err != nil {
		return a, b, fmt.Errorf("%s: %v: %s", name, err, cl.LogTail(800))
	}
	return a, b, json.Unmarshal(bytes.TrimSpace(cl.Stdout()), out)
}

// probe GETs p.URL once a second until ctx ends. A failure is an error, a status other than
// 200, or no answer within two seconds.
func probe(ctx context.Context, p *probeStats) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		code, took, err := get(ctx, p.URL, 2*time.Second)
		if ctx.Err() != nil {
			return
		}
		p.Probes++
		p.MaxMs = max(p.MaxMs, float64(took.Microseconds())/1e3)
		if err != nil || code != http.StatusOK {
			p.Failures++
			if p.FirstFailure == "" {
				if err != nil {
					p.FirstFailure = "(first: " + err.Error() + ")"
				} else {
					p.FirstFailure = fmt.Sprintf("(first: HTTP %d)", code)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *floodResult) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "## otelcol-tapio flood — %s, commit %s\n\n", r.Date, r.Commit)
	env := ""
	if r.CollectorEnv != "" {
		env = ", collector environment " + r.CollectorEnv
	}
	fmt.Fprintf(&b, "Tapio pipeline (shipped standalone config, memory_limiter limit_mib %d%s), error-storm traffic. Capacity (closed-loop, unlimited): %s spans/s. Flood: open loop, %s spans/s asked, %s spans/s offered in Export calls, %s spans/s accepted.\n\n",
		r.LimitMiB, env, thousands(r.CapacityPerS), thousands(r.OfferTargetPerS), thousands(r.OfferedPerS), thousands(r.AcceptedPerS))
	b.WriteString("| check | result | detail |\n|---|---|---|\n")
	for _, c := range r.Checks {
		m := "✓"
		if !c.Passed {
			m = "✗"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", c.Check, m, c.Detail)
	}
	s := r.Sender
	fmt.Fprintf(&b, "\nFlood sender (%.0f CPU-s over the flood): %s spans sent, %s failed %s, %s shed in the client (in-flight cap), %d Export calls, latency p50 / p99 / max %.0f / %.0f / %.0f ms.\n",
		r.SenderCPU, thousands(float64(s.Sent)), thousands(float64(s.Failed)), failures(s.Failed, s.Failures), thousands(float64(s.NotOffered)), s.Exports, s.LatencyMs.P50, s.LatencyMs.P99, s.LatencyMs.Max)
	b.WriteString("\nRefusals, drops, evictions, failures during the flood (collector self-telemetry):\n\n")
	writeCounts(&b, r.FloodProblems)
	b.WriteString("\nDuring the recovery:\n\n")
	writeCounts(&b, r.RecoveryProbs)
	if rs := r.RecoverySender; rs != nil {
		fmt.Fprintf(&b, "\nRecovery sender: %s spans sent, %s failed %s, p99 %.1f ms.\n", thousands(float64(rs.Sent)), thousands(float64(rs.Failed)), failures(rs.Failed, rs.Failures), rs.LatencyMs.P99)
	}
	b.WriteString("\nRecovery, second by second:\n\n")
	for _, l := range r.RecoveryLog {
		b.WriteString("- " + l + "\n")
	}
	if r.HeapTop != "" {
		fmt.Fprintf(&b, "\nCollector heap half-way through the flood (in use, cumulative):\n\n```\n%s\n```\n", r.HeapTop)
	}
	return b.String()
}

func writeCounts(b *strings.Builder, counts []metrics.Count) {
	if len(counts) == 0 {
		b.WriteString("- none\n")
	}
	for _, c := range counts {
		fmt.Fprintf(b, "- `%s` +%s\n", c.Series, thousands(c.Delta))
	}
}
