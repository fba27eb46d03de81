package gen

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// refusingCollector is an OTLP/gRPC trace service that refuses every second call, as a collector
// whose memory limiter is over its limit does, and keeps what it accepted.
type refusingCollector struct {
	coltracepb.UnimplementedTraceServiceServer
	mu       sync.Mutex
	calls    int
	accepted []*tracepb.Span
	refused  int
}

func (c *refusingCollector) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	var spans []*tracepb.Span
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			spans = append(spans, ss.GetSpans()...)
		}
	}
	if c.calls%2 == 0 {
		c.refused += len(spans)
		return nil, status.Error(codes.ResourceExhausted, "data refused due to high memory usage")
	}
	c.accepted = append(c.accepted, spans...)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func serve(t *testing.T) (*refusingCollector, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	c := &refusingCollector{}
	coltracepb.RegisterTraceServiceServer(srv, c)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return c, lis.Addr().String()
}

// Every span made is either sent or failed with the code the server answered, and the counts
// are the server's own: nothing the generator made goes missing.
func TestRunCountsEverySpanAndRefusal(t *testing.T) {
	for _, raw := range []bool{false, true} {
		c, addr := serve(t)
		cfg := Config{Endpoint: addr, Mix: MixStorm, ErrorFraction: -1, Rate: 4000, Duration: time.Second, Workers: 2,
			BatchSize: 100, ExportTimeout: 5 * time.Second}
		run := Run
		if raw {
			run = RunRaw
		}
		res, err := run(context.Background(), cfg)
		if err != nil {
			t.Fatalf("raw=%v: %v", raw, err)
		}
		c.mu.Lock()
		accepted, refused := len(c.accepted), c.refused
		spans := c.accepted
		c.mu.Unlock()
		if res.Generated < 500 {
			t.Fatalf("raw=%v: generated %d spans in 1 s at 4000/s", raw, res.Generated)
		}
		if res.Sent == 0 || res.Failed == 0 || res.Failures["ResourceExhausted"] != res.Failed {
			t.Fatalf("raw=%v: sent %d, failed %d by %v; want both, every failure ResourceExhausted", raw, res.Sent, res.Failed, res.Failures)
		}
		// The window closes when the last batch is cut; what is drained after it is not counted,
		// so the server saw at least what the window reports.
		if int64(accepted) < res.Sent || int64(refused) < res.Failed || res.Sent+res.Failed > res.Generated {
			t.Fatalf("raw=%v: server accepted %d, refused %d; generator says made %d, sent %d, failed %d", raw, accepted, refused, res.Generated, res.Sent, res.Failed)
		}
		if res.LatencyMs.P99 <= 0 || res.LatencyMs.Max < res.LatencyMs.P99 || res.Exports == 0 {
			t.Fatalf("raw=%v: latency %+v over %d exports", raw, res.LatencyMs, res.Exports)
		}
		checkStormSpans(t, raw, spans)
	}
}

// In the storm every request is a failed SERVER span whose CLIENT child names the failing
// dependency with error.type.
func checkStormSpans(t *testing.T, raw bool, spans []*tracepb.Span) {
	t.Helper()
	servers := map[string]*tracepb.Span{}
	for _, s := range spans {
		if s.GetKind() == tracepb.Span_SPAN_KIND_SERVER {
			servers[string(s.GetSpanId())] = s
		}
	}
	ids := map[string]bool{}
	for _, s := range spans {
		if ids[string(s.GetSpanId())] {
			t.Fatalf("raw=%v: span id %x sent twice", raw, s.GetSpanId())
		}
		ids[string(s.GetSpanId())] = true
	}
	clients, linked := 0, 0
	for _, s := range spans {
		if s.GetKind() != tracepb.Span_SPAN_KIND_CLIENT {
			continue
		}
		clients++
		parent, ok := servers[string(s.GetParentSpanId())]
		if !ok {
			continue // its SERVER span was in a refused or later batch
		}
		if string(parent.GetTraceId()) != string(s.GetTraceId()) {
			t.Fatalf("raw=%v: CLIENT span in trace %x, its parent in %x", raw, s.GetTraceId(), parent.GetTraceId())
		}
		linked++
		if parent.GetStatus().GetCode() != tracepb.Status_STATUS_CODE_ERROR || s.GetStatus().GetCode() != tracepb.Status_STATUS_CODE_ERROR {
			t.Fatalf("raw=%v: storm request not failed: server %v, client %v", raw, parent.GetStatus(), s.GetStatus())
		}
		attrs := map[string]string{}
		for _, kv := range s.GetAttributes() {
			attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
		}
		if attrs["error.type"] != "503" || attrs["server.address"] != "payment" {
			t.Fatalf("raw=%v: CLIENT span attributes %v: want error.type 503 to payment", raw, attrs)
		}
	}
	if clients == 0 || len(servers) == 0 || linked < clients/2 {
		t.Fatalf("raw=%v: %d SERVER and %d CLIENT spans accepted, %d CLIENT spans under a SERVER span", raw, len(servers), clients, linked)
	}
}

