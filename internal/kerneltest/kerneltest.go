// Package kerneltest causes real kernel events for tests: a memory cgroup with a small limit and a
// process that allocates until the kernel OOM-kills it. It skips where the machine cannot, and
// fails instead when TAPIO_REQUIRE_EBPF=1 (CI).
package kerneltest

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/yairfalse/tapio/internal/memcg"
)

// RequireEBPFEnv makes a skipped kernel test a failure.
const RequireEBPFEnv = "TAPIO_REQUIRE_EBPF"

// SkipOrFail skips with the reason, or fails when the environment requires kernel tests to run.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv(RequireEBPFEnv) == "1" {
		t.Fatalf(RequireEBPFEnv+"=1 but: "+format, args...)
	}
	t.Skipf(format, args...)
}

// MemoryHogEnv, set to 1, makes HogMemoryIfAsked turn the process into a memory hog.
const MemoryHogEnv = "TAPIO_TEST_MEMORY_HOG"

// HogMemoryIfAsked allocates and touches memory until the kernel kills the process, when
// MemoryHogEnv is set; a test binary calls it first thing in TestMain.
func HogMemoryIfAsked() {
	if os.Getenv(MemoryHogEnv) != "1" {
		return
	}
	var chunks [][]byte
	for i := 0; i < 4096; i++ {
		chunk := make([]byte, 1<<20)
		for j := 0; j < len(chunk); j += 4096 {
			chunk[j] = 1 // touch every page so that it is really resident
		}
		chunks = append(chunks, chunk)
	}
	_ = chunks
	os.Exit(3) // not reached under a limit: the OOM killer ends the process first
}

// MemoryCgroup creates a child of this process's memory cgroup limited to limitBytes, removed
// when the test ends. It returns the cgroup's directory and the cgroup.procs file.
func MemoryCgroup(t testing.TB, limitBytes int) (dir, procs string) {
	t.Helper()
	g, err := memcg.Create("tapio-oom", int64(limitBytes))
	if err != nil {
		SkipOrFail(t, "%v", err)
	}
	t.Cleanup(func() { _ = g.Remove() })
	return g.Dir, g.Procs()
}

// HogCommandArgs runs this test binary as a memory hog inside the cgroup whose cgroup.procs is
// given: the shell moves itself in, then becomes the hog. Set MemoryHogEnv=1 in its environment.
func HogCommandArgs(procs string) []string {
	return []string{"/bin/sh", "-c", `echo $$ > "$0" && exec "$1" -test.run '^$'`, procs, os.Args[0]}
}

// ConnectLoopEnv, set to "port:count", makes ConnectLoopIfAsked turn the process into a workload
// that makes count refused connects to 127.0.0.1:port and exits: benchmarks run it as a process of
// its own, the way a real workload runs beside the collector.
const ConnectLoopEnv = "TAPIO_TEST_CONNECT_LOOP"

// ConnectLoopIfAsked runs the connect workload when ConnectLoopEnv is set; a test binary calls it
// first thing in TestMain.
func ConnectLoopIfAsked() {
	spec := os.Getenv(ConnectLoopEnv)
	if spec == "" {
		return
	}
	var port, count int
	if _, err := fmt.Sscanf(spec, "%d:%d", &port, &count); err != nil {
		fmt.Fprintln(os.Stderr, "bad", ConnectLoopEnv, spec, err)
		os.Exit(2)
	}
	addr := &syscall.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}
	for i := 0; i < count; i++ {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := syscall.Connect(fd, addr); err != syscall.ECONNREFUSED {
			fmt.Fprintln(os.Stderr, "connect:", err)
			os.Exit(1)
		}
		syscall.Close(fd)
	}
	os.Exit(0)
}

// ConnectLoopCommand is the command that runs this test binary as the connect workload.
func ConnectLoopCommand(port, count int) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d:%d", ConnectLoopEnv, port, count))
	cmd.Stderr = os.Stderr
	return cmd
}

// ExecLoopEnv, set to a count, makes ExecLoopIfAsked turn the process into a workload that runs
// /bin/true that many times, one after the other, and exits.
const ExecLoopEnv = "TAPIO_TEST_EXEC_LOOP"

// ExecLoopIfAsked runs the exec workload when ExecLoopEnv is set; a test binary calls it first
// thing in TestMain.
func ExecLoopIfAsked() {
	spec := os.Getenv(ExecLoopEnv)
	if spec == "" {
		return
	}
	var count int
	if _, err := fmt.Sscanf(spec, "%d", &count); err != nil {
		fmt.Fprintln(os.Stderr, "bad", ExecLoopEnv, spec, err)
		os.Exit(2)
	}
	for i := 0; i < count; i++ {
		if err := exec.Command("/bin/true").Run(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	os.Exit(0)
}

// ExecLoopCommand is the command that runs this test binary as the exec workload.
func ExecLoopCommand(count int) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", ExecLoopEnv, count))
	cmd.Stderr = os.Stderr
	return cmd
}
