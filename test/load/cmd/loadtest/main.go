// Command loadtest puts the built otelcol-tapio under load from real clients (this module's
// loadgen on the OpenTelemetry Go SDK, and telemetrygen), side by side in one run against the
// same binary's pass-through pipeline, and prints what each costs and holds: CPU per item at a
// fixed rate both sustain, the highest rate each accepts, the sender's export latency, peak RSS,
// and every refusal and drop the collector counted. -loads flood instead floods the Tapio
// pipeline with many times what it can take and checks that it holds up and recovers.
//
// make loadtest / make flood run it; see docs/BENCHMARKS.md.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/yairfalse/tapio/test/load/internal/child"
)

type options struct {
	collector, telemetrygen, loadgen string
	shipped, loadDir, out            string
	commit                           string
	loads                            string
	warmup, window                   time.Duration
	rate, kernelRate                 float64
	portBase                         int
	profile                          bool
	profileMode                      string
	profilePassThrough               bool
	profileLoad                      string
	repeat                           int
	strict                           bool
	collectorEnv                     string
	tapioOverlay                     string
	modes                            string
	paired                           bool
	pairedSenders                    bool
	flood                            floodOptions
}

type ports struct {
	health, grpc, http, api, pprof, metrics, closed int
}

type harness struct {
	opt   options
	ports ports
}

func (h *harness) addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// tail is how much longer than warm-up + window telemetrygen runs, so that its end does not
// fall inside the window.
func (h *harness) tail() time.Duration { return time.Second }

func main() {
	var o options
	flag.StringVar(&o.collector, "collector", "_build/otelcol-tapio", "the otelcol-tapio binary")
	flag.StringVar(&o.telemetrygen, "telemetrygen", "bin/telemetrygen", "the telemetrygen binary")
	flag.StringVar(&o.loadgen, "loadgen", "_build/loadtest/loadgen", "this module's generator")
	flag.StringVar(&o.shipped, "shipped", "distributions/standalone/config.yaml", "the shipped config the Tapio pipeline runs")
	flag.StringVar(&o.loadDir, "load-dir", "test/load", "where the pass-through configs and the Tapio overlays are")
	flag.StringVar(&o.out, "out", "_build/loadtest", "results (results.md, results.json), logs, data directories")
	flag.StringVar(&o.commit, "commit", "", "the commit measured, for the report")
	flag.StringVar(&o.loads, "loads", "healthy,storm,errorlogs,kernel,tg-healthy,tg-storm", "loads to run, comma-separated; or flood")
	flag.DurationVar(&o.warmup, "warmup", 3*time.Second, "load before each measuring window, not measured")
	flag.DurationVar(&o.window, "duration", 15*time.Second, "measuring window of each run")
	flag.Float64Var(&o.rate, "rate", 5000, "fixed rate of the application loads, items/s (both pipelines must sustain it)")
	flag.Float64Var(&o.kernelRate, "kernel-rate", 2000, "fixed rate of the refused-connect storm, connects/s")
	flag.IntVar(&o.portBase, "port-base", 28100, "ports used: base+1 … base+6 for the collector (base+11 … base+16 for the second of a pair), base+99 stays closed")
	flag.BoolVar(&o.profile, "profile", true, "after the loads, profile the Tapio pipeline under the error storm (pprof)")
	flag.StringVar(&o.profileMode, "profile-mode", unlimited, "the error-storm run profiled: unlimited or fixed (at -rate)")
	flag.IntVar(&o.repeat, "repeat", 1, "rounds of each load's runs, interleaved; the tables show the median run of each pipeline and mode (a shared machine's drift and noise weigh less)")
	flag.StringVar(&o.profileLoad, "profile-load", "storm", "the load of the profiled run")
	flag.BoolVar(&o.profilePassThrough, "profile-pass-through", false, "profile the pass-through pipeline's error-storm run too (passthrough-storm.cpu.pprof), to compare with go tool pprof -diff_base")
	flag.BoolVar(&o.strict, "strict", false, "exit non-zero when a target is missed")
	flag.StringVar(&o.modes, "modes", "fixed,senders,unlimited", "the runs of each load: fixed, senders, unlimited (capacity); ratios need the fixed runs")
	flag.BoolVar(&o.paired, "paired", true, "run the two pipelines' fixed-rate runs of an application load at the same time, side by side on the collector's CPU (ports base+11 … base+16 for the second), so that drift in the machine's speed weighs on both alike; false runs them one after the other")
	flag.BoolVar(&o.pairedSenders, "paired-senders", true, "run the two pipelines' senders runs of an application load at the same time too, every process unpinned, so that the machine's drift weighs on both alike; false runs them one after the other")
	flag.StringVar(&o.tapioOverlay, "tapio-overlay", "", "one more --config file merged over the Tapio pipeline's, last (an experiment; the report names it)")
	flag.StringVar(&o.collectorEnv, "collector-env", "", "extra environment of every collector, space-separated NAME=value (e.g. GOMEMLIMIT=800MiB)")
	flag.DurationVar(&o.flood.duration, "flood-duration", 60*time.Second, "flood: how long the flood lasts")
	flag.Float64Var(&o.flood.factor, "flood-factor", 10, "flood: offered rate as a multiple of the measured capacity")
	flag.DurationVar(&o.flood.recovery, "flood-recovery", 30*time.Second, "flood: healthy load must be accepted again, refusal-free, within this")
	flag.Parse()

	for _, p := range []*string{&o.collector, &o.telemetrygen, &o.loadgen, &o.shipped, &o.loadDir, &o.out} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			fatal(err)
		}
		*p = abs
	}
	b := o.portBase
	h := &harness{opt: o, ports: ports{health: b + 1, grpc: b + 2, http: b + 3, api: b + 4, pprof: b + 5, metrics: b + 6, closed: b + 99}}
	for _, dir := range []string{o.out, filepath.Join(o.out, "logs")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			fatal(err)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var code int
	if o.loads == "flood" {
		code = h.flood(ctx)
	} else {
		code = h.loadtest(ctx)
	}
	child.KillAll()
	os.Exit(code)
}

