package main

import (
	"strings"
	"testing"

	"github.com/yairfalse/tapio/test/load/internal/gen"
)

// What go tool pprof -top -cum -nodecount=1 -focus=… prints (go1.26).
const focusedTop = `File: otelcol-tapio
Build ID: 2d00d3302afbacc3b590ad9f8ac74662a8159c9a
Type: cpu
Time: 2026-12-01 23:26:18 UTC
Duration: 14.04s, Total samples = 5.90s (42.03%)
Active filters:
   focus=unifiedeventprocessor\.
Showing nodes accounting for 0, 0% of 5.90s total
Showing top 1 nodes out of 112
      flat  flat%   sum%        cum   cum%
         0     0%     0%      1.16s 19.66%  google.golang.org/grpc.(*Server).handleStream
`

func TestFirstCumPercent(t *testing.T) {
	if got := firstCumPercent(focusedTop); got != 19.66 {
		t.Fatalf("got %v, want 19.66", got)
	}
	if got := firstCumPercent("no rows"); got != 0 {
		t.Fatalf("got %v from no table", got)
	}
}

func TestEvaluateMarksTargets(t *testing.T) {
	pf := runResult{Pipeline: passThrough, Mode: fixed, CPUPerMillion: 10, Sustained: true}
	tf := runResult{Pipeline: tapio, Mode: fixed, CPUPerMillion: 14, Sustained: true}
	ps := runResult{Pipeline: passThrough, Mode: senders, Accepted: 100, Cores: 0.4}
	ts := runResult{Pipeline: tapio, Mode: senders, Accepted: 96, Cores: 0.5}
	pu := runResult{Pipeline: passThrough, Mode: unlimited, Accepted: 100, Cores: 0.99}
	tu := runResult{Pipeline: tapio, Mode: unlimited, Accepted: 70, Cores: 0.99}
	r := report{Loads: []loadResult{{Load: "storm", Target: "storm", Runs: []runResult{pf, tf, ps, ts, pu, tu}}}}
	r.evaluate()
	got := map[string]bool{}
	for _, x := range r.Loads[0].Ratios {
		if x.Passed != nil {
			got[x.What] = *x.Passed
		}
	}
	// 1.4× CPU misses ≤ 1.3; the senders' 0.96× meets ≥ 0.95; the capacity ratio has no target.
	if got["CPU per item (fixed rate)"] || !got["highest sustained rate (senders)"] || len(got) != 2 || r.Missed != 1 {
		t.Fatalf("ratios %+v, missed %d", r.Loads[0].Ratios, r.Missed)
	}
}

// A run with -modes senders alone is judged on the senders' rate, and its table shows their row:
// a missing fixed-rate run must not hide the other modes.
func TestSendersOnlyRunIsJudged(t *testing.T) {
	ps := runResult{Pipeline: passThrough, Mode: senders, Accepted: 100, Cores: 0.4, PeakRSSMiB: 60}
	ts := runResult{Pipeline: tapio, Mode: senders, Accepted: 90, Cores: 0.5, PeakRSSMiB: 150}
	r := report{Loads: []loadResult{{Load: "storm", Target: "storm", Runs: []runResult{ps, ts}}}}
	r.evaluate()
	if r.Missed != 1 || r.Loads[0].ratioOf("highest sustained") != "0.90× ✗ (≥ 0.95)" {
		t.Fatalf("ratios %+v, missed %d", r.Loads[0].Ratios, r.Missed)
	}
	md := r.markdown()
	for _, want := range []string{"| **storm** | pass-through | — | — | — | 100 (0.40) |", "|  | tapio | — | — | — | 90 (0.50) |"} {
		if !strings.Contains(md, want) {
			t.Errorf("table lacks %q:\n%s", want, md)
		}
	}
}

// Repeated rounds: the run shown is each pipeline's median, and the targeted ratio the median of
// the rounds' own ratios, so that a round where the whole machine ran slow weighs on neither.
func TestRoundsReportMediansOfPairs(t *testing.T) {
	lr := loadResult{Target: "storm", Runs: []runResult{
		{Pipeline: passThrough, Mode: fixed, Round: 1, CPUPerMillion: 10, Sustained: true},
		{Pipeline: tapio, Mode: fixed, Round: 1, CPUPerMillion: 12, Sustained: true},
		{Pipeline: passThrough, Mode: fixed, Round: 2, CPUPerMillion: 20, Sustained: true},
		{Pipeline: tapio, Mode: fixed, Round: 2, CPUPerMillion: 26, Sustained: true},
		{Pipeline: passThrough, Mode: fixed, Round: 3, CPUPerMillion: 11, Sustained: true},
		{Pipeline: tapio, Mode: fixed, Round: 3, CPUPerMillion: 13.2, Sustained: true},
	}}
	if got := lr.run(tapio, fixed).CPUPerMillion; got != 13.2 {
		t.Fatalf("median Tapio run %v, want 13.2", got)
	}
	r := report{Loads: []loadResult{lr}}
	r.evaluate()
	cpu := r.Loads[0].Ratios[0]
	if cpu.Value != 1.2 || len(cpu.Rounds) != 3 || cpu.Passed == nil || !*cpu.Passed {
		t.Fatalf("CPU ratio %+v, want the median of 1.2, 1.3, 1.2 passing ≤ 1.3", cpu)
	}
}

// The sender p99 is a target like the others: the median of the rounds' own ratios, so that one
// round's slow pass-through tail does not decide it (this is what a round of 30.5 ms against 13.0
// ms beside two rounds of 1.35× and 1.22× looked like).
func TestSenderP99IsTheMedianOfTheRounds(t *testing.T) {
	run := func(p string, round int, cpu, p99 float64) runResult {
		return runResult{Pipeline: p, Mode: fixed, Round: round, CPUPerMillion: cpu, Sustained: true, Sender: &gen.Result{LatencyMs: gen.Latency{P99: p99}}}
	}
	lr := loadResult{Target: "storm", Runs: []runResult{
		run(passThrough, 1, 10, 19.2), run(tapio, 1, 13, 26.0),
		run(passThrough, 2, 11, 21.4), run(tapio, 2, 14, 26.2),
		run(passThrough, 3, 12, 13.0), run(tapio, 3, 15, 30.5),
	}}
	r := report{Loads: []loadResult{lr}}
	r.evaluate()
	var p99 *ratio
	for i, x := range r.Loads[0].Ratios {
		if x.What == "sender p99 (fixed rate)" {
			p99 = &r.Loads[0].Ratios[i]
		}
	}
	if p99 == nil || len(p99.Rounds) != 3 || p99.Passed == nil || !*p99.Passed || p99.Value < 1.35 || p99.Value > 1.36 {
		t.Fatalf("p99 ratio %+v, want the median of 1.35, 1.22, 2.35 passing ≤ 2", p99)
	}
}
