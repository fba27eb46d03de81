// Package fault injects the suite's faults with the system's own tools and reports exactly what it
// did — the signal and the pid of the process that sent it, the port it dropped, the device it
// broke — which is what each run's expected root cause is made of. Every fault registers its own
// undo.
package fault

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/yairfalse/tapio/test/rca/internal/proc"
)

// Cleaner collects what to undo when a run ends, last registered first.
type Cleaner interface {
	Defer(what string, undo func() error)
}

// Signal is a signal one process sent another.
type Signal struct {
	Signal    syscall.Signal
	TargetPID int
	// SenderPID and SenderName are the process that sent it: procps's kill, started for that.
	SenderPID  int
	SenderName string
	At         time.Time
}

// Kill sends sig to pid from a process of its own (/usr/bin/kill, as an operator or a script
// would), so that the sender is a real, known process other than the harness.
func Kill(logDir string, sig syscall.Signal, pid int) (Signal, error) {
	s := Signal{Signal: sig, TargetPID: pid, SenderName: "kill", At: time.Now()}
	p, err := proc.Start(proc.Spec{Name: "kill", Argv: []string{"/usr/bin/kill", "-s", strconv.Itoa(int(sig)), strconv.Itoa(pid)}, LogDir: logDir})
	if err != nil {
		return s, err
	}
	s.SenderPID = p.Pid()
	if !p.WaitTimeout(10 * time.Second) {
		p.Kill()
		return s, fmt.Errorf("kill -%d %d did not finish", sig, pid)
	}
	if !p.ExitedZero() {
		return s, fmt.Errorf("kill -%d %d: %s: %s", sig, pid, p.Outcome(), p.LogTail(200))
	}
	return s, nil
}

// run runs a tool that must succeed.
func run(logDir string, argv ...string) error {
	return proc.Run(proc.Spec{Name: argv[0], Argv: argv, LogDir: logDir}, time.Minute)
}

// runIn runs a tool in a network namespace ("" for the host's).
func runIn(logDir, netns string, argv ...string) error {
	if netns != "" {
		argv = append([]string{"ip", "netns", "exec", netns}, argv...)
	}
	return run(logDir, argv...)
}

// writeFile writes a file for a tool to read.
func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o644) }
