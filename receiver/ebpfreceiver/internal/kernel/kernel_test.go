package kernel

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf/ringbuf"

	"github.com/yairfalse/tapio/internal/kerneltest"
)

// loadForTest loads every probe, or skips with the reason when this machine cannot; with
// TAPIO_REQUIRE_EBPF=1 (CI) a skip is a failure.
func loadForTest(t *testing.T, opts Options) *Programs {
	t.Helper()
	p, err := Load(opts)
	if err != nil {
		kerneltest.SkipOrFail(t, "eBPF unavailable here: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// collect reads records until match accepts one or the timeout passes.
func collect(t *testing.T, p *Programs, timeout time.Duration, match func(*Event) bool) *Event {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var rec ringbuf.Record
	for time.Now().Before(deadline) {
		// Records do not wake the reader one by one: like the receiver, it polls.
		p.Events.SetDeadline(time.Now().Add(20 * time.Millisecond))
		if err := p.Events.ReadInto(&rec); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			t.Fatal(err)
		}
		e := new(Event)
		if err := e.Decode(rec.RawSample); err != nil {
			t.Fatal(err)
		}
		if match(e) {
			return e
		}
	}
	t.Fatal("no matching kernel event before the deadline")
	return nil
}

func TestKernelReportsAbnormalExitAndRefusedConnect(t *testing.T) {
	p := loadForTest(t, Options{Probes: AllProbes(), ExitAbnormalOnly: true})

	cmd := exec.Command("/bin/sh", "-c", "exit 3")
	_ = cmd.Run()
	pid := uint32(cmd.Process.Pid)
	e := collect(t, p, 5*time.Second, func(e *Event) bool { return e.Kind == KindProcessExit && e.Subject.TGID == pid })
	if e.ExitCode() != 3<<8 {
		t.Errorf("exit code = %#x, want %#x", e.ExitCode(), 3<<8)
	}
	if string(CString(e.Subject.Comm[:])) != "sh" {
		t.Errorf("comm = %q", CString(e.Subject.Comm[:]))
	}

	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	_, err := net.Dial("tcp", l.Addr().String())
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial: %v", err)
	}
	e = collect(t, p, 5*time.Second, func(e *Event) bool {
		return e.Kind == KindConnectionRefused && int(e.Socket().DestinationPort) == port
	})
	if e.Subject.TGID != uint32(os.Getpid()) {
		t.Errorf("refused connect attributed to %d, want this test (%d)", e.Subject.TGID, os.Getpid())
	}
}

// Records do not wake the reader one by one, so a reader that falls behind meets a full ring
// buffer: every event is then either read or counted as dropped, never lost silently. With a
// one-page ring buffer left unread, a burst of refused connects fills it; what did not fit is in
// the dropped counters.
// recordBytes is a record's size in the ring buffer: the record and its 8-byte header.
const recordBytes = (EventSize + 8 + 7) / 8 * 8

func TestEveryEventIsReadOrCountedDropped(t *testing.T) {
	page := uint32(os.Getpagesize())
	p := loadForTest(t, Options{Probes: AllProbes(), ExitAbnormalOnly: true, RingBufferBytes: page})
	before, err := p.Dropped()
	if err != nil {
		t.Fatal(err)
	}
	port := closedPort(t)
	const connects = 200 // a page holds about 26 records
	refuseConnects(t, port, connects)
	after, err := p.Dropped()
	if err != nil {
		t.Fatal(err)
	}
	read := 0
	drain(t, p, func(e *Event) {
		if e.Kind == KindConnectionRefused && int(e.Socket().DestinationPort) == port {
			read++
		}
	})
	// Other processes' refused connects, if any, only add to the dropped count.
	dropped := int(after[KindConnectionRefused] - before[KindConnectionRefused])
	t.Logf("%d refused connects: %d read, %d counted dropped", connects, read, dropped)
	if read+dropped < connects || read == 0 || dropped == 0 {
		t.Errorf("%d refused connects: %d read, %d counted dropped; every one must be one or the other, and a page must overflow", connects, read, dropped)
	}
	if capacity := int(page) / recordBytes; read > capacity {
		t.Errorf("%d records read from a ring buffer that holds %d", read, capacity)
	}
}

// With CountRepeats, a refused connect that repeats its CPU's run is counted, not written: the
// runs' records and counts stand for exactly the connects made, in a handful of records. A
// refusal from another port ends a run, and the next run's record says how it ended.
func TestRepeatedRefusalsAreCountedInTheKernel(t *testing.T) {
	p := loadForTest(t, Options{Probes: AllProbes(), ExitAbnormalOnly: true, CountRepeats: true})
	portA, portB := closedPort(t), closedPort(t)
	for portB == portA {
		portB = closedPort(t)
	}
	refuseConnects(t, portA, 300)
	refuseConnects(t, portB, 1)
	refuseConnects(t, portA, 300)

	type runID struct {
		cpu    uint16
		number uint32
	}
	portOf := map[runID]int{}
	events := map[runID]uint32{} // each run's events, once known
	records := map[int]int{}     // by port
	drain(t, p, func(e *Event) {
		if e.Kind != KindConnectionRefused {
			return
		}
		start := e.RunStart()
		if start.Number == 0 {
			t.Fatalf("a refused connect's record starts no run: %+v", start)
		}
		port := int(e.Socket().DestinationPort)
		records[port]++
		portOf[runID{start.CPU, start.Number}] = port
		if start.Number > 1 {
			events[runID{start.CPU, start.Number - 1}] = start.EndedEvents
		}
	})
	current, err := p.FailureRuns(nil)
	if err != nil {
		t.Fatal(err)
	}
	for cpu, run := range current {
		if run.Number != 0 {
			events[runID{uint16(cpu), run.Number}] = run.Events
		}
	}
	total := map[int]uint32{}
	for id, port := range portOf {
		n, ok := events[id]
		if !ok {
			t.Fatalf("run %d of CPU %d (port %d): its end was not reported", id.number, id.cpu, port)
		}
		total[port] += n
	}
	t.Logf("records by port: %v; events by port: %v", records, total)
	if total[portA] != 600 || total[portB] != 1 {
		t.Errorf("the runs stand for %d refusals of port A and %d of port B, want 600 and 1", total[portA], total[portB])
	}
	if records[portA] > 20 {
		t.Errorf("600 refusals of one port took %d records: not counted in the kernel", records[portA])
	}
	if dropped, err := p.Dropped(); err != nil || dropped[KindConnectionRefused] != 0 {
		t.Errorf("dropped: %v, %v", dropped, err)
	}
}

// closedPort returns a loopback port nothing listens on.
func closedPort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// refuseConnects makes n connects to a closed loopback port from this process, one after the other.
func refuseConnects(tb testing.TB, port, n int) {
	tb.Helper()
	addr := &syscall.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}
	for i := 0; i < n; i++ {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
		if err != nil {
			tb.Fatal(err)
		}
		if err := syscall.Connect(fd, addr); err != syscall.ECONNREFUSED {
			tb.Fatalf("connect: %v, want ECONNREFUSED", err)
		}
		syscall.Close(fd)
	}
}

// drain reads and decodes every record the ring buffer holds, until none came for 100 ms.
func drain(t *testing.T, p *Programs, visit func(*Event)) {
	t.Helper()
	var rec ringbuf.Record
	for {
		p.Events.SetDeadline(time.Now().Add(100 * time.Millisecond))
		if err := p.Events.ReadInto(&rec); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return
			}
			t.Fatal(err)
		}
		var e Event
		if err := e.Decode(rec.RawSample); err != nil {
			t.Fatal(err)
		}
		visit(&e)
	}
}
