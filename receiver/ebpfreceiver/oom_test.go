package ebpfreceiver

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

const oomLimitBytes = 64 << 20

// memoryCgroup creates a child of this process's memory cgroup with a 64 MiB limit (cgroup v1
// memory controller or cgroup v2) and returns the file that moves a process into it.
func memoryCgroup(t *testing.T) (dir, procs string) {
	t.Helper()
	raw, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("tapio-oom-%d", time.Now().UnixNano())
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var base, limitFile string
		switch {
		case strings.Split(parts[1], ",")[0] == "memory" || strings.Contains(","+parts[1]+",", ",memory,"):
			base, limitFile = filepath.Join("/sys/fs/cgroup/memory", parts[2]), "memory.limit_in_bytes"
		case parts[0] == "0" && parts[1] == "":
			if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err != nil {
				continue // no unified hierarchy mounted
			}
			base, limitFile = filepath.Join("/sys/fs/cgroup", parts[2]), "memory.max"
		default:
			continue
		}
		dir = filepath.Join(base, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			continue
		}
		t.Cleanup(func() { _ = os.Remove(dir) })
		if err := os.WriteFile(filepath.Join(dir, limitFile), []byte(fmt.Sprint(oomLimitBytes)), 0o644); err != nil {
			t.Fatalf("setting the memory limit: %v", err)
		}
		return dir, filepath.Join(dir, "cgroup.procs")
	}
	if os.Getenv("TAPIO_REQUIRE_EBPF") == "1" {
		t.Fatal("no writable memory cgroup for the OOM test")
	}
	t.Skip("no writable memory cgroup here (needs the cgroup v1 memory controller or cgroup v2 with memory delegated)")
	return "", ""
}

func TestOOMKillInAMemoryCgroup(t *testing.T) {
	rr := startReceiver(t, nil)
	dir, procs := memoryCgroup(t)

	// The shell moves itself into the cgroup, then becomes the memory hog.
	hog := exec.Command("/bin/sh", "-c", `echo $$ > "$0" && exec "$1" -test.run '^$'`, procs, os.Args[0])
	hog.Env = append(os.Environ(), memoryHogEnv+"=1")
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
		t.Errorf("exit after the OOM kill: %v", e.record.Attributes().AsRaw())
	}
}
