package main

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/yairfalse/tapio/test/load/internal/gen"
)

// loadResult is one load's runs: pass-through and Tapio, at the fixed rate, senders and capacity.
type loadResult struct {
	Load   string      `json:"load"`
	About  string      `json:"about"`
	Signal string      `json:"signal"`
	Client string      `json:"client"`
	Target string      `json:"target,omitempty"`
	Runs   []runResult `json:"runs"`
	Ratios []ratio     `json:"ratios"`
	// NoCapacity says why the load has no capacity runs.
	NoCapacity string `json:"no_capacity,omitempty"`
	// Paired: the two pipelines' fixed-rate runs ran at the same time (-paired).
	Paired bool `json:"paired,omitempty"`
	// PairedSenders: the two pipelines' senders runs ran at the same time (-paired-senders).
	PairedSenders bool `json:"paired_senders,omitempty"`
}

// ratio is Tapio's figure over pass-through's, with the target it is held to (if any).
type ratio struct {
	What   string  `json:"what"`
	Value  float64 `json:"value"`
	Bound  string  `json:"bound,omitempty"` // "≤ 1.1", "≥ 0.95"
	Passed *bool   `json:"passed,omitempty"`
	Note   string  `json:"note,omitempty"`
	// Rounds are the round-by-round ratios, when the runs were repeated.
	Rounds []float64 `json:"rounds,omitempty"`
}

type meta struct {
	Date        string  `json:"date"`
	Commit      string  `json:"commit"`
	CPUs        int     `json:"cpus"`
	CPUModel    string  `json:"cpu_model"`
	Kernel      string  `json:"kernel"`
	Go          string  `json:"go"`
	LoadAvgAtGo float64 `json:"loadavg_1m_at_start"`
	Rate        float64 `json:"fixed_rate_per_s"`
	KernelRate  float64 `json:"kernel_fixed_rate_per_s"`
	WarmupS     float64 `json:"warmup_s"`
	WindowS     float64 `json:"window_s"`
	DurationS   float64 `json:"duration_s"`
	Repeat      int     `json:"repeat"`
	// TapioOverlay is an experiment's config merged over the shipped one; empty: what ships.
	TapioOverlay string `json:"tapio_overlay,omitempty"`
}

type report struct {
	Meta    meta         `json:"meta"`
	Targets []string     `json:"targets"`
	Loads   []loadResult `json:"loads"`
	Skipped []string     `json:"skipped,omitempty"`
	Missed  int          `json:"targets_missed"`
	Profile string       `json:"profile_top,omitempty"`
	// ProfileShares is the share of the profile's CPU under each part of the pipeline.
	ProfileShares []share `json:"profile_shares,omitempty"`
	ProfilePath   string  `json:"profile_path,omitempty"`
	ProfileMode   string  `json:"profile_mode,omitempty"`
	ProfileLoad   string  `json:"profile_load,omitempty"`
}

// targets, as issue 11 states them.
var targets = []string{
	"CPU per item at the fixed rate, Tapio / pass-through: ≤ 1.1× healthy, ≤ 1.3× error storm",
	"sender p99 export latency at the fixed rate, Tapio / pass-through: ≤ 2×",
	"highest sustained rate in the error storm, Tapio / pass-through: ≥ 0.95×",
}

// collectorBound: a collector using less than this share of its core was held back by the
// client or the machine, not by its own work.
const collectorBound = 0.85

func machineMeta(o options) meta {
	m := meta{Date: time.Now().UTC().Format("2006-01-02 15:04 UTC"), Commit: o.commit, TapioOverlay: o.tapioOverlay, CPUs: runtime.NumCPU(), Go: runtime.Version(),
		LoadAvgAtGo: loadAvg1(), Rate: o.rate, KernelRate: o.kernelRate, WarmupS: o.warmup.Seconds(), WindowS: o.window.Seconds(), Repeat: max(o.repeat, 1)}
	if raw, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(raw))
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	return m
}

