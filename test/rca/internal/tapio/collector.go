// Package tapio runs the otelcol-tapio under test and reads its impact API. The API is read with
// plain net/http and this package's own copy of the JSON shape of docs/API.md: the suite checks
// the contract from the outside, as any client would.
package tapio

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/yairfalse/tapio/test/rca/internal/proc"
)

// Ports are the collector's listening ports, all on 127.0.0.1.
type Ports struct {
	Health, OTLPGRPC, OTLPHTTP, API, Pprof, Metrics int
}

// Options says which binary and configuration to run.
type Options struct {
	Binary string
	// Configs are merged in order: the shipped config, then the suite's overlay.
	Configs []string
	Ports   Ports
	// DataDir is the collector's own, fresh for every run: no incident carries over.
	DataDir string
	LogDir  string
}

// Collector is a running otelcol-tapio.
type Collector struct {
	Proc       *proc.Proc
	API        *Client
	OTLPSocket string
}

// Start launches the collector and waits until its health check answers.
func Start(ctx context.Context, o Options) (*Collector, error) {
	if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
		return nil, err
	}
	socket := filepath.Join(o.DataDir, "otlp.sock")
	argv := []string{o.Binary}
	for _, c := range o.Configs {
		argv = append(argv, "--config", c)
	}
	p, err := proc.Start(proc.Spec{
		Name: "otelcol-tapio",
		Argv: argv,
		Env: []string{
			"TAPIO_DATA_DIR=" + o.DataDir,
			"RCA_HEALTH_PORT=" + strconv.Itoa(o.Ports.Health),
			"RCA_OTLP_GRPC_PORT=" + strconv.Itoa(o.Ports.OTLPGRPC),
			"RCA_OTLP_HTTP_PORT=" + strconv.Itoa(o.Ports.OTLPHTTP),
			"RCA_API_PORT=" + strconv.Itoa(o.Ports.API),
			"RCA_PPROF_PORT=" + strconv.Itoa(o.Ports.Pprof),
			"RCA_METRICS_PORT=" + strconv.Itoa(o.Ports.Metrics),
			"RCA_OTLP_SOCKET=" + socket,
		},
		LogDir: o.LogDir,
	})
	if err != nil {
		return nil, err
	}
	c := &Collector{Proc: p, API: &Client{Base: fmt.Sprintf("http://127.0.0.1:%d", o.Ports.API)}, OTLPSocket: socket}
	health := fmt.Sprintf("http://127.0.0.1:%d/", o.Ports.Health)
	deadline := time.Now().Add(60 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, health, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			drainAndClose(resp)
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if p.Exited() || time.Now().After(deadline) {
			p.Kill()
			return nil, fmt.Errorf("otelcol-tapio did not become healthy (%s): %s", p.Outcome(), p.LogTail(2000))
		}
		select {
		case <-ctx.Done():
			p.Kill()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return c, nil
}

// Stop shuts the collector down.
func (c *Collector) Stop() {
	c.Proc.Stop(syscall.SIGTERM, 15*time.Second)
}

// drainAndClose reads an answer to its end before closing it. A connection closed with unread
// bytes is reset (RST), and the harness's own resets would be evidence Tapio sees like any other.
func drainAndClose(resp *http.Response) {
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}
