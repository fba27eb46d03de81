package ebpfreceiver

import (
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/yairfalse/tapio/internal/kerneltest"
	"github.com/yairfalse/tapio/receiver/ebpfreceiver/internal/kernel"
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

// BenchmarkConnectOverhead runs the same refused-connect workload process with and without the
// receiver attached, alternating nine times in one run, and reports the median time ratio.
func BenchmarkConnectOverhead(b *testing.B) {
	const connects = 40000
	port := closedLoopbackPort(b)
	var ratios []float64
	for round := 0; round < 9; round++ {
		without := runWorkloads(b, port, connects, 1)
		rr := startReceiver(b, nil)
		with := runWorkloads(b, port, connects, 1)
		_ = rr.receiver.Shutdown(b.Context())
		ratios = append(ratios, float64(with)/float64(without))
	}
	sort.Float64s(ratios)
	b.ReportMetric(ratios[len(ratios)/2], "with/without")
	b.ReportMetric(float64(connects), "connects/round")
}

// BenchmarkExecOverhead runs a fork+exec workload process (/bin/true, one after the other) with
// and without the receiver attached with its default probes, alternating nine times in one run,
// and reports the median time ratio.
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
	for round := 0; round < 9; round++ {
		without := run()
		rr := startReceiver(b, nil)
		with := run()
		_ = rr.receiver.Shutdown(b.Context())
		ratios = append(ratios, float64(with)/float64(without))
	}
	sort.Float64s(ratios)
	b.ReportMetric(ratios[len(ratios)/2], "with/without")
	b.ReportMetric(float64(execs), "execs/round")
}