// run is the median run of a pipeline in a mode over the rounds: by CPU per item at the fixed
// rate, by accepted items/s otherwise. With an even number of rounds it is the lower middle one.
func (lr *loadResult) run(pipeline, mode string) *runResult {
	var runs []*runResult
	for i := range lr.Runs {
		if lr.Runs[i].Pipeline == pipeline && lr.Runs[i].Mode == mode {
			runs = append(runs, &lr.Runs[i])
		}
	}
	if len(runs) == 0 {
		return nil
	}
	key := func(r *runResult) float64 {
		if mode == fixed {
			return r.CPUPerMillion
		}
		return r.Accepted
	}
	slices.SortStableFunc(runs, func(a, b *runResult) int { return cmp.Compare(key(a), key(b)) })
	return runs[(len(runs)-1)/2]
}

// pairedRatio is a ratio of Tapio to pass-through: with several rounds, the median of the rounds'
// own ratios — each round's two runs ran back to back, so the machine's drift between rounds
// (seen here: pass-through's own rate moving by a tenth) cancels out in each — else the ratio of
// the single runs.
func pairedRatio(what string, single float64, rounds []float64) ratio {
	r := ratio{What: what, Value: single, Rounds: rounds}
	if len(rounds) > 1 {
		sorted := slices.Clone(rounds)
		slices.Sort(sorted)
		mid := len(sorted) / 2
		r.Value = sorted[mid]
		if len(sorted)%2 == 0 {
			r.Value = (sorted[mid-1] + sorted[mid]) / 2
		}
	}
	return r
}

// modeLabel is the run's mode, with its round when there were several.
func (r *runResult) modeLabel(rounds int) string {
	if rounds > 1 {
		return fmt.Sprintf("%s (round %d)", r.Mode, r.Round)
	}
	return r.Mode
}

// rounds is how many rounds the runs of the load came in.
func (lr *loadResult) rounds() int {
	n := 0
	for _, r := range lr.Runs {
		n = max(n, r.Round)
	}
	return n
}

// roundRatios lists, round by round, Tapio's value over pass-through's in a mode, the value that
// of reads from a run (CPU per item, the sender's p99, accepted items): the spread the median
// hides.
func (lr *loadResult) roundRatios(mode string, of func(*runResult) float64) []float64 {
	var out []float64
	for round := 1; round <= lr.rounds(); round++ {
		var p, t *runResult
		for i := range lr.Runs {
			r := &lr.Runs[i]
			if r.Round != round || r.Mode != mode {
				continue
			}
			if r.Pipeline == passThrough {
				p = r
			} else {
				t = r
			}
		}
		if p == nil || t == nil || of(p) == 0 {
			continue
		}
		out = append(out, div(of(t), of(p)))
	}
	return out
}

func cpuPerMillion(r *runResult) float64 { return r.CPUPerMillion }
func accepted(r *runResult) float64      { return r.Accepted }

// senderP99 is the p99 of the client's Export calls, 0 where the client does not measure it.
func senderP99(r *runResult) float64 {
	if r.Sender == nil {
		return 0
	}
	return r.Sender.LatencyMs.P99
}

func check(v float64, le bool, bound float64) *bool {
	ok := v <= bound
	if !le {
		ok = v >= bound
	}
	return &ok
}

