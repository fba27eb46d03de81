package ebpfreceiver

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/yairfalse/tapio/internal/kerneltest"
	"github.com/yairfalse/tapio/pkg/unifiedevent"
	"github.com/yairfalse/tapio/receiver/ebpfreceiver/internal/kernel"
	"github.com/yairfalse/tapio/receiver/ebpfreceiver/internal/metadata"
)

// closedLoopbackPort returns a port on 127.0.0.1 that nothing listens on.
func closedLoopbackPort(tb testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// refusedConnects performs n connects to a closed loopback port from workers goroutines, with raw
// syscalls so that the Go runtime's poller does not dominate what is measured.
func refusedConnects(tb testing.TB, port, n, workers int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	addr := &syscall.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
				if err != nil {
					tb.Error(err)
					return
				}
				if err := syscall.Connect(fd, addr); err != syscall.ECONNREFUSED {
					tb.Errorf("connect: %v, want ECONNREFUSED", err)
				}
				syscall.Close(fd)
			}
		}()
	}
	wg.Wait()
}

// runWorkloads runs workers connect-loop processes of count connects each, concurrently, and
// returns the wall time until the last one exits.
func runWorkloads(tb testing.TB, port, count, workers int) time.Duration {
	tb.Helper()
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := kerneltest.ConnectLoopCommand(port, count).Run(); err != nil {
				tb.Errorf("connect workload: %v", err)
			}
		}()
	}
	wg.Wait()
	return time.Since(start)
}

// BenchmarkRefusedConnectStorm drives real connection_refused events through the kernel programs,
// the ring buffer and the receiver at the highest rate two workload processes produce here, with
// default sizes, and reports the rate the receiver processed and the drops counted in the kernel.
func BenchmarkRefusedConnectStorm(b *testing.B) {
	rr := startReceiver(b, nil)
	port := closedLoopbackPort(b)
	before, _ := rr.receiver.programs.Dropped()
	b.ResetTimer()
	elapsed := runWorkloads(b, port, (b.N+1)/2, 2)
	b.StopTimer()
	after, _ := rr.receiver.programs.Dropped()
	b.ReportMetric(float64(2*((b.N+1)/2))/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(after[kernel.KindConnectionRefused]-before[kernel.KindConnectionRefused]), "ringbuf-drops")
}

// The overhead benchmarks run a workload process in which every operation is a kernel event, with
// and without the receiver attached (default configuration, a logs consumer that only counts),
// alternating overheadRounds times, and report:
//   - with/without: the median ratio of the workload's wall time, attached to detached;
//   - reader-cpu-%: the collector process's own CPU time (user+system, getrusage) while the
//     workload ran attached, beyond what it used while the same workload ran detached, as a
//     share of the attached wall time: the reading goroutine, decoding, batching and its GC;
//   - reader-sys-cpu-%: the part of it spent in the kernel (system calls, page faults);
//   - reader-ns/event: the same CPU time per delivered event;
//   - <program>-ns/run and <program>-runs/op: from one more attached run with the kernel's
//     run-time statistics on (they cost two clock reads per invocation, so that run is not
//     part of the ratio): the mean time per invocation of each hot program, and invocations per
//     workload operation;
//   - bpf-ns/op: the time of every attached program together per workload operation.
//
// On a two-core machine the workload and the reader share the CPUs; the ratio includes that.
const overheadRounds = 9

// countingLogs is a logs consumer that only counts events — a record that merged repeats counts
// as its log_count — : what the benchmarks measure is the receiver's work, not a pipeline's.
type countingLogs struct{ records atomic.Int64 }

func (c *countingLogs) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (c *countingLogs) ConsumeLogs(_ context.Context, ld plog.Logs) error {
	var events int64
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		sls := ld.ResourceLogs().At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			recs := sls.At(j).LogRecords()
			for k := 0; k < recs.Len(); k++ {
				events += unifiedevent.RepeatCount(recs.At(k).Attributes())
			}
		}
	}
	c.records.Add(events)
	return nil
}

// startCountingReceiver starts the receiver with its default configuration and a counting
// consumer, or skips as startReceiver does.
func startCountingReceiver(tb testing.TB) (*ebpfReceiver, *countingLogs) {
	tb.Helper()
	sink := new(countingLogs)
	set := receivertest.NewNopSettings(metadata.Type)
	r, err := NewFactory().CreateLogs(context.Background(), set, createDefaultConfig(), sink)
	if err != nil {
		tb.Fatal(err)
	}
	if err := r.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		kerneltest.SkipOrFail(tb, "the ebpf receiver cannot start on this machine: %v", err)
	}
	return r.(*ebpfReceiver), sink
}

// processCPU is the CPU time this process has used so far, in user space and in the kernel.
type processCPU struct{ user, system time.Duration }

func selfCPU(tb testing.TB) processCPU {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return processCPU{time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())}
}

func (c processCPU) minus(d processCPU) processCPU {
	return processCPU{c.user - d.user, c.system - d.system}
}
func (c processCPU) total() time.Duration { return c.user + c.system }

// overheadWorkload is a workload process that performs ops operations, each one kernel event.
type overheadWorkload struct {
	ops int
	cmd func() *exec.Cmd
	// hot are the programs whose cost per invocation is reported.
	hot []string
}

func (w overheadWorkload) run(tb testing.TB) time.Duration {
	start := time.Now()
	if err := w.cmd().Run(); err != nil {
		tb.Fatalf("workload: %v", err)
	}
	return time.Since(start)
}

