package ebpfreceiver

import (
	"os/exec"
	"testing"
	"time"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
	"github.com/yairfalse/tapio/receiver/ebpfreceiver/internal/kernel"
)

func TestProcessExecExitAndFatalSignal(t *testing.T) {
	rr := startReceiver(t, func(c *Config) { c.Probes[kernel.ProbeProcessExec] = true })

	exec1 := exec.Command("/bin/sh", "-c", "exit 3")
	if err := exec1.Run(); err == nil {
		t.Fatal("sh -c 'exit 3' should fail")
	}
	pid := exec1.Process.Pid

	e := rr.waitFor(t, unifiedevent.ProcessExec, 5*time.Second, func(e kernelEvent) bool { return e.int("process.pid") == int64(pid) })
	assertUnifiedEvent(t, e)
	mustContain(t, "process.executable.path", e.str("process.executable.path"), "/sh")

	e = rr.waitFor(t, unifiedevent.ProcessExit, 5*time.Second, func(e kernelEvent) bool { return e.int("process.pid") == int64(pid) })
	assertUnifiedEvent(t, e)
	if code := e.int("process.exit.code"); code != 3 {
		t.Errorf("process.exit.code = %d, want 3", code)
	}
	if e.str("process.executable.name") != "sh" {
		t.Errorf("process.executable.name = %q", e.str("process.executable.name"))
	}
	mustContain(t, "body", e.record.Body().Str(), "(pid "+pidString(pid)+") exited with code 3")

	// A child that segfaults: the kernel sends SIGSEGV and the process dies of it.
	segv := exec.Command("/bin/sh", "-c", "kill -SEGV $$")
	_ = segv.Run()
	spid := segv.Process.Pid
	e = rr.waitFor(t, unifiedevent.FatalSignal, 5*time.Second, func(e kernelEvent) bool { return e.int("process.pid") == int64(spid) })
	assertUnifiedEvent(t, e)
	if e.str("tapio.kernel.signal.name") != "SIGSEGV" || e.int("tapio.kernel.signal.sender.pid") != int64(spid) {
		t.Errorf("fatal_signal attributes: %v", e.attributes())
	}
	e = rr.waitFor(t, unifiedevent.ProcessExit, 5*time.Second, func(e kernelEvent) bool { return e.int("process.pid") == int64(spid) })
	if e.str("tapio.kernel.signal.name") != "SIGSEGV" || e.int("process.exit.code") != 128+11 {
		t.Errorf("process_exit after SIGSEGV: %v", e.attributes())
	}
	mustContain(t, "body", e.record.Body().Str(), "was killed by SIGSEGV")

	// A normal exit is filtered in the kernel, and counted.
	ok := exec.Command("/bin/true")
	if err := ok.Run(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if rr.count(unifiedevent.ProcessExit, func(e kernelEvent) bool { return e.int("process.pid") == int64(ok.Process.Pid) }) != 0 {
		t.Error("a zero exit was emitted although abnormal_only is on")
	}
}

// TestWakeAtOnceEventsLeaveBeforeTheBatchTimeout: an exit is read at once and its batch handed
// downstream as soon as the ring buffer is drained, not after batch.timeout: until ConsumeLogs
// returns it is only in the collector's memory.
func TestWakeAtOnceEventsLeaveBeforeTheBatchTimeout(t *testing.T) {
	rr := startReceiver(t, func(c *Config) {
		// Nothing else flushes within the wait: no batch timeout, no size limit, no retransmit poll.
		c.Batch.Timeout = time.Minute
		c.Batch.MaxSize = 100000
		c.RetransmitInterval = time.Minute
	})
	cmd := exec.Command("/bin/sh", "-c", "exit 4")
	if err := cmd.Run(); err == nil {
		t.Fatal("sh -c 'exit 4' should fail")
	}
	pid := cmd.Process.Pid
	e := rr.waitFor(t, unifiedevent.ProcessExit, 3*time.Second, func(e kernelEvent) bool { return e.int("process.pid") == int64(pid) })
	if code := e.int("process.exit.code"); code != 4 {
		t.Errorf("process.exit.code = %d, want 4", code)
	}
}