// evaluate computes each load's ratios and checks them against the targets.
func (r *report) evaluate() {
	r.Missed = 0
	for i := range r.Loads {
		lr := &r.Loads[i]
		lr.Ratios = nil
		pf, tf := lr.run(passThrough, fixed), lr.run(tapio, fixed)
		pu, tu := lr.run(passThrough, unlimited), lr.run(tapio, unlimited)
		ps, ts := lr.run(passThrough, senders), lr.run(tapio, senders)
		if lr.Signal == "kernel" {
			// The connecting processes flat out are the kernel load's senders.
			ps, ts = pu, tu
		}
		if pf != nil && tf != nil {
			lr.Ratios = append(lr.Ratios, fixedRatios(lr, pf, tf)...)
		}
		if ps != nil && ts != nil {
			maxRate := pairedRatio("highest sustained rate (senders)", div(ts.Accepted, ps.Accepted), lr.roundRatios(senders, accepted))
			if lr.Target == "storm" {
				maxRate.Bound, maxRate.Passed = "≥ 0.95", check(maxRate.Value, false, 0.95)
			}
			lr.Ratios = append(lr.Ratios, maxRate)
		}
		if pu != nil && tu != nil && lr.Signal != "kernel" {
			capacity := ratio{What: "capacity on one core", Value: div(tu.Accepted, pu.Accepted),
				Note: fmt.Sprintf("on a saturated core the rate ratio is about the inverse of the CPU per item ratio (here %.2f×, so %.2f×)", div(tu.CPUPerMillion, pu.CPUPerMillion), div(pu.CPUPerMillion, tu.CPUPerMillion))}
			if pu.Cores < collectorBound || tu.Cores < collectorBound {
				capacity.Note = fmt.Sprintf("the collectors used %.2f (pass-through) and %.2f (Tapio) of their core: a rate is the collector's own limit only near 1; below, the client or the machine's other work held it back", pu.Cores, tu.Cores)
			}
			lr.Ratios = append(lr.Ratios, capacity)
		}
		switch {
		case pu != nil && tu != nil:
			lr.Ratios = append(lr.Ratios, ratio{What: "peak RSS (capacity)", Value: div(tu.PeakRSSMiB, pu.PeakRSSMiB)})
		case ps != nil && ts != nil:
			lr.Ratios = append(lr.Ratios, ratio{What: "peak RSS (senders)", Value: div(ts.PeakRSSMiB, ps.PeakRSSMiB)})
		case pf != nil && tf != nil:
			lr.Ratios = append(lr.Ratios, ratio{What: "peak RSS (fixed)", Value: div(tf.PeakRSSMiB, pf.PeakRSSMiB)})
		}
		for _, x := range lr.Ratios {
			if x.Passed != nil && !*x.Passed {
				r.Missed++
			}
		}
	}
}

// fixedRatios are a load's ratios at the fixed rate: CPU per item, and the senders' p99 latency
// where the client measures it.
func fixedRatios(lr *loadResult, pf, tf *runResult) []ratio {
	cpu := pairedRatio("CPU per item (fixed rate)", div(tf.CPUPerMillion, pf.CPUPerMillion), lr.roundRatios(fixed, cpuPerMillion))
	switch lr.Target {
	case "healthy":
		cpu.Bound, cpu.Passed = "≤ 1.1", check(cpu.Value, true, 1.1)
	case "storm":
		cpu.Bound, cpu.Passed = "≤ 1.3", check(cpu.Value, true, 1.3)
	}
	if !pf.Sustained || !tf.Sustained {
		cpu.Note = "fixed rate not sustained by both"
	}
	out := []ratio{cpu}
	if pf.Sender != nil && tf.Sender != nil && lr.Signal != "kernel" {
		p99 := pairedRatio("sender p99 (fixed rate)", div(senderP99(tf), senderP99(pf)), lr.roundRatios(fixed, senderP99))
		p99.Bound, p99.Passed = "≤ 2", check(p99.Value, true, 2)
		out = append(out, p99)
	}
	return out
}

