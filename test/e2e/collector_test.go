//go:build e2e

// Package e2e starts the otelcol-tapio binary built by OCB and drives it the way users do:
// configs on disk, applications speaking OTLP through the OpenTelemetry Go SDK, output read
// back from what the collector wrote.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// collectorBinary is the OCB-built binary; `make e2e-test` sets TAPIO_COLLECTOR_BIN.
func collectorBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("TAPIO_COLLECTOR_BIN")
	if bin == "" {
		bin = filepath.Join(repoRoot(t), "_build", "otelcol-tapio")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("otelcol-tapio not found at %s (run `make build`, or `make test` which builds it): %v", bin, err)
	}
	return bin
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "builder-config.yaml")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("repository root (builder-config.yaml) not found")
		}
		dir = parent
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// runningCollector is one otelcol-tapio process started by a test.
type runningCollector struct {
	cmd    *exec.Cmd
	output *bytes.Buffer
	done   chan error
}

// startCollector writes config to a file, starts the binary on it and waits until its
// health_check extension answers on healthPort.
func startCollector(t *testing.T, config string, healthPort int) *runningCollector {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &runningCollector{output: new(bytes.Buffer), done: make(chan error, 1)}
	c.cmd = exec.Command(collectorBinary(t), "--config", path)
	c.cmd.Stdout, c.cmd.Stderr = c.output, c.output
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.done <- c.cmd.Wait() }()
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			_ = c.cmd.Process.Kill()
			<-c.done
		}
		if t.Failed() {
			t.Logf("collector output:\n%s", c.output.String())
		}
	})

	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-c.done:
			t.Fatalf("collector exited during start-up: %v\n%s", err, c.output.String())
		default:
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", healthPort))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("collector not healthy after 30s\n%s", c.output.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop sends SIGTERM and expects a clean exit: the collector flushes and shuts down every
// component.
func (c *runningCollector) stop(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c.done:
		if err != nil {
			t.Fatalf("collector exited with %v\n%s", err, c.output.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("collector did not stop within 30s of SIGTERM\n%s", c.output.String())
	}
}

// readJSONLines decodes what the file exporter wrote: one OTLP JSON document per line.
func readJSONLines[T any](path string, decode func([]byte) (T, error)) ([]T, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []T
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 1<<20), 64<<20)
	for scanner.Scan() {
		line := bytes.TrimSpace(scanner.Bytes())
		if len(line) == 0 {
			continue
		}
		v, err := decode(line)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, v)
	}
	return out, scanner.Err()
}

func readLogs(path string) ([]plog.Logs, error) {
	var u plog.JSONUnmarshaler
	return readJSONLines(path, u.UnmarshalLogs)
}

func readTraces(path string) ([]ptrace.Traces, error) {
	var u ptrace.JSONUnmarshaler
	return readJSONLines(path, u.UnmarshalTraces)
}

// eventually polls check until it returns nil or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// scrape reads one counter family from the collector's own Prometheus endpoint and sums the
// series whose labels contain every given label pair.
func scrape(ctx context.Context, port int, family string, labels ...string) (float64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/metrics", port), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var total float64
	found := false
	scanner := bufio.NewScanner(resp.Body)
	for scanner.Scan() {
		line := scanner.Text()
		if !strings.HasPrefix(line, family) {
			continue
		}
		match := true
		for _, l := range labels {
			if !strings.Contains(line, l) {
				match = false
			}
		}
		if !match {
			continue
		}
		var v float64
		if _, err := fmt.Sscanf(line[strings.LastIndexByte(line, ' ')+1:], "%g", &v); err == nil {
			total += v
			found = true
		}
	}
	if !found {
		return 0, errors.New(family + " not exposed")
	}
	return total, scanner.Err()
}
