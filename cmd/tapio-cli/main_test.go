package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/bearertokenauthextension"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/goleak"

	"github.com/yairfalse/tapio/exporter/impactexporter"
	"github.com/yairfalse/tapio/pkg/impactapi"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	traceA    = "11111111111111111111111111111111"
	testToken = "cli-test-token"
)

type host struct {
	ext map[component.ID]component.Component
}

func (h host) GetExtensions() map[component.ID]component.Component { return h.ext }

// freeEndpoint returns a loopback address nothing listens on.
func freeEndpoint(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// startCollector runs a real impact exporter, fed with the oom_chain correlation, and returns
// its API base URL.
func startCollector(t *testing.T, withAuth bool) string {
	t.Helper()
	f := impactexporter.NewFactory()
	cfg := f.CreateDefaultConfig().(*impactexporter.Config)
	addr := freeEndpoint(t)
	cfg.HTTP.NetAddr.Endpoint = addr
	cfg.Storage.Directory = t.TempDir()
	cfg.Impact.CustomerFacing.Services = []string{"checkout"}
	cfg.Impact.Transactions = impactexporter.TransactionsConfig{
		Routes:              []impactexporter.RouteMatch{{Service: "checkout", Route: "/api/checkout"}},
		ValuePerTransaction: 42.5, Currency: "EUR",
	}
	cfg.Impact.SLOs = []impactexporter.SLOConfig{{Service: "checkout", Availability: 0.999, Window: 720 * time.Hour, ExpectedRequests: 1e6}}

	h := host{ext: map[component.ID]component.Component{}}
	if withAuth {
		bf := bearertokenauthextension.NewFactory()
		bcfg := bf.CreateDefaultConfig().(*bearertokenauthextension.Config)
		bcfg.BearerToken = configopaque.String(testToken)
		id := component.NewID(bf.Type())
		ext, err := bf.Create(context.Background(), extension.Settings{ID: id,
			TelemetrySettings: componenttest.NewNopTelemetrySettings(), BuildInfo: component.NewDefaultBuildInfo()}, bcfg)
		if err != nil {
			t.Fatal(err)
		}
		h.ext[id] = ext
		if err := ext.Start(context.Background(), h); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ext.Shutdown(context.Background()) })
		cfg.HTTP.Auth = configoptional.Some(confighttp.AuthConfig{Config: configauth.Config{AuthenticatorID: id}})
	}

	exp, err := f.CreateLogs(context.Background(), exportertest.NewNopSettings(f.Type()), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Start(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := exp.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	feed(t, exp)
	endpoint := "http://" + addr
	awaitStored(t, endpoint, 1)
	return endpoint
}

// awaitStored waits until the exporter's sending queue has stored n incidents.
func awaitStored(t *testing.T, endpoint string, n int64) {
	t.Helper()
	c := &impactapi.Client{Endpoint: endpoint, Token: testToken}
	deadline := time.Now().Add(10 * time.Second)
	for {
		h, err := c.Health(t.Context())
		if err == nil && h.Incidents >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the exporter did not store %d incidents: %+v, %v", n, h, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func feed(t *testing.T, exp exporter.Logs) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "correlation-records", "oom_chain.json"))
	if err != nil {
		t.Fatal(err)
	}
	ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.ConsumeLogs(context.Background(), ld); err != nil {
		t.Fatal(err)
	}
}

type result struct {
	code           int
	stdout, stderr string
}

func runCLI(ctx context.Context, env map[string]string, args ...string) result {
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, &stdout, &stderr, func(k string) string { return env[k] })
	return result{code, stdout.String(), stderr.String()}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if got != string(want) {
		t.Fatalf("output differs from %s (run go test -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestCorrelateGolden(t *testing.T) {
	endpoint := startCollector(t, false)
	r := runCLI(t.Context(), nil, "correlate", "--trace-id", traceA, "--endpoint", endpoint)
	if r.code != exitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	golden(t, "correlate", r.stdout)

	all := runCLI(t.Context(), nil, "correlate", "--trace-id", traceA, "--endpoint", endpoint, "--all")
	if all.code != exitOK {
		t.Fatalf("--all: exit %d: %s", all.code, all.stderr)
	}
	for _, want := range []string{"  4. [trace] tapio.trace.dependency_error", "  6. [trace] tapio.trace.server_error"} {
		if !strings.Contains(all.stdout, want) {
			t.Errorf("--all should print every event; %q missing:\n%s", want, all.stdout)
		}
	}
	if strings.Contains(all.stdout, "×2") {
		t.Error("--all must not collapse runs")
	}
}

func TestIncidentsGolden(t *testing.T) {
	endpoint := startCollector(t, false)
	env := map[string]string{envEndpoint: endpoint}
	r := runCLI(t.Context(), env, "incidents", "--service", "checkout")
	if r.code != exitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	golden(t, "incidents", r.stdout)

	r = runCLI(t.Context(), env, "incidents", "--severity", "low")
	if r.code != exitOK || r.stdout != "No incidents.\n" {
		t.Fatalf("empty listing: exit %d, %q", r.code, r.stdout)
	}
	r = runCLI(t.Context(), env, "incidents", "--severity", "urgent")
	if r.code != exitError || !strings.Contains(r.stderr, `severity "urgent" is not one of LOW, MEDIUM, HIGH, CRITICAL`) {
		t.Fatalf("bad severity: exit %d, %q", r.code, r.stderr)
	}
}

func TestJSONOutput(t *testing.T) {
	endpoint := startCollector(t, false)
	env := map[string]string{envEndpoint: endpoint}
	for _, args := range [][]string{
		{"correlate", "--trace-id", traceA, "-o", "json"},
		{"incidents", "-o", "json"},
	} {
		r := runCLI(t.Context(), env, args...)
		var list impactapi.IncidentList
		if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || r.code != 0 {
			t.Fatalf("%v: exit %d, %v in %s", args, r.code, err, r.stdout)
		}
		if list.Count != 1 || list.Incidents[0].Impact.RevenueAtRisk == nil || list.Incidents[0].Impact.RevenueAtRisk.Amount != 85 {
			t.Fatalf("%v: %+v", args, list)
		}
	}
	r := runCLI(t.Context(), env, "health", "-o", "json")
	var h impactapi.Health
	if err := json.Unmarshal([]byte(r.stdout), &h); err != nil || h.Status != "ok" || h.Incidents != 1 {
		t.Fatalf("health json: %v %+v", err, r)
	}
	r = runCLI(t.Context(), env, "health")
	if r.code != 0 || r.stdout != "ok: "+endpoint+" holds 1 incidents\n" {
		t.Fatalf("health: %+v", r)
	}
}

func TestExitCodes(t *testing.T) {
	endpoint := startCollector(t, true)
	env := map[string]string{envEndpoint: endpoint, envToken: testToken}

	r := runCLI(t.Context(), env, "correlate", "--trace-id", strings.Repeat("ab", 16))
	if r.code != exitNotFound || r.stderr != "no incident involves trace abababababababababababababababab\n" {
		t.Errorf("not found: %+v", r)
	}
	r = runCLI(t.Context(), env, "correlate", "--trace-id", traceA)
	if r.code != exitOK {
		t.Errorf("with the token from the environment: %+v", r)
	}
	r = runCLI(t.Context(), map[string]string{envEndpoint: endpoint}, "health")
	if r.code != exitUnauthorized || !strings.Contains(r.stderr, "401") || !strings.Contains(r.stderr, "--token or TAPIO_TOKEN") {
		t.Errorf("no token: %+v", r)
	}
	r = runCLI(t.Context(), map[string]string{envEndpoint: endpoint}, "health", "--token", testToken)
	if r.code != exitOK {
		t.Errorf("token flag: %+v", r)
	}
	r = runCLI(t.Context(), nil, "health", "--endpoint", "http://"+freeEndpoint(t))
	if r.code != exitUnreachable || !strings.Contains(r.stderr, "cannot reach the Tapio collector at http://127.0.0.1:") ||
		!strings.Contains(r.stderr, "Is otelcol-tapio running with the impact exporter?") {
		t.Errorf("unreachable: %+v", r)
	}
	r = runCLI(t.Context(), env, "correlate")
	if r.code != exitError || !strings.Contains(r.stderr, "--trace-id is required") {
		t.Errorf("missing flag: %+v", r)
	}
	r = runCLI(t.Context(), env, "incidents", "-o", "yaml")
	if r.code != exitError || !strings.Contains(r.stderr, "--output must be text or json") {
		t.Errorf("bad output: %+v", r)
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestStream(t *testing.T) {
	f := impactexporter.NewFactory()
	cfg := f.CreateDefaultConfig().(*impactexporter.Config)
	addr := freeEndpoint(t)
	cfg.HTTP.NetAddr.Endpoint = addr
	cfg.Storage.Directory = t.TempDir()
	exp, err := f.CreateLogs(t.Context(), exportertest.NewNopSettings(f.Type()), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Start(t.Context(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = exp.Shutdown(context.Background()) }()

	ctx, cancel := context.WithCancel(t.Context())
	var out, errOut syncBuffer
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"stream", "-o", "json", "--endpoint", "http://" + addr}, &out, &errOut, func(string) string { return "" })
	}()
	// The stream is subscribed once the exporter reports it; feed until the event arrives.
	deadline := time.Now().Add(10 * time.Second)
	fed := false
	for !strings.Contains(out.String(), "\n") {
		if time.Now().After(deadline) {
			t.Fatalf("no event streamed; stderr %q", errOut.String())
		}
		if !fed {
			time.Sleep(200 * time.Millisecond)
			feed(t, exp)
			fed = true
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("stream exit %d: %s", code, errOut.String())
	}
	line, _ := bufio.NewReader(strings.NewReader(out.String())).ReadString('\n')
	var ev impactapi.StreamEvent
	if err := json.Unmarshal([]byte(line), &ev); err != nil || ev.Type != "created" || ev.Incident.ID != "correlation-1" {
		t.Fatalf("streamed %q: %v", line, err)
	}
}