func fatal(err error) {
	child.KillAll()
	fmt.Fprintln(os.Stderr, "loadtest:", err)
	os.Exit(1)
}

// loadtest runs every load on both pipelines, interleaved — at the fixed rate pass-through then
// Tapio, senders Tapio then pass-through, capacity pass-through then Tapio — so that a drift of
// the machine's other work weighs on both.
func (h *harness) loadtest(ctx context.Context) int {
	o := h.opt
	var loads []load
	for _, name := range strings.Split(o.loads, ",") {
		l, err := findLoad(strings.TrimSpace(name))
		if err != nil {
			fatal(err)
		}
		loads = append(loads, l)
	}
	for _, bin := range []string{o.collector, o.loadgen} {
		if _, err := os.Stat(bin); err != nil {
			fatal(fmt.Errorf("%w (make loadtest builds it)", err))
		}
	}
	rep := report{Meta: machineMeta(o), Targets: targets}
	start := time.Now()
	for _, l := range loads {
		if l.client == "telemetrygen" {
			if _, err := os.Stat(o.telemetrygen); err != nil {
				fatal(fmt.Errorf("%w (make loadtest installs it)", err))
			}
		}
		if l.signal == "kernel" {
			if os.Geteuid() != 0 {
				rep.Skipped = append(rep.Skipped, l.name+": the ebpf receiver needs root (CAP_BPF, CAP_PERFMON); run as root")
				fmt.Fprintf(os.Stderr, "skipping %s: not root\n", l.name)
				continue
			}
			if err := h.closedPortCheck(); err != nil {
				fatal(err)
			}
		}
		lr := loadResult{Load: l.name, About: l.about, Signal: l.signal, Client: l.client, Target: l.target}
		steps := [][2]string{{passThrough, fixed}, {tapio, fixed}, {tapio, senders}, {passThrough, senders}, {passThrough, unlimited}, {tapio, unlimited}}
		switch {
		case l.signal == "kernel":
			// The kernel load's senders are the connecting process itself: its capacity runs
			// (two of them, flat out) are its senders runs.
			steps = [][2]string{steps[0], steps[1], steps[5], steps[4]}
		case l.noCapacity != "":
			steps = steps[:4]
			lr.NoCapacity = l.noCapacity
		}
		steps = slices.DeleteFunc(steps, func(s [2]string) bool { return !slices.Contains(strings.Split(o.modes, ","), s[1]) })
		pairs := func(mode string, on bool) bool {
			return on && l.signal != "kernel" && slices.Contains(steps, [2]string{passThrough, mode}) && slices.Contains(steps, [2]string{tapio, mode})
		}
		lr.Paired = pairs(fixed, o.paired)
		lr.PairedSenders = pairs(senders, o.pairedSenders)
		paired := map[string]bool{fixed: lr.Paired, senders: lr.PairedSenders}
		for round := 1; round <= max(o.repeat, 1); round++ {
			var pairedRan []string // modes whose pair already ran this round
			for _, step := range steps {
				var runs []runResult
				var err error
				if paired[step[1]] {
					if slices.Contains(pairedRan, step[1]) {
						continue // ran beside the other pipeline's
					}
					pairedRan = append(pairedRan, step[1])
					fmt.Fprintf(os.Stderr, "%s  %-10s %-12s %-9s round %d …\n", time.Now().Format("15:04:05"), l.name, "both, paired", step[1], round)
					runs, err = h.runPair(ctx, l, step[1])
				} else {
					fmt.Fprintf(os.Stderr, "%s  %-10s %-12s %-9s round %d …\n", time.Now().Format("15:04:05"), l.name, step[0], step[1], round)
					var r runResult
					r, err = h.run(ctx, l, step[0], step[1], "")
					runs = []runResult{r}
				}
				if err != nil {
					if ctx.Err() != nil {
						fmt.Fprintln(os.Stderr, "interrupted")
						return 130
					}
					fatal(fmt.Errorf("%s %s %s: %w", l.name, step[0], step[1], err))
				}
				for _, r := range runs {
					fmt.Fprintf(os.Stderr, "          %-12s %-9s %8.0f items/s, %6.2f CPU-s/1M, %.2f cores, machine idle %2.0f %%\n", r.Pipeline, r.Mode, r.Accepted, r.CPUPerMillion, r.Cores, 100*r.MachineIdle)
					r.Round = round
					lr.Runs = append(lr.Runs, r)
				}
			}
		}
		rep.Loads = append(rep.Loads, lr)
	}
	if o.profile {
		if l, err := findLoad(o.profileLoad); err == nil {
			if o.profileMode != unlimited && o.profileMode != fixed {
				fatal(fmt.Errorf("-profile-mode %q: want %s or %s", o.profileMode, unlimited, fixed))
			}
			path := filepath.Join(o.out, "tapio-"+l.name+".cpu.pprof")
			fmt.Fprintf(os.Stderr, "%s  profiling Tapio under %s (%s) …\n", time.Now().Format("15:04:05"), l.name, o.profileMode)
			if _, err := h.run(ctx, l, tapio, o.profileMode, path); err != nil {
				fatal(fmt.Errorf("profile run: %w", err))
			}
			top, err := pprofTop(path, o.collector)
			if err != nil {
				rep.Profile = "profile not read: " + err.Error()
			} else {
				rep.Profile = top
				rep.ProfilePath = path
				rep.ProfileMode = o.profileMode
				rep.ProfileLoad = l.name
				rep.ProfileShares = profileShares(path, o.collector)
			}
			if o.profilePassThrough {
				base := filepath.Join(o.out, "passthrough-"+l.name+".cpu.pprof")
				fmt.Fprintf(os.Stderr, "%s  profiling pass-through under %s (%s) …\n", time.Now().Format("15:04:05"), l.name, o.profileMode)
				if _, err := h.run(ctx, l, passThrough, o.profileMode, base); err != nil {
					fatal(fmt.Errorf("pass-through profile run: %w", err))
				}
			}
		}
	}
	rep.Meta.DurationS = time.Since(start).Seconds()
	rep.evaluate()
	md := rep.markdown()
	fmt.Print(md)
	if err := os.WriteFile(filepath.Join(o.out, "results.md"), []byte(md), 0o644); err != nil {
		fatal(err)
	}
	raw, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		fatal(err)
	}
	if err := os.WriteFile(filepath.Join(o.out, "results.json"), raw, 0o644); err != nil {
		fatal(err)
	}
	fmt.Fprintf(os.Stderr, "written: %s, %s\n", filepath.Join(o.out, "results.md"), filepath.Join(o.out, "results.json"))
	if o.strict && rep.Missed > 0 {
		return 1
	}
	return 0
}
