package ebpfreceiver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/yairfalse/tapio/internal/kerneltest"
	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

func TestConnectionRefusedListenAndReset(t *testing.T) {
	rr := startReceiver(t, nil)
	self := int64(os.Getpid())

	// listen: a real listening socket, attributed to this process.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	e := rr.waitFor(t, unifiedevent.Listen, 5*time.Second, func(e kernelEvent) bool { return e.int("source.port") == int64(port) })
	assertUnifiedEvent(t, e)
	if e.int("process.pid") != self || e.str("source.address") != "127.0.0.1" {
		t.Errorf("listen attributes: %v", e.attributes())
	}

	// connection_reset: the server closes an accepted connection with SO_LINGER 0, which sends
	// a reset instead of a FIN.
	client, server := connectedPair(t, ln)
	if err := server.SetLinger(0); err != nil {
		t.Fatal(err)
	}
	server.Close()
	ln.Close()
	if _, err := io.ReadAll(client); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("client read after the peer's reset: %v, want ECONNRESET", err)
	}
	clientPort := client.LocalAddr().(*net.TCPAddr).Port
	e = rr.waitFor(t, unifiedevent.ConnectionReset, 5*time.Second, func(e kernelEvent) bool {
		return e.str("tapio.network.reset.direction") == "received" && e.int("source.port") == int64(clientPort)
	})
	assertUnifiedEvent(t, e)
	if e.int("destination.port") != int64(port) || e.int("process.pid") != self {
		t.Errorf("received reset: %v", e.attributes())
	}
	rr.waitFor(t, unifiedevent.ConnectionReset, 5*time.Second, func(e kernelEvent) bool {
		// The active reset is sent after close() released the local port: the peer identifies it.
		return e.str("tapio.network.reset.direction") == "sent" && e.int("destination.port") == int64(clientPort) && e.int("process.pid") == self
	})

	// connection_refused: nothing listens on the port any more.
	refusedAt := time.Now()
	_, err = net.Dial("tcp", ln.Addr().String())
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial a closed port: %v", err)
	}
	e = rr.waitFor(t, unifiedevent.ConnectionRefused, 5*time.Second, func(e kernelEvent) bool { return e.int("destination.port") == int64(port) })
	assertUnifiedEvent(t, e)
	if e.int("process.pid") != self || e.str("error.type") != "ECONNREFUSED" || e.str("destination.address") != "127.0.0.1" {
		t.Errorf("connection_refused attributes: %v", e.attributes())
	}
	mustContain(t, "body", e.record.Body().Str(), fmt.Sprintf("to 127.0.0.1:%d was refused", port))

	// The refusal's reset is the refusal itself: it must not also be reported as a reset.
	time.Sleep(300 * time.Millisecond)
	if n := rr.count(unifiedevent.ConnectionReset, func(e kernelEvent) bool {
		return e.int("destination.port") == int64(port) && e.record.Timestamp().AsTime().After(refusedAt)
	}); n != 0 {
		t.Errorf("the refused connect was also reported as %d resets", n)
	}
}

// connectedPair dials ln and returns both ends of the connection; the client end is closed when
// the test ends.
func connectedPair(t *testing.T, ln net.Listener) (client net.Conn, server *net.TCPConn) {
	t.Helper()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	c := <-accepted
	if c == nil {
		t.Fatal("accept failed")
	}
	return client, c.(*net.TCPConn)
}

// A reset that finds the connection half-closed by the peer (CLOSE_WAIT: the peer's FIN was read)
// closes it with EPIPE rather than ECONNRESET: it is a received reset all the same.
func TestResetReceivedInCloseWait(t *testing.T) {
	rr := startReceiver(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, server := connectedPair(t, ln)
	if err := server.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(client); err != nil {
		t.Fatalf("client read up to the peer's FIN: %v", err)
	}
	if err := server.SetLinger(0); err != nil {
		t.Fatal(err)
	}
	server.Close()
	clientPort := int64(client.LocalAddr().(*net.TCPAddr).Port)
	e := rr.waitFor(t, unifiedevent.ConnectionReset, 5*time.Second, func(e kernelEvent) bool {
		return e.str("tapio.network.reset.direction") == "received" && e.int("source.port") == clientPort
	})
	if e.int("process.pid") != int64(os.Getpid()) {
		t.Errorf("received reset in CLOSE_WAIT: %v", e.attributes())
	}
}

// dropOnPort installs an nftables rule that drops loopback packets to port on input, the way a
// dead network path would. (Dropping on output makes the sender's transmit fail locally, which
// the kernel counts as a failed retransmit, not a retransmit.) It is removed when the test ends.
func dropOnPort(t *testing.T, port int) {
	t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		kerneltest.SkipOrFail(t, "nft is needed to drop packets for this test (make deps installs nftables)")
	}
	table := fmt.Sprintf("tapio_test_%d", port)
	script := fmt.Sprintf("table inet %s {\n chain out {\n  type filter hook input priority 0;\n  tcp dport %d drop\n }\n}\n", table, port)
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("nft", "delete", "table", "inet", table).Run() })
}