func measureOverhead(b *testing.B, w overheadWorkload) {
	var ratios, readerShares, readerSystemShares, readerPerEvent []float64
	for round := 0; round < overheadRounds; round++ {
		// The last round's garbage is collected before each run, and so is what loading the
		// programs left (the kernel's BTF, parsed): a start-up cost, paid once in a collector.
		runtime.GC()
		cpu := selfCPU(b)
		without := w.run(b)
		idleCPU := selfCPU(b).minus(cpu)

		r, sink := startCountingReceiver(b)
		runtime.GC()
		cpu = selfCPU(b)
		with := w.run(b)
		// What the workload produced is read, decoded and delivered before the meter stops.
		r.drainForBenchmark(b, sink, int64(w.ops))
		readerCPU := selfCPU(b).minus(cpu).minus(idleCPU)
		if err := r.Shutdown(context.Background()); err != nil {
			b.Fatal(err)
		}
		ratios = append(ratios, float64(with)/float64(without))
		readerShares = append(readerShares, 100*readerCPU.total().Seconds()/with.Seconds())
		readerSystemShares = append(readerSystemShares, 100*readerCPU.system.Seconds()/with.Seconds())
		readerPerEvent = append(readerPerEvent, float64(readerCPU.total().Nanoseconds())/float64(max(sink.records.Load(), 1)))
	}
	b.ReportMetric(median(ratios), "with/without")
	b.ReportMetric(median(readerShares), "reader-cpu-%")
	b.ReportMetric(median(readerSystemShares), "reader-sys-cpu-%")
	b.ReportMetric(median(readerPerEvent), "reader-ns/event")

	stats, err := kernel.EnableRunStats()
	if err != nil {
		b.Fatal(err)
	}
	defer stats.Close()
	r, sink := startCountingReceiver(b)
	runtime.GC()
	before, err := r.programs.RunStats()
	if err != nil {
		b.Fatal(err)
	}
	w.run(b)
	after, err := r.programs.RunStats()
	if err != nil {
		b.Fatal(err)
	}
	r.drainForBenchmark(b, sink, int64(w.ops))
	if err := r.Shutdown(context.Background()); err != nil {
		b.Fatal(err)
	}
	var total time.Duration
	for name, a := range after {
		total += a.Runtime - before[name].Runtime
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(w.ops), "bpf-ns/op")
	for _, name := range w.hot {
		runs := after[name].Runs - before[name].Runs
		took := after[name].Runtime - before[name].Runtime
		short := strings.TrimPrefix(name, "tapio_")
		b.ReportMetric(float64(took.Nanoseconds())/float64(max(runs, 1)), short+"-ns/run")
		b.ReportMetric(float64(runs)/float64(w.ops), short+"-runs/op")
	}
}

// drainForBenchmark waits until want records were delivered, or a few batch timeouts passed.
func (r *ebpfReceiver) drainForBenchmark(tb testing.TB, sink *countingLogs, want int64) {
	deadline := time.Now().Add(10 * r.cfg.Batch.Timeout)
	for sink.records.Load() < want && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
}

func median(xs []float64) float64 {
	sort.Float64s(xs)
	return xs[len(xs)/2]
}

// BenchmarkConnectOverhead: a process making refused connects to a closed loopback port, one
// after the other: every connect is a connection_refused event.
func BenchmarkConnectOverhead(b *testing.B) {
	const connects = 40000
	port := closedLoopbackPort(b)
	measureOverhead(b, overheadWorkload{ops: connects,
		cmd: func() *exec.Cmd { return kerneltest.ConnectLoopCommand(port, connects) },
		hot: []string{"tapio_sock_state", "tapio_tcp_send_reset"}})
	b.ReportMetric(connects, "connects/round")
}

// BenchmarkExitOverhead: a shell forking subshells that exit with code 1, one after the other:
// every fork+exit is a process_exit event (and a SIGCHLD to the shell, which signal_generate
// sees and filters).
func BenchmarkExitOverhead(b *testing.B) {
	const exits = 4000
	script := fmt.Sprintf("i=0; while [ $i -lt %d ]; do (exit 1); i=$((i+1)); done", exits)
	measureOverhead(b, overheadWorkload{ops: exits,
		cmd: func() *exec.Cmd { return exec.Command("/bin/sh", "-c", script) },
		hot: []string{"tapio_process_fork", "tapio_process_exit", "tapio_signal_generate"}})
	b.ReportMetric(exits, "exits/round")
}

// BenchmarkExecOverhead runs a fork+exec workload process (/bin/true, one after the other) with
// and without the receiver attached with its default probes, alternating nine times in one run,
// and reports the median time ratio. Its exits are normal, so they are filtered in the kernel.
func BenchmarkExecOverhead(b *testing.B) {
	const execs = 2000
	run := func() time.Duration {
		start := time.Now()
		if err := kerneltest.ExecLoopCommand(execs).Run(); err != nil {
			b.Fatalf("exec workload: %v", err)
		}
		return time.Since(start)
	}
	var ratios []float64
	for round := 0; round < overheadRounds; round++ {
		without := run()
		rr := startReceiver(b, nil)
		with := run()
		_ = rr.receiver.Shutdown(b.Context())
		ratios = append(ratios, float64(with)/float64(without))
	}
	b.ReportMetric(median(ratios), "with/without")
	b.ReportMetric(float64(execs), "execs/round")
}
