package ebpfreceiver

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/yairfalse/tapio/internal/kerneltest"
)

// The workload tests run this test binary as the servers whose workers and listeners the kernel
// must tell apart: a pre-fork server whose workers were re-executed (the way Node's cluster or a
// Go supervisor starts them) and a plain listener that stops gracefully on SIGTERM.
const (
	// preforkServerEnv, set to a memory cgroup's cgroup.procs, makes the process a server that
	// listens on 127.0.0.1, prints "port <n>", and starts two workers that serve its socket.
	preforkServerEnv = "TAPIO_TEST_PREFORK_SERVER"
	// preforkWorkerEnv makes the process a worker serving the listening socket on fd 3.
	preforkWorkerEnv = "TAPIO_TEST_PREFORK_WORKER"
	// listenerEnv, set to an address, makes the process listen there, print "ready <pid>", hold
	// the connections it accepts, and exit 0 on SIGTERM or when its stdin closes.
	listenerEnv = "TAPIO_TEST_LISTEN"
)

// serveIfAsked turns this process into one of the helper servers when its environment asks.
func serveIfAsked() {
	switch {
	case os.Getenv(preforkServerEnv) != "":
		preforkServer(os.Getenv(preforkServerEnv))
	case os.Getenv(preforkWorkerEnv) != "":
		preforkWorker(os.Getenv(preforkWorkerEnv))
	case os.Getenv(listenerEnv) != "":
		gracefulListener(os.Getenv(listenerEnv))
	}
}

func exitWith(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(2)
}

func preforkServer(procs string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		exitWith("listen: %v", err)
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		exitWith("listener file: %v", err)
	}
	var workers []*exec.Cmd
	for i := 0; i < 2; i++ {
		w := exec.Command(os.Args[0], "-test.run", "^$")
		w.Env = append(withoutEnv(os.Environ(), preforkServerEnv), preforkWorkerEnv+"="+procs)
		w.ExtraFiles = []*os.File{f}
		w.Stdout, w.Stderr = os.Stderr, os.Stderr
		if err := w.Start(); err != nil {
			exitWith("start worker: %v", err)
		}
		workers = append(workers, w)
	}
	fmt.Printf("port %d\n", ln.Addr().(*net.TCPAddr).Port)
	_, _ = io.Copy(io.Discard, os.Stdin) // until the test is done with it
	for _, w := range workers {
		_ = w.Process.Kill()
		_ = w.Wait()
	}
	os.Exit(0)
}

func preforkWorker(procs string) {
	ln, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		exitWith("inherited listener: %v", err)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			exitWith("accept: %v", err)
		}
		line, _ := bufio.NewReader(c).ReadString('\n')
		if strings.TrimSpace(line) != "hog" {
			fmt.Fprintf(c, "pong %d\n", os.Getpid())
			c.Close()
			continue
		}
		fmt.Fprintf(c, "pid %d\n", os.Getpid())
		if err := os.WriteFile(procs, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			exitWith("join the memory cgroup: %v", err)
		}
		var chunks [][]byte
		for {
			chunk := make([]byte, 1<<20)
			for j := 0; j < len(chunk); j += 4096 {
				chunk[j] = 1 // resident, not merely reserved
			}
			chunks = append(chunks, chunk)
		}
	}
}

func gracefulListener(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		exitWith("listen on %s: %v", addr, err)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)
	go func() {
		var held []net.Conn
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	fmt.Printf("ready %d\n", os.Getpid())
	<-stop
	ln.Close()
	os.Exit(0) // a graceful stop: the signal is handled, the exit code is 0
}

func withoutEnv(env []string, key string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// helperServer is a started helper process and the first line it printed.
type helperServer struct {
	cmd   *exec.Cmd
	stdin io.Closer
	first string
}

// startHelper starts cmd, waits for its first line of output and stops it when the test ends.
func startHelper(t *testing.T, cmd *exec.Cmd) *helperServer {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	h := &helperServer{cmd: cmd, stdin: stdin}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case h.first = <-lines:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s printed nothing within 10s", cmd.Path)
	}
	if h.first == "" {
		t.Fatalf("%s exited before it was ready", cmd.Path)
	}
	return h
}

// field returns the n-th word of the helper's first line as a number.
func (h *helperServer) number(t *testing.T, word int) int {
	t.Helper()
	f := strings.Fields(h.first)
	if len(f) <= word {
		t.Fatalf("unexpected first line %q", h.first)
	}
	n, err := strconv.Atoi(f[word])
	if err != nil {
		t.Fatalf("unexpected first line %q: %v", h.first, err)
	}
	return n
}

// memoryHierarchy returns where this process's cgroup is in the hierarchy the kernel programs
// capture (the memory controller's on cgroup v1, the unified one on v2) and that hierarchy's
// mount point.
func memoryHierarchy(t *testing.T) (mount, path string) {
	t.Helper()
	raw, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && strings.Contains(","+parts[1]+",", ",memory,") {
			return "/sys/fs/cgroup/memory", parts[2]
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		if rest, ok := strings.CutPrefix(line, "0::"); ok {
			if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
				return "/sys/fs/cgroup", rest
			}
		}
	}
	kerneltest.SkipOrFail(t, "no memory cgroup for this process (needs the cgroup v1 memory controller or cgroup v2)")
	return "", ""
}

// childCgroup creates a cgroup named name below this process's own, removed when the test ends,
// and returns its cgroup.procs file.
func childCgroup(t *testing.T, name string) string {
	t.Helper()
	mount, path := memoryHierarchy(t)
	dir := filepath.Join(mount, path, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		kerneltest.SkipOrFail(t, "cannot create the cgroup %s (run as root): %v", dir, err)
	}
	t.Cleanup(func() {
		// The last process may still be on its way out.
		for i := 0; i < 50; i++ {
			if err := os.Remove(dir); err == nil || os.IsNotExist(err) {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("cgroup %s could not be removed", dir)
	})
	return filepath.Join(dir, "cgroup.procs")
}
