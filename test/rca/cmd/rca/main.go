// Command rca is the suite of real faults on real third-party software (`make rca`): for every
// scenario, N runs of a fresh otelcol-tapio watching the shop — an Express service on
// PostgreSQL and a Go service on Redis and nginx, all instrumented with the OpenTelemetry SDKs —
// while the harness injects a fault it knows exactly; then Tapio's incidents are scored against
// that fault. It prints one table and ends with the summary line
//
//	rca: top-1 A/N, top-3 B/N, false incidents F, figures exact E/N
//
// and, unless -strict=false, exits 1 below the targets (top-1 ≥ 0.95, no incident in noise runs).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"syscall"
	"time"

	"github.com/yairfalse/tapio/test/rca/internal/scenario"
	"github.com/yairfalse/tapio/test/rca/internal/score"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == crashCommand {
		crash()
	}
	os.Exit(run())
}

func run() int {
	collector := flag.String("collector", "_build/otelcol-tapio", "otelcol-tapio binary under test")
	shipped := flag.String("config", "distributions/standalone/config.yaml", "the shipped collector config")
	overlay := flag.String("overlay", "test/rca/collector-overlay.yaml", "the suite's ports, paths and shop figures, merged over -config")
	catalog := flag.String("catalog", "_build/rca/catalog", "the Go catalog service's binary")
	jsDir := flag.String("js", "test/rca/js", "the orders service (node_modules installed)")
	cacheDir := flag.String("cache", "/var/cache/tapio-rca", "cache of what is slow to make (PostgreSQL's initdb)")
	runs := flag.Int("n", 2, "runs of every scenario")
	strict := flag.Bool("strict", true, "exit 1 below the targets (top-1 ≥ 0.95, zero incidents in noise runs)")
	only := flag.String("run", "", "play only the scenarios whose name matches this regular expression")
	portBase := flag.Int("port-base", 27100, "first of the suite's loopback ports")
	results := flag.String("results", "", "directory to write every run's incidents and load outcomes to (JSON)")
	keep := flag.Bool("keep", false, "keep the runs' directories (data, configs, logs)")
	quiet := flag.Bool("q", false, "no progress lines")
	settleMin := flag.Duration("settle-min", 4*time.Second, "least wait for incidents after a run's load stops (the shipped decision_wait and flush interval)")
	settleMax := flag.Duration("settle-max", 20*time.Second, "longest wait for incidents after a run's load stops")
	flag.Parse()

	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "rca: needs root: the ebpf receiver loads kernel programs; servers run in memory cgroups and network namespaces")
		return 2
	}
	filter, err := regexp.Compile(*only)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rca: -run:", err)
		return 2
	}
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			return p
		}
		return a
	}
	harness, _ := os.Executable()
	workDir, err := os.MkdirTemp("", "tapio-rca-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "rca:", err)
		return 2
	}
	if *keep {
		fmt.Fprintln(os.Stderr, "rca: runs kept in", workDir)
	} else {
		defer os.RemoveAll(workDir)
	}
	if err := os.Chmod(workDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "rca:", err)
		return 2
	}
	var progress io.Writer = os.Stderr
	if *quiet {
		progress = nil
	}
	cfg := &scenario.Config{
		Collector:        abs(*collector),
		CollectorConfigs: []string{abs(*shipped), abs(*overlay)},
		Catalog:          abs(*catalog),
		Harness:          harness,
		JSDir:            abs(*jsDir),
		CacheDir:         *cacheDir,
		WorkDir:          workDir,
		PortBase:         *portBase,
		SettleMin:        *settleMin,
		SettleMax:        *settleMax,
		Progress:         progress,
	}
	for _, p := range []string{cfg.Collector, cfg.Catalog, filepath.Join(cfg.JSDir, "node_modules")} {
		if _, err := os.Stat(p); err != nil {
			fmt.Fprintf(os.Stderr, "rca: %v (make rca builds and installs everything)\n", err)
			return 2
		}
	}
	if *results != "" {
		// Only this invocation's runs: a file left from an earlier one with more runs would mislead.
		old, _ := filepath.Glob(filepath.Join(*results, "*.json"))
		for _, f := range old {
			_ = os.Remove(f)
		}
	}
	if err := scenario.Prepare(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "rca:", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	var rows []score.Row
	for _, s := range scenario.All {
		if !filter.MatchString(s.Name) {
			continue
		}
		for i := 1; i <= *runs && ctx.Err() == nil; i++ {
			res := scenario.Execute(ctx, cfg, s, i)
			if *results != "" {
				if err := writeResult(*results, res); err != nil {
					fmt.Fprintln(os.Stderr, "rca: writing results:", err)
				}
			}
			rows = append(rows, score.Score(res)...)
		}
	}
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "rca: interrupted")
	}
	fmt.Println()
	score.PrintTable(os.Stdout, rows, 110)
	sum := score.Summarize(rows)
	fmt.Printf("\n%d runs in %s; %d of the %d false incidents (%d in noise runs) were about processes the suite did not start\n",
		countRuns(rows), time.Since(start).Round(time.Second), sum.Elsewhere, sum.False, sum.NoiseFalse)
	fmt.Println(sum.Line())
	if ctx.Err() != nil {
		return 1
	}
	if *strict && (sum.Cases == 0 || float64(sum.Top1) < 0.95*float64(sum.Cases) || sum.NoiseFalse > 0) {
		return 1
	}
	return 0
}

func countRuns(rows []score.Row) int {
	seen := map[string]bool{}
	for _, r := range rows {
		seen[fmt.Sprintf("%s#%d", r.Scenario, r.Run)] = true
	}
	return len(seen)
}

func writeResult(dir string, res score.Run) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	out := struct {
		Scenario     string              `json:"scenario"`
		Run          int                 `json:"run"`
		Error        string              `json:"error,omitempty"`
		Notes        []string            `json:"notes,omitempty"`
		Expectations []score.Expectation `json:"expectations"`
		Outcomes     any                 `json:"outcomes"`
		Incidents    any                 `json:"incidents"`
		Served       any                 `json:"served_during_run"`
	}{Scenario: res.Scenario, Run: res.Index, Notes: res.Notes, Expectations: res.Expectations, Outcomes: res.Outcomes,
		Incidents: res.Incidents, Served: res.Served}
	if res.Err != nil {
		out.Error = res.Err.Error()
	}
	raw, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%d.json", res.Scenario, res.Index)), raw, 0o644)
}
