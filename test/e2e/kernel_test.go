//go:build e2e

package e2e

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

const memoryHogEnv = "TAPIO_E2E_MEMORY_HOG"

func TestMain(m *testing.M) {
	if os.Getenv(memoryHogEnv) == "1" {
		var chunks [][]byte
		for i := 0; i < 4096; i++ {
			chunk := make([]byte, 1<<20)
			for j := 0; j < len(chunk); j += 4096 {
				chunk[j] = 1
			}
			chunks = append(chunks, chunk)
		}
		_ = chunks
		os.Exit(3)
	}
	os.Exit(m.Run())
}

const oomConfig = `
extensions:
  health_check:
    endpoint: 127.0.0.1:%[1]d
receivers:
  ebpf:
    batch:
      timeout: 100ms
processors:
  unifiedevent:
exporters:
  file:
    path: %[2]s
    flush_interval: 100ms
service:
  extensions: [health_check]
  pipelines:
    logs:
      receivers: [ebpf]
      processors: [unifiedevent]
      exporters: [file]
`

// TestCollectorObservesARealOOMKill starts otelcol-tapio with the ebpf receiver, has the kernel
// OOM-kill a process in a 64 MiB memory cgroup, and reads the oom_kill event the binary wrote.
func TestCollectorObservesARealOOMKill(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("TAPIO_REQUIRE_EBPF") == "1" {
			t.Fatal("TAPIO_REQUIRE_EBPF=1 but not root: the ebpf receiver needs CAP_BPF and CAP_PERFMON")
		}
		t.Skip("not root: the ebpf receiver needs CAP_BPF and CAP_PERFMON")
	}
	healthPort := freePort(t)
	out := filepath.Join(t.TempDir(), "kernel.jsonl")
	collector := startCollector(t, fmt.Sprintf(oomConfig, healthPort, out), healthPort)

	procs := memoryCgroupProcs(t, 64<<20)
	hog := exec.Command("/bin/sh", "-c", `echo $$ > "$0" && exec "$1" -test.run '^$'`, procs, os.Args[0])
	hog.Env = append(os.Environ(), memoryHogEnv+"=1")
	if err := hog.Run(); err == nil {
		t.Fatal("the memory hog survived its 64 MiB limit")
	}
	pid := int64(hog.Process.Pid)

	var oom logRecord
	eventually(t, 20*time.Second, func() error {
		logs, err := readLogs(out)
		if err != nil {
			return err
		}
		for _, r := range indexLogs(logs)[string(unifiedevent.OOMKill)] {
			if v, _ := r.rec.Attributes().Get(unifiedevent.KeyProcessPID); v.Int() == pid {
				oom = r
				return nil
			}
		}
		return fmt.Errorf("no oom_kill for pid %d yet", pid)
	})
	attrs := unifiedevent.Of(oom.rec.Attributes())
	if _, err := attrs.Validate(); err != nil {
		t.Error(err)
	}
	if v, _ := oom.rec.Attributes().Get(unifiedevent.KeyKernelOOMMemcgLimitBytes); v.Int() != 64<<20 {
		t.Errorf("memcg limit %d, want 64 MiB", v.Int())
	}
	if !strings.Contains(oom.rec.Body().Str(), fmt.Sprintf("(pid %d): memory cgroup limit 64 MiB reached", pid)) {
		t.Errorf("narrative %q", oom.rec.Body().Str())
	}
	collector.stop(t)
}

// memoryCgroupProcs makes a child of this process's memory cgroup with the given limit and
// returns its cgroup.procs file.
func memoryCgroupProcs(t *testing.T, limit int) string {
	t.Helper()
	raw, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("tapio-e2e-oom-%d", time.Now().UnixNano())
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var dir, limitFile string
		switch {
		case strings.Contains(","+parts[1]+",", ",memory,"):
			dir, limitFile = filepath.Join("/sys/fs/cgroup/memory", parts[2], name), "memory.limit_in_bytes"
		case parts[0] == "0" && parts[1] == "":
			if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err != nil {
				continue
			}
			dir, limitFile = filepath.Join("/sys/fs/cgroup", parts[2], name), "memory.max"
		default:
			continue
		}
		if err := os.Mkdir(dir, 0o755); err != nil {
			continue
		}
		t.Cleanup(func() { _ = os.Remove(dir) })
		if err := os.WriteFile(filepath.Join(dir, limitFile), []byte(fmt.Sprint(limit)), 0o644); err != nil {
			t.Fatal(err)
		}
		return filepath.Join(dir, "cgroup.procs")
	}
	t.Fatal("no writable memory cgroup")
	return ""
}
