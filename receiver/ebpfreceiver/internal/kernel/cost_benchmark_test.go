package kernel

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf/ringbuf"

	"github.com/yairfalse/tapio/internal/kerneltest"
)

// The cost benchmarks load every default probe, turn the kernel's run-time statistics on, run a
// storm in which every operation is an event, and report each hot program's mean time per
// invocation (<program>-ns/run, run_time_ns / run_cnt as bpftool shows them), its invocations per
// operation (<program>-runs/op), the mean over every invocation of those programs together
// (hot-ns/run), and every attached program's time per operation (bpf-ns/op). A
// goroutine drains the ring buffer meanwhile, as the receiver would; ringbuf-drops/op says whether
// it kept up. One op is one operation of the storm.

// defaultProbes are the probes the receiver enables by default.
func defaultProbes() []Probe {
	var out []Probe
	for _, p := range ProbeTable {
		if p.Switchable && p.Default {
			out = append(out, p.Name)
		}
	}
	return out
}

func loadForCost(b *testing.B) *Programs {
	b.Helper()
	stats, err := EnableRunStats()
	if err != nil {
		kerneltest.SkipOrFail(b, "eBPF run-time statistics unavailable here: %v", err)
	}
	b.Cleanup(func() { _ = stats.Close() })
	// As the receiver loads them by default (merge_repeats counts repeats in the kernel).
	p, err := Load(Options{Probes: defaultProbes(), ExitAbnormalOnly: true, CountRepeats: true})
	if err != nil {
		kerneltest.SkipOrFail(b, "eBPF unavailable here: %v", err)
	}
	events := p.Events
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var rec ringbuf.Record
		for {
			// As the receiver does: records wake the reader only in bulk, so it also polls.
			events.SetDeadline(time.Now().Add(200 * time.Millisecond))
			if err := events.ReadInto(&rec); errors.Is(err, ringbuf.ErrClosed) {
				return
			}
		}
	}()
	b.Cleanup(func() {
		_ = events.Close()
		wg.Wait()
		_ = p.Close()
	})
	return p
}

func reportCost(b *testing.B, p *Programs, ops int, hot []string, storm func()) {
	b.Helper()
	before, err := p.RunStats()
	if err != nil {
		b.Fatal(err)
	}
	droppedBefore, _ := p.Dropped()
	b.ResetTimer()
	storm()
	b.StopTimer()
	after, err := p.RunStats()
	if err != nil {
		b.Fatal(err)
	}
	droppedAfter, _ := p.Dropped()
	var total, drops uint64
	for name, a := range after {
		total += uint64(a.Runtime - before[name].Runtime)
	}
	for kind := range droppedAfter {
		drops += droppedAfter[kind] - droppedBefore[kind]
	}
	b.ReportMetric(float64(total)/float64(ops), "bpf-ns/op")
	b.ReportMetric(float64(drops)/float64(ops), "ringbuf-drops/op")
	var hotRuns uint64
	var hotTime time.Duration
	for _, name := range hot {
		runs := after[name].Runs - before[name].Runs
		took := after[name].Runtime - before[name].Runtime
		hotRuns += runs
		hotTime += took
		short := strings.TrimPrefix(name, "tapio_")
		b.ReportMetric(float64(took.Nanoseconds())/float64(max(runs, 1)), short+"-ns/run")
		b.ReportMetric(float64(runs)/float64(ops), short+"-runs/op")
	}
	b.ReportMetric(float64(hotTime.Nanoseconds())/float64(max(hotRuns, 1)), "hot-ns/run")
}

// BenchmarkProgramCostRefusedConnect: refused connects to a closed loopback port, one after the
// other; each is a connection_refused event.
func BenchmarkProgramCostRefusedConnect(b *testing.B) {
	p := loadForCost(b)
	port := closedPort(b)
	reportCost(b, p, b.N, []string{"tapio_sock_state", "tapio_tcp_send_reset"}, func() { refuseConnects(b, port, b.N) })
}

// BenchmarkProgramCostForkExit: a shell forking subshells that exit, one after the other, each
// with a SIGCHLD to the shell that signal_generate filters. An exit with code 1 is a process_exit
// event; one with code 0 is filtered in the kernel (abnormal exits only, the default).
func BenchmarkProgramCostForkExit(b *testing.B) {
	for _, code := range []int{1, 0} {
		b.Run(fmt.Sprintf("code=%d", code), func(b *testing.B) {
			p := loadForCost(b)
			script := fmt.Sprintf("i=0; while [ $i -lt %d ]; do (exit %d); i=$((i+1)); done; exit 0", b.N, code)
			reportCost(b, p, b.N, []string{"tapio_process_fork", "tapio_process_exit", "tapio_signal_generate"}, func() {
				if err := exec.Command("/bin/sh", "-c", script).Run(); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}