func TestRetransmitsAndConnectTimeout(t *testing.T) {
	rr := startReceiver(t, func(c *Config) { c.RetransmitInterval = 500 * time.Millisecond })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	dropOnPort(t, port)
	// Data sent now is never acknowledged: the kernel retransmits it with backoff.
	if _, err := client.Write(make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	clientPort := client.LocalAddr().(*net.TCPAddr).Port
	e := rr.waitFor(t, unifiedevent.TCPRetransmit, 15*time.Second, func(e kernelEvent) bool {
		return e.int("destination.port") == int64(port) && e.int("source.port") == int64(clientPort)
	})
	assertUnifiedEvent(t, e)
	if n := e.int("tapio.network.retransmit.count"); n < 1 {
		t.Errorf("retransmit count = %d", n)
	}
	if e.int("process.pid") != int64(os.Getpid()) {
		t.Errorf("retransmits attributed to pid %d", e.int("process.pid"))
	}

	// connection_timeout: SYNs to the dropped port are never answered. One SYN retry keeps the
	// wait near three seconds instead of the default two minutes.
	dialer := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_SYNCNT, 1) })
		return errors.Join(err, serr)
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = dialer.DialContext(ctx, "tcp", ln.Addr().String())
	if !errors.Is(err, syscall.ETIMEDOUT) {
		t.Fatalf("dial through the drop rule: %v, want ETIMEDOUT", err)
	}
	e = rr.waitFor(t, unifiedevent.ConnectionTimeout, 5*time.Second, func(e kernelEvent) bool { return e.int("destination.port") == int64(port) })
	assertUnifiedEvent(t, e)
	if e.str("error.type") != "ETIMEDOUT" || e.int("process.pid") != int64(os.Getpid()) {
		t.Errorf("connection_timeout attributes: %v", e.attributes())
	}

	// An application that gives up on its own: a connect left in SYN_SENT for longer than the
	// abandon threshold, then closed with no socket error, is a timeout too; one given up at once
	// is not.
	abandon := func(wait time.Duration) {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Connect(fd, &syscall.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); !errors.Is(err, syscall.EINPROGRESS) {
			t.Fatalf("non-blocking connect: %v, want EINPROGRESS", err)
		}
		time.Sleep(wait)
		syscall.Close(fd)
	}
	abandoned := func(e kernelEvent) bool {
		return e.int("destination.port") == int64(port) && e.str("error.type") == "connect_abandoned"
	}
	abandon(50 * time.Millisecond)
	time.Sleep(500 * time.Millisecond) // longer than the receiver's batch interval
	if n := rr.count(unifiedevent.ConnectionTimeout, abandoned); n != 0 {
		t.Fatalf("a connect given up after 50 ms was reported as a timeout (%d events)", n)
	}
	abandon(1500 * time.Millisecond)
	e = rr.waitFor(t, unifiedevent.ConnectionTimeout, 5*time.Second, abandoned)
	assertUnifiedEvent(t, e)
	if e.int("process.pid") != int64(os.Getpid()) {
		t.Errorf("the abandoned connect is attributed to pid %d", e.int("process.pid"))
	}
}