func div(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func mark(x ratio) string {
	s := fmt.Sprintf("%.2f×", x.Value)
	if x.Passed != nil {
		m := "✓"
		if !*x.Passed {
			m = "✗"
		}
		s += fmt.Sprintf(" %s (%s)", m, x.Bound)
	}
	return s
}

func (lr *loadResult) ratioOf(what string) string {
	for _, x := range lr.Ratios {
		if strings.HasPrefix(x.What, what) {
			return mark(x)
		}
	}
	return "—"
}

func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func p99(r *runResult) string {
	if r == nil || r.Sender == nil || r.Sender.Exports == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f", r.Sender.LatencyMs.P99)
}

func (r *report) markdown() string {
	var b strings.Builder
	m := r.Meta
	fmt.Fprintf(&b, "## otelcol-tapio under load — %s, commit %s\n\n", m.Date, m.Commit)
	fmt.Fprintf(&b, "Machine: %d CPUs (%s), Linux %s, %s. Load average when the run began: %.2f. Took %.0f s.\n",
		m.CPUs, m.CPUModel, m.Kernel, m.Go, m.LoadAvgAtGo, m.DurationS)
	if m.TapioOverlay != "" {
		fmt.Fprintf(&b, "**Not the shipped pipeline**: %s merged over it.\n", m.TapioOverlay)
	}
	if m.Repeat > 1 {
		fmt.Fprintf(&b, "Every run was repeated %d times, the rounds one after the other, each round's pass-through and Tapio runs back to back (or side by side: paired). The tables show the median run of each pipeline and mode (the senders table lists them all); the targeted ratios (CPU per item, senders' rate) are the median of the rounds' own ratios, listed under the table.\n", m.Repeat)
	}
	fmt.Fprintf(&b, "Fixed-rate and capacity runs: collector pinned to CPU %s, load generator to CPU %s. Senders runs: %d SDK workers flat out, nothing pinned. Each run: %g s warm-up, then a %g s window. Fixed rate %s items/s (kernel load: %s connects/s).\n\n",
		collectorCPU, clientCPU, sendersWorkers, m.WarmupS, m.WindowS, thousands(m.Rate), thousands(m.KernelRate))
	var paired, pairedSenders []string
	for _, lr := range r.Loads {
		if lr.Paired {
			paired = append(paired, lr.Load)
		}
		if lr.PairedSenders {
			pairedSenders = append(pairedSenders, lr.Load)
		}
	}
	if len(paired) > 0 {
		fmt.Fprintf(&b, "Paired fixed-rate runs (%s): pass-through and Tapio at the same time, both collectors on CPU %s, both clients on CPU %s, so that the machine's drift weighs on both alike.\n\n", strings.Join(paired, ", "), collectorCPU, clientCPU)
	}
	if len(pairedSenders) > 0 {
		fmt.Fprintf(&b, "Paired senders runs (%s): pass-through and Tapio at the same time, each with its own %d SDK workers, nothing pinned: both pairs share the machine and its drift. A collector that answers later hands the CPU its waiting senders leave to the other pair, so a difference shows larger than one after the other, not smaller.\n\n", strings.Join(pairedSenders, ", "), sendersWorkers)
	}
	b.WriteString("| load | pipeline | fixed: accepted/s | CPU-s per 1M items | sender p99 ms | senders: accepted/s (collector cores) | capacity on one core: accepted/s (cores) | peak RSS MiB (fixed / senders / capacity) | refused, dropped, evicted, failed | machine idle (fixed / senders / capacity) |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for i := range r.Loads {
		lr := &r.Loads[i]
		for _, p := range []string{passThrough, tapio} {
			f, s, u := lr.run(p, fixed), lr.run(p, senders), lr.run(p, unlimited)
			if lr.Signal == "kernel" {
				s = u // the connecting processes flat out are the kernel load's senders
			}
			if f == nil && s == nil && u == nil {
				continue
			}
			rate := func(r *runResult) string {
				if r == nil {
					return "—"
				}
				return fmt.Sprintf("%s (%.2f)", thousands(r.Accepted), r.Cores)
			}
			// A run left out by -modes shows as "—".
			fixedRate, cpu, latency, rss, idle, problems := "—", "—", "—", "—", "—", 0.0
			if f != nil {
				fixedRate, cpu, latency = thousands(f.Accepted), fmt.Sprintf("%.2f", f.CPUPerMillion), p99(f)
				if !f.Sustained {
					fixedRate += " (not sustained)"
				}
				rss, idle = fmt.Sprintf("%.0f", f.PeakRSSMiB), fmt.Sprintf("%.0f %%", 100*f.MachineIdle)
				problems = f.problemTotal() + senderFailed(f)
			}
			for _, r := range []*runResult{s, u} {
				if r == nil || (r == u && lr.Signal == "kernel") {
					rss, idle = rss+" / —", idle+" / —"
					continue
				}
				rss += fmt.Sprintf(" / %.0f", r.PeakRSSMiB)
				idle += fmt.Sprintf(" / %.0f %%", 100*r.MachineIdle)
				problems += r.problemTotal() + senderFailed(r)
			}
			name := ""
			if p == passThrough {
				name = "**" + lr.Load + "**"
			}
			capacity := rate(u)
			if lr.Signal == "kernel" {
				capacity = "(senders)"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
				name, p, fixedRate, cpu, latency, rate(s), capacity, rss, thousands(problems), idle)
		}
		fmt.Fprintf(&b, "| | *Tapio / pass-through* | | %s | %s | %s | %s | %s | | |\n",
			lr.ratioOf("CPU per item"), lr.ratioOf("sender p99"), lr.ratioOf("highest sustained"), lr.ratioOf("capacity"), lr.ratioOf("peak RSS"))
	}
	b.WriteString("\nTargets: " + strings.Join(r.Targets, "; ") + ".")
	fmt.Fprintf(&b, " Missed: %d.\n", r.Missed)
	for _, s := range r.Skipped {
		fmt.Fprintf(&b, "\nSkipped: %s\n", s)
	}
	b.WriteString("\n### Loads\n\n")
	for _, lr := range r.Loads {
		fmt.Fprintf(&b, "- **%s** (%s): %s\n", lr.Load, lr.Client, lr.About)
	}
	b.WriteString("\n### Notes on the ratios\n\n")
	any := false
	for _, lr := range r.Loads {
		if lr.NoCapacity != "" {
			fmt.Fprintf(&b, "- %s: no capacity runs: %s\n", lr.Load, lr.NoCapacity)
			any = true
		}
		for _, x := range lr.Ratios {
			if x.Note != "" {
				fmt.Fprintf(&b, "- %s, %s: %s\n", lr.Load, x.What, x.Note)
				any = true
			}
			if len(x.Rounds) > 1 {
				each := make([]string, len(x.Rounds))
				for i, v := range x.Rounds {
					each[i] = fmt.Sprintf("%.2f×", v)
				}
				fmt.Fprintf(&b, "- %s, %s: round by round %s; the table's ratio is their median\n", lr.Load, x.What, strings.Join(each, ", "))
				any = true
			}
		}
		for _, run := range lr.Runs {
			for _, n := range run.Notes {
				fmt.Fprintf(&b, "- %s, %s %s: %s\n", lr.Load, run.Pipeline, run.Mode, n)
				any = true
			}
		}
	}
	if !any {
		b.WriteString("- none\n")
	}
	b.WriteString("\n### Senders\n\nThe generator's own CPU is its whole run's (warm-up included), on its own CPU.\n\n| load | pipeline | mode | made/s | sent | failed (by gRPC code) | exports | p50 / p99 / max ms | generator CPU-s |\n|---|---|---|--:|--:|---|--:|---|--:|\n")
	for _, lr := range r.Loads {
		for _, run := range lr.Runs {
			s := run.Sender
			if s == nil {
				fmt.Fprintf(&b, "| %s | %s | %s | telemetrygen reports neither latency nor its SDK's drops | | | | | %.1f |\n", lr.Load, run.Pipeline, run.modeLabel(lr.rounds()), run.ClientCPU)
				continue
			}
			if s.Connects != nil {
				fmt.Fprintf(&b, "| %s | %s | %s | %s connects | %d refused | %d other errors | | | %.1f |\n", lr.Load, run.Pipeline, run.modeLabel(lr.rounds()),
					thousands(run.ClientMade), s.Connects.Refused, s.Connects.Other, run.ClientCPU)
				continue
			}
			fmt.Fprintf(&b, "| %s | %s | %s%s | %s | %s | %s | %d | %.1f / %.1f / %.1f | %.1f |\n", lr.Load, run.Pipeline, run.modeLabel(lr.rounds()), rawMark(s),
				thousands(run.ClientMade), thousands(float64(s.Sent)), failures(s.Failed, s.Failures), s.Exports, s.LatencyMs.P50, s.LatencyMs.P99, s.LatencyMs.Max, run.ClientCPU)
		}
	}
	b.WriteString("\n### Refusals, drops, evictions, failures (collector self-telemetry, whole run)\n\n")
	any = false
	for _, lr := range r.Loads {
		for _, run := range lr.Runs {
			for _, p := range run.Problems {
				fmt.Fprintf(&b, "- %s, %s %s: `%s` +%s\n", lr.Load, run.Pipeline, run.Mode, p.Series, thousands(p.Delta))
				any = true
			}
		}
	}
	if !any {
		b.WriteString("- none\n")
	}
	if r.Profile != "" {
		fmt.Fprintf(&b, "\n### Where Tapio spends CPU under %s (%s, pprof, %s)\n\n", r.ProfileLoad, r.ProfileMode, r.ProfilePath)
		if len(r.ProfileShares) > 0 {
			b.WriteString("| part of the pipeline | share of the collector's CPU |\n|---|--:|\n")
			for _, sh := range r.ProfileShares {
				fmt.Fprintf(&b, "| %s | %.1f %% |\n", sh.Part, sh.Percent)
			}
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "```\n%s\n```\n", r.Profile)
	}
	return b.String()
}

func rawMark(s *gen.Result) string {
	if strings.HasSuffix(s.Mix, "(raw)") {
		return " (raw OTLP)"
	}
	return ""
}

func senderFailed(r *runResult) float64 {
	if r.Sender == nil {
		return 0
	}
	return float64(r.Sender.Failed)
}

func failures(n int64, by map[string]int64) string {
	if n == 0 {
		return "0"
	}
	var parts []string
	for k, v := range by {
		parts = append(parts, fmt.Sprintf("%s %s", k, thousands(float64(v))))
	}
	return thousands(float64(n)) + " (" + strings.Join(parts, ", ") + ")"
}

// fetchProfile takes a CPU profile of d from the collector's pprof extension.
func (h *harness) fetchProfile(ctx context.Context, path string, d time.Duration) error {
	return h.fetch(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", h.addr(h.ports.pprof), int(d.Seconds())), path)
}

// fetch saves what url answers to path.
func (h *harness) fetch(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// pprofTop is the top of a CPU profile, by flat and by cumulative time.
func pprofTop(path, binary string) (string, error) {
	flat, err := pprofTopOf(path, binary, "-flat")
	if err != nil {
		return "", err
	}
	cum, err := pprofTopOf(path, binary, "-cum")
	if err != nil {
		return "", err
	}
	return flat + "\n\n" + cum, nil
}

// share is the part of a CPU profile spent under one part of the pipeline (cumulative: what it
// calls is in it).
type share struct {
	Part    string  `json:"part"`
	Focus   string  `json:"focus"`
	Percent float64 `json:"percent"`
}

var profileParts = []share{
	{Part: "OTLP/gRPC decode of requests", Focus: `otelgrpc\.\(\*codecV2\)\.Unmarshal`},
	{Part: "unifiedevent processor (annotating spans in place)", Focus: `unifiedeventprocessor\.`},
	{Part: "correlation connector", Focus: `correlationconnector\.`},
	{Part: "impact exporter (scoring, bbolt, API)", Focus: `impactexporter\.`},
	{Part: "memory_limiter processor", Focus: `memorylimiterprocessor\.`},
	{Part: "garbage collector (background marking)", Focus: `runtime\.gcBgMarkWorker`},
	{Part: "self-telemetry (metrics SDK)", Focus: `go\.opentelemetry\.io/otel/sdk/metric\.`},
}

// profileShares reads, for each part, the share of samples with a frame of it: with -focus, the
// top cumulative row is every such sample.
func profileShares(path, binary string) []share {
	var out []share
	for _, p := range profileParts {
		raw, err := exec.Command("go", "tool", "pprof", "-top", "-cum", "-nodecount=1", "-focus="+p.Focus, binary, path).CombinedOutput()
		if err != nil {
			continue
		}
		p.Percent = firstCumPercent(string(raw))
		out = append(out, p)
	}
	return out
}

// firstCumPercent is the cum% of the first row of a pprof -top table.
func firstCumPercent(top string) float64 {
	rows := false
	for _, line := range strings.Split(top, "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 && f[0] == "flat" {
			rows = true
			continue
		}
		if rows && len(f) >= 5 {
			var v float64
			fmt.Sscanf(strings.TrimSuffix(f[4], "%"), "%g", &v)
			return v
		}
	}
	return 0
}

func pprofTopOf(path, binary string, flags ...string) (string, error) {
	args := append([]string{"tool", "pprof", "-top", "-nodecount=25"}, flags...)
	raw, err := exec.Command("go", append(args, binary, path)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go tool pprof: %v: %s", err, raw)
	}
	return strings.TrimSpace(string(raw)), nil
}
