// Package child runs the load test's processes (collectors, load generators), each pinned to its
// CPUs, logging to its own file, and never outliving the harness: it is killed with the harness
// (Pdeathsig), by Stop, and by KillAll when the harness is interrupted.
package child

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Spec says what to start.
type Spec struct {
	Name string
	Argv []string
	Env  []string // added to the harness's environment
	// CPUs pins the process (taskset -c), so that the collector and the load generator do not
	// take each other's CPU; empty runs it anywhere.
	CPUs    string
	LogPath string // stderr (and stdout, unless Capture)
	// Capture keeps stdout in memory (the generator's JSON report).
	Capture bool
}

// Child is one started process.
type Child struct {
	Name    string
	LogPath string
	cmd     *exec.Cmd
	stdout  bytes.Buffer
	done    chan struct{}
	err     error
}

var (
	mu      sync.Mutex
	running = map[*Child]bool{}
)

// Start launches the process.
func Start(s Spec) (*Child, error) {
	argv := s.Argv
	if s.CPUs != "" {
		argv = append([]string{"taskset", "-c", s.CPUs}, argv...)
	}
	logFile, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	c := &Child{Name: s.Name, LogPath: s.LogPath, done: make(chan struct{})}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), s.Env...)
	cmd.Stderr = logFile
	cmd.Stdout = logFile
	if s.Capture {
		cmd.Stdout = &c.stdout
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", s.Name, err)
	}
	c.cmd = cmd
	mu.Lock()
	running[c] = true
	mu.Unlock()
	go func() {
		c.err = cmd.Wait()
		logFile.Close()
		mu.Lock()
		delete(running, c)
		mu.Unlock()
		close(c.done)
	}()
	return c, nil
}

// Pid of the process (taskset execs it, so the pid is the program's own).
func (c *Child) Pid() int { return c.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (c *Child) Exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Wait waits up to d for the end; the error says how it ended (nil: exit 0).
func (c *Child) Wait(d time.Duration) error {
	if c.Exited() {
		return c.err
	}
	select {
	case <-c.done:
		return c.err
	case <-time.After(d):
		return fmt.Errorf("%s still running after %s", c.Name, d)
	}
}

// Stop sends SIGTERM, then SIGKILL after grace, and waits.
func (c *Child) Stop(grace time.Duration) {
	if c.Exited() {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(grace):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// CPUSeconds is the user + system time the ended process used (0 while it runs).
func (c *Child) CPUSeconds() float64 {
	if !c.Exited() || c.cmd.ProcessState == nil {
		return 0
	}
	return (c.cmd.ProcessState.UserTime() + c.cmd.ProcessState.SystemTime()).Seconds()
}

// Stdout is what a Capture process printed.
func (c *Child) Stdout() []byte { <-c.done; return c.stdout.Bytes() }

// LogTail is the end of the process's log, for error messages.
func (c *Child) LogTail(n int) string {
	raw, err := os.ReadFile(c.LogPath)
	if err != nil {
		return err.Error()
	}
	if len(raw) > n {
		raw = raw[len(raw)-n:]
	}
	return strings.TrimSpace(string(raw))
}

// KillAll kills every process still running, for an interrupted harness.
func KillAll() {
	mu.Lock()
	var all []*Child
	for c := range running {
		all = append(all, c)
	}
	mu.Unlock()
	for _, c := range all {
		_ = c.cmd.Process.Kill()
	}
	for _, c := range all {
		<-c.done
	}
}