// refuseConnects runs a process that makes n connects to a closed loopback port, and returns its
// pid and a filter for the events about them.
func refuseConnects(t *testing.T, n int) (pid int64, ours func(kernelEvent) bool) {
	t.Helper()
	port := closedLoopbackPort(t)
	cmd := kerneltest.ConnectLoopCommand(port, n)
	if err := cmd.Run(); err != nil {
		t.Fatalf("connect workload: %v", err)
	}
	pid = int64(cmd.Process.Pid)
	return pid, func(e kernelEvent) bool {
		return e.int(unifiedevent.KeyDestinationPort) == int64(port) && e.int(unifiedevent.KeyProcessPID) == pid
	}
}

// A refused-connect storm of one process — one peer, one errno, a fresh ephemeral port each
// time — is merged: the records for that peer stand for exactly as many connects as the process
// made (log_count), in far fewer records, and the merged counter counts the difference.
func TestRefusedConnectStormIsMerged(t *testing.T) {
	rr := startReceiver(t, nil)
	const connects = 2000
	pid, ours := refuseConnects(t, connects)
	const refused = string(unifiedevent.ConnectionRefused)
	deadline := time.Now().Add(10 * time.Second)
	var events int64
	var records int
	for {
		events, records = rr.tally(unifiedevent.ConnectionRefused, ours)
		if events >= connects || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if events != connects {
		t.Fatalf("the records of pid %d's refused connects stand for %d events in %d records, want %d (ring-buffer drops counted: %d)",
			pid, events, records, connects, counterValue(t, rr.tel, "otelcol_receiver_ebpf_ringbuf_dropped", refused))
	}
	t.Logf("%d refused connects of pid %d: %d records", connects, pid, records)
	if records > connects/10 {
		t.Errorf("%d refused connects of one process to one peer took %d records: not merged", connects, records)
	}
	// Each merged record keeps the first connect's facts and says when the first and last were.
	rr.waitFor(t, unifiedevent.ConnectionRefused, time.Second, func(e kernelEvent) bool {
		if !ours(e) || unifiedevent.RepeatCount(e.record.Attributes()) < 2 {
			return false
		}
		assertUnifiedEvent(t, e)
		first, err1 := time.Parse(time.RFC3339, e.str(unifiedevent.KeyFirstObservedTimestamp))
		last, err2 := time.Parse(time.RFC3339, e.str(unifiedevent.KeyLastObservedTimestamp))
		if err1 != nil || err2 != nil || !first.Equal(e.record.Timestamp().AsTime()) || last.Before(first) {
			t.Errorf("merged record: Timestamp %s, first %q, last %q", e.record.Timestamp().AsTime(), e.str(unifiedevent.KeyFirstObservedTimestamp), e.str(unifiedevent.KeyLastObservedTimestamp))
		}
		if e.str(unifiedevent.KeySourceAddress) != "127.0.0.1" || e.str(unifiedevent.KeyErrorType) != "ECONNREFUSED" {
			t.Errorf("merged record: %v", e.attributes())
		}
		return true
	})
	// Every connect was received; all but one per record were merged (other processes of this
	// host may add refused connects of their own to both counters).
	for time.Now().Before(deadline.Add(5 * time.Second)) {
		merged := counterValue(t, rr.tel, "otelcol_receiver_ebpf_events_merged", refused)
		received := counterValue(t, rr.tel, "otelcol_receiver_ebpf_events_received", refused)
		if merged >= int64(connects-records) && received >= connects {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("events_merged = %d, events_received = %d; want ≥ %d merged and ≥ %d received",
		counterValue(t, rr.tel, "otelcol_receiver_ebpf_events_merged", refused),
		counterValue(t, rr.tel, "otelcol_receiver_ebpf_events_received", refused), connects-records, connects)
}

// With merge_repeats off, each refused connect is a record of its own.
func TestRefusedConnectsUnmergedWhenOff(t *testing.T) {
	rr := startReceiver(t, func(c *Config) { c.MergeRepeats = false })
	const connects = 200
	_, ours := refuseConnects(t, connects)
	deadline := time.Now().Add(10 * time.Second)
	for {
		events, records := rr.tally(unifiedevent.ConnectionRefused, ours)
		if events == connects && records == connects {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d refused connects with merge_repeats off: %d events in %d records", connects, events, records)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if merged := counterValue(t, rr.tel, "otelcol_receiver_ebpf_events_merged", string(unifiedevent.ConnectionRefused)); merged != 0 {
		t.Errorf("events_merged = %d with merge_repeats off", merged)
	}
}
