package fault

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Firewall is an nftables table of the suite's own; removing it removes every rule it holds.
type Firewall struct {
	Table  string
	Netns  string
	logDir string
}

// NewFirewall creates table inet <name> (in a network namespace, when netns is set) with an
// input and an output chain, and registers its deletion.
func NewFirewall(c Cleaner, logDir, netns, name string) (*Firewall, error) {
	f := &Firewall{Table: name, Netns: netns, logDir: logDir}
	script := fmt.Sprintf(`table inet %[1]s {
	chain input { type filter hook input priority 0; policy accept; }
	chain output { type filter hook output priority 0; policy accept; }
}
`, name)
	path := filepath.Join(logDir, name+".nft")
	if err := writeFile(path, script); err != nil {
		return nil, err
	}
	if err := runIn(logDir, netns, "nft", "-f", path); err != nil {
		return nil, err
	}
	c.Defer("nft table "+name, func() error { return runIn(logDir, netns, "nft", "delete", "table", "inet", name) })
	return f, nil
}

// DropInput drops every TCP packet to 127.0.0.1:port on input: a SYN to it is never answered.
func (f *Firewall) DropInput(port int) error {
	return runIn(f.logDir, f.Netns, "nft", "add", "rule", "inet", f.Table, "input",
		"ip", "daddr", "127.0.0.1", "tcp", "dport", strconv.Itoa(port), "drop")
}

// ResetConnections answers every packet to 127.0.0.1:port but a SYN with a TCP reset, as a
// middlebox or a restarted peer that lost the connections would: pooled connections are reset
// on their next write, new ones right after the handshake. (No connection tracking: it would
// only know connections it saw from their start.)
func (f *Firewall) ResetConnections(port int) error {
	return runIn(f.logDir, f.Netns, "nft", "add", "rule", "inet", f.Table, "output",
		"ip", "daddr", "127.0.0.1", "tcp", "dport", strconv.Itoa(port), "tcp", "flags", "&", "syn", "==", "0",
		"reject", "with", "tcp", "reset")
}

// Netns is a network namespace of the suite's own.
type Netns struct {
	Name string
}

// NewNetns creates a network namespace with its loopback up and the given sysctls set in it, and
// registers its deletion.
func NewNetns(c Cleaner, logDir, name string, sysctls map[string]string) (*Netns, error) {
	if err := run(logDir, "ip", "netns", "add", name); err != nil {
		return nil, err
	}
	c.Defer("network namespace "+name, func() error { return run(logDir, "ip", "netns", "delete", name) })
	if err := run(logDir, "ip", "-n", name, "link", "set", "lo", "up"); err != nil {
		return nil, err
	}
	for k, v := range sysctls {
		if err := runIn(logDir, name, "sysctl", "-q", "-w", k+"="+v); err != nil {
			return nil, err
		}
	}
	return &Netns{Name: name}, nil
}

// DialContext dials from inside the namespace: the socket is created by a thread that has joined
// it (a socket belongs to the namespace it was created in), then the thread returns to the
// host's. Only the harness's load generator dials this way; the services run inside.
func (n *Netns) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	type result struct {
		conn net.Conn
		err  error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		// The thread is not unlocked: if returning to the host's namespace failed, the runtime
		// must discard the thread with the goroutine rather than reuse it.
		conn, err, back := n.dialInside(ctx, network, addr)
		if back {
			runtime.UnlockOSThread()
		}
		done <- result{conn, err}
	}()
	r := <-done
	return r.conn, r.err
}

func (n *Netns) dialInside(ctx context.Context, network, addr string) (net.Conn, error, bool) {
	host, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err, true
	}
	defer unix.Close(host)
	target, err := unix.Open("/run/netns/"+n.Name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err, true
	}
	defer unix.Close(target)
	if err := unix.Setns(target, syscall.CLONE_NEWNET); err != nil {
		return nil, fmt.Errorf("joining network namespace %s: %w", n.Name, err), true
	}
	d := net.Dialer{Timeout: 10 * time.Second}
	conn, dialErr := d.DialContext(ctx, network, addr)
	if err := unix.Setns(host, syscall.CLONE_NEWNET); err != nil {
		if conn != nil {
			conn.Close()
		}
		return nil, fmt.Errorf("returning to the host's network namespace: %w", err), false
	}
	return conn, dialErr, true
}
