// Package proc runs the suite's child processes: servers, apps, the collector, the tools that
// inject faults. Each one logs to its own file, dies with the harness (Pdeathsig), and reports how
// it ended, so that an expected root cause can be checked against what the kernel really did.
package proc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is one started child process.
type Proc struct {
	Name    string
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{}
	mu      sync.Mutex
	state   *os.ProcessState
	waitErr error
}

// Spec says what to start.
type Spec struct {
	// Name labels the log file and messages.
	Name string
	Argv []string
	// Env is added to the harness's environment.
	Env []string
	Dir string
	// LogDir receives <Name>.log with the process's stdout and stderr.
	LogDir string
	// Credential runs the process as another user (PostgreSQL refuses root).
	Credential *syscall.Credential
}

// Start launches the process.
func Start(s Spec) (*Proc, error) {
	if len(s.Argv) == 0 {
		return nil, errors.New("proc: empty argv")
	}
	logPath := filepath.Join(s.LogDir, s.Name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(s.Argv[0], s.Argv[1:]...)
	cmd.Env = append(os.Environ(), s.Env...)
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Never outlive the harness, whatever happens to it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Credential: s.Credential}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", s.Name, err)
	}
	p := &Proc{Name: s.Name, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	started.Store(cmd.Process.Pid, true)
	go func() {
		err := cmd.Wait()
		logFile.Close()
		p.mu.Lock()
		p.state, p.waitErr = cmd.ProcessState, err
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// started holds the pid of every process the suite started, so that an incident about a process
// nobody in the suite started can be told apart (on a shared machine, other people's work).
var started sync.Map

// Register records a process the suite started indirectly (a shell's child that lived too short
// to be seen any other way).
func Register(pid int) { started.Store(pid, true) }

// Started reports whether the suite started the process pid.
func Started(pid int) bool {
	_, ok := started.Load(pid)
	return ok
}

// Run starts the process and waits for it, failing unless it exits 0.
func Run(s Spec, timeout time.Duration) error {
	p, err := Start(s)
	if err != nil {
		return err
	}
	if !p.WaitTimeout(timeout) {
		p.Kill()
		return fmt.Errorf("%s did not finish within %s", s.Name, timeout)
	}
	if !p.ExitedZero() {
		return fmt.Errorf("%s %s: %s (log %s: %s)", s.Name, strings.Join(s.Argv, " "), p.Outcome(), p.LogPath, p.LogTail(400))
	}
	return nil
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the process has been reaped.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// WaitTimeout waits for the end of the process; false if it still runs after d.
func (p *Proc) WaitTimeout(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// Signal sends sig; an ended process is not an error.
func (p *Proc) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return nil
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}

// Kill ends the process with SIGKILL and waits for it.
func (p *Proc) Kill() {
	_ = p.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends sig, then SIGKILL after grace.
func (p *Proc) Stop(sig syscall.Signal, grace time.Duration) {
	_ = p.Signal(sig)
	if !p.WaitTimeout(grace) {
		p.Kill()
	}
}

// ExitedZero reports a normal exit with status 0.
func (p *Proc) ExitedZero() bool {
	ws, ok := p.WaitStatus()
	return ok && ws.Exited() && ws.ExitStatus() == 0
}

// WaitStatus is how the process ended; false while it runs.
func (p *Proc) WaitStatus() (syscall.WaitStatus, bool) {
	if !p.Exited() {
		return 0, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == nil {
		return 0, false
	}
	ws, ok := p.state.Sys().(syscall.WaitStatus)
	return ws, ok
}

// Outcome describes how the process ended, e.g. "killed by SIGSEGV" or "exited with code 0".
func (p *Proc) Outcome() string {
	ws, ok := p.WaitStatus()
	switch {
	case !ok && !p.Exited():
		return "still running"
	case !ok:
		return fmt.Sprint(p.waitErr)
	case ws.Signaled():
		return "killed by " + SignalName(ws.Signal())
	default:
		return fmt.Sprintf("exited with code %d", ws.ExitStatus())
	}
}

// LogTail is the end of the process's log, for error messages.
func (p *Proc) LogTail(max int) string {
	raw, err := os.ReadFile(p.LogPath)
	if err != nil {
		return err.Error()
	}
	if len(raw) > max {
		raw = raw[len(raw)-max:]
	}
	return strings.TrimSpace(string(raw))
}

// SignalName is the conventional name of a signal: SIGKILL, SIGSEGV, …
func SignalName(sig syscall.Signal) string {
	names := map[syscall.Signal]string{
		syscall.SIGHUP: "SIGHUP", syscall.SIGINT: "SIGINT", syscall.SIGQUIT: "SIGQUIT",
		syscall.SIGILL: "SIGILL", syscall.SIGABRT: "SIGABRT", syscall.SIGBUS: "SIGBUS",
		syscall.SIGFPE: "SIGFPE", syscall.SIGKILL: "SIGKILL", syscall.SIGSEGV: "SIGSEGV",
		syscall.SIGPIPE: "SIGPIPE", syscall.SIGALRM: "SIGALRM", syscall.SIGTERM: "SIGTERM",
		syscall.SIGUSR1: "SIGUSR1", syscall.SIGUSR2: "SIGUSR2",
	}
	if n, ok := names[sig]; ok {
		return n
	}
	return fmt.Sprintf("signal %d", int(sig))
}