func TestConfigRejectsNonsense(t *testing.T) {
	bad := Config{Endpoint: "", Mix: "chaos", ErrorFraction: 2, Rate: -1, Duration: 0, Workers: 0, BatchSize: 0, OpenLoop: true}
	err := bad.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"mix", "endpoint", "error fraction", "rate", "duration", "workers", "batch size", "max in flight", "export timeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

// logSink is an OTLP/gRPC logs service that keeps every record.
type logSink struct {
	collogspb.UnimplementedLogsServiceServer
	mu      sync.Mutex
	records []*logspb.LogRecord
}

func (c *logSink) Export(_ context.Context, req *collogspb.ExportLogsServiceRequest) (*collogspb.ExportLogsServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rl := range req.GetResourceLogs() {
		for _, sl := range rl.GetScopeLogs() {
			c.records = append(c.records, sl.GetLogRecords()...)
		}
	}
	return &collogspb.ExportLogsServiceResponse{}, nil
}

// Both log generators send INFO and ERROR lines, each in a trace context of its own.
func TestLogsCarrySeverityAndTraceContext(t *testing.T) {
	for _, raw := range []bool{false, true} {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := grpc.NewServer()
		c := &logSink{}
		collogspb.RegisterLogsServiceServer(srv, c)
		go func() { _ = srv.Serve(lis) }()
		cfg := Config{Endpoint: lis.Addr().String(), Mix: MixErrorLogs, ErrorFraction: -1, Rate: 2000, Duration: time.Second, Workers: 2,
			BatchSize: 100, ExportTimeout: 5 * time.Second}
		run := Run
		if raw {
			run = RunRaw
		}
		res, err := run(context.Background(), cfg)
		srv.Stop()
		if err != nil {
			t.Fatalf("raw=%v: %v", raw, err)
		}
		c.mu.Lock()
		records := c.records
		c.mu.Unlock()
		if res.Sent == 0 || res.Failed != 0 || int64(len(records)) < res.Sent {
			t.Fatalf("raw=%v: sent %d, failed %d, server has %d", raw, res.Sent, res.Failed, len(records))
		}
		errorsSeen, traces := 0, map[string]bool{}
		for _, r := range records {
			if len(r.GetTraceId()) != 16 || len(r.GetSpanId()) != 8 {
				t.Fatalf("raw=%v: record without trace context: %v", raw, r)
			}
			if traces[string(r.GetTraceId())] {
				t.Fatalf("raw=%v: trace id %x twice", raw, r.GetTraceId())
			}
			traces[string(r.GetTraceId())] = true
			if r.GetSeverityNumber() == logspb.SeverityNumber_SEVERITY_NUMBER_ERROR {
				errorsSeen++
			}
		}
		if errorsSeen < len(records)/4 || errorsSeen > 3*len(records)/4 {
			t.Fatalf("raw=%v: %d ERROR lines of %d; want about half", raw, errorsSeen, len(records))
		}
	}
}
