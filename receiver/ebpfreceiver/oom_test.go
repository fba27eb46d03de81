package ebpfreceiver

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/yairfalse/tapio/internal/kerneltest"
	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

const oomLimitBytes = 64 << 20

func TestOOMKillInAMemoryCgroup(t *testing.T) {
	rr := startReceiver(t, nil)
	dir, procs := kerneltest.MemoryCgroup(t, oomLimitBytes)
	args := kerneltest.HogCommandArgs(procs)
	hog := exec.Command(args[0], args[1:]...)
	hog.Env = append(os.Environ(), kerneltest.MemoryHogEnv+"=1")
	err := hog.Run()
	if err == nil {
		t.Fatal("the memory hog survived a 64 MiB limit")
	}
	pid := hog.Process.Pid

	e := rr.waitFor(t, unifiedevent.OOMKill, 10*time.Second, func(e kernelEvent) bool { return e.int("process.pid") == int64(pid) })
	assertUnifiedEvent(t, e)
	if limit := e.int("tapio.kernel.oom.memcg_limit_bytes"); limit != oomLimitBytes {
		t.Errorf("memcg limit = %d, want %d", limit, oomLimitBytes)
	}
	if usage := e.int("tapio.kernel.oom.memcg_usage_bytes"); usage < oomLimitBytes/2 {
		t.Errorf("memcg usage = %d, want close to the limit", usage)
	}
	mustContain(t, "cgroup path", e.str("tapio.kernel.cgroup.path"), filepath.Base(dir))
	mustContain(t, "body", e.record.Body().Str(), fmt.Sprintf("(pid %d): memory cgroup limit 64 MiB reached", pid))
	if e.record.SeverityText() != "ERROR" {
		t.Errorf("severity %q", e.record.SeverityText())
	}

	// The victim's death follows: SIGKILL from the kernel, then the exit.
	e = rr.waitFor(t, unifiedevent.ProcessExit, 5*time.Second, func(e kernelEvent) bool { return e.int("process.pid") == int64(pid) })
	if e.str("tapio.kernel.signal.name") != "SIGKILL" {
		t.Errorf("exit after the OOM kill: %v", e.attributes())
	}

	// The kernel may mark several of the victim's threads as they allocate while dying: still
	// one OOM kill.
	kills := rr.count(unifiedevent.OOMKill, func(e kernelEvent) bool { return e.int("process.pid") == int64(pid) })
	if kills != 1 {
		t.Errorf("%d oom_kill events for one killed process, want 1", kills)
	}
}
