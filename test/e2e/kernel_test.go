//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/yairfalse/tapio/internal/kerneltest"
	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

func TestMain(m *testing.M) {
	kerneltest.HogMemoryIfAsked() // the OOM test runs this binary as its victim
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
		kerneltest.SkipOrFail(t, "not root: the ebpf receiver needs CAP_BPF and CAP_PERFMON")
	}
	healthPort := freePort(t)
	out := filepath.Join(t.TempDir(), "kernel.jsonl")
	collector := startCollector(t, fmt.Sprintf(oomConfig, healthPort, out), healthPort)

	_, procs := kerneltest.MemoryCgroup(t, 64<<20)
	args := kerneltest.HogCommandArgs(procs)
	hog := exec.Command(args[0], args[1:]...)
	hog.Env = append(os.Environ(), kerneltest.MemoryHogEnv+"=1")
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
			if v, _ := unifiedevent.EventInt(r.resource, r.rec.Attributes(), unifiedevent.KeyProcessPID); v == pid {
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

// TestReceiverRefusesToStartWithoutPrivileges runs the binary as an unprivileged user: the
// collector must not start, and the reason must name the capabilities needed.
func TestReceiverRefusesToStartWithoutPrivileges(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the binary as another user")
	}
	dir, err := os.MkdirTemp("", "tapio-unprivileged-") // reachable by the unprivileged user
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "otelcol-tapio")
	raw, err := os.ReadFile(collectorBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, raw, 0o755); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(config, []byte("receivers:\n  ebpf:\nexporters:\n  debug:\nservice:\n  pipelines:\n    logs:\n      receivers: [ebpf]\n      exporters: [debug]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", config)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the collector started without privileges:\n%s", out)
	}
	if !strings.Contains(string(out), "the ebpf receiver needs CAP_BPF and CAP_PERFMON") {
		t.Errorf("the refusal does not name the capabilities needed (%v):\n%s", err, out)
	}
}
