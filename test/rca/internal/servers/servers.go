// Package servers starts the third-party servers of the suite's shop — PostgreSQL, Redis and
// nginx from Debian's packages — and its two instrumented services, each on its own loopback
// port with its own files under the run's directory, optionally in a memory cgroup or a network
// namespace of its own. Every start registers its own cleanup.
package servers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/yairfalse/tapio/internal/memcg"
)

// Cleaner collects what to undo when a run ends, last registered first.
type Cleaner interface {
	Defer(what string, undo func() error)
}

// Env is where a run's servers go.
type Env struct {
	// RunDir holds data directories, sockets, configuration and logs.
	RunDir string
	// LogDir receives one log file per process.
	LogDir string
	// CacheDir keeps what is slow to make and the same every run (PostgreSQL's initdb).
	CacheDir string
	Cleanup  Cleaner
}

// inNetns prefixes argv so that it runs in the named network namespace: `ip netns exec` execs
// the program in place, so the pid the harness sees is the server's own.
func inNetns(netns string, argv []string) []string {
	if netns == "" {
		return argv
	}
	return append([]string{"ip", "netns", "exec", netns}, argv...)
}

// memoryGroup creates a memory cgroup for one server and registers its removal: every process
// still in it (a pre-fork server's orphaned children too) is killed first.
func memoryGroup(env Env, name string, limit int64) (*memcg.Group, error) {
	g, err := memcg.Create("tapio-rca-"+name, limit)
	if err != nil {
		return nil, err
	}
	env.Cleanup.Defer("memory cgroup "+g.Dir, func() error { return removeGroup(g) })
	return g, nil
}

func removeGroup(g *memcg.Group) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids, err := GroupPids(g)
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return g.Remove()
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v still in %s", pids, g.Dir)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// GroupPids lists the processes in a memory cgroup.
func GroupPids(g *memcg.Group) ([]int, error) {
	raw, err := os.ReadFile(g.Procs())
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(raw)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// WaitListening waits until process pid (or anything in its network namespace) listens on
// 127.0.0.1:port, reading /proc/<pid>/net/tcp rather than connecting: a probe before the server is
// up would be a real refused connection, which Tapio would rightly see.
func WaitListening(ctx context.Context, pid, port int, exited <-chan struct{}, timeout time.Duration) error {
	want := fmt.Sprintf("0100007F:%04X", port)
	deadline := time.Now().Add(timeout)
	for {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
		if err == nil {
			for _, line := range strings.Split(string(raw), "\n")[1:] {
				fields := strings.Fields(line)
				// local_address is the second field, st the fourth; 0A is TCP_LISTEN.
				if len(fields) > 3 && fields[1] == want && fields[3] == "0A" {
					return nil
				}
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("the process ended before it listened on port %d", port)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on 127.0.0.1:%d after %s", port, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// WaitLogLine waits until the file at path contains line.
func WaitLogLine(ctx context.Context, path, line string, exited <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		raw, err := os.ReadFile(path)
		if err == nil && strings.Contains(string(raw), line) {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("the process ended before logging %q", line)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%q not in %s after %s", line, path, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
}

var errNoPort = errors.New("servers: a port is required")
