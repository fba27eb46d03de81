//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/yairfalse/tapio/pkg/impactapi"
	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

// crashConfig is the standalone pipeline without the kernel: OTLP in, normalised, correlated with
// the open state in its write-ahead log, incidents stored through a persistent queue.
// decision_wait is long so that the kill surely lands while the incident is still open.
const crashConfig = `
extensions:
  health_check:
    endpoint: 127.0.0.1:%[1]d
  file_storage:
    directory: %[2]s/state
    create_directory: true
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%[3]d
processors:
  memory_limiter:
    check_interval: 1s
    limit_mib: 512
    spike_limit_mib: 128
  unifiedevent:
connectors:
  correlation:
    decision_wait: 5s
    write_ahead_log:
      directory: %[2]s/state
exporters:
  impact:
    http:
      endpoint: 127.0.0.1:%[4]d
    storage:
      directory: %[2]s/incidents
    sending_queue:
      storage: file_storage
service:
  extensions: [health_check, file_storage]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, unifiedevent]
      exporters: [correlation]
    logs/incidents:
      receivers: [correlation]
      exporters: [impact]
  telemetry:
    metrics:
      level: none
`

// kill ends the collector with SIGKILL: no shutdown, no flush, nothing written at the end.
func (c *runningCollector) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("collector still running 10s after SIGKILL")
	}
}

// failedCheckout sends, through the OpenTelemetry Go SDK, one checkout request that failed
// because its call to payment failed, and returns once the OTLP export was answered with success.
func failedCheckout(ctx context.Context, t *testing.T, endpoint string) (traceID trace.TraceID, server, client trace.SpanID) {
	t.Helper()
	exporter, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(endpoint), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	provider := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter),
		sdktrace.WithResource(sdkresource.NewSchemaless(attribute.String("service.name", "checkout"))))
	tracer := provider.Tracer("checkout")
	_, srv, cli := startFailedCheckout(ctx, tracer)
	endFailedCheckout(srv)
	// A syncer exports each span as it ends; Shutdown reports the first export error, so nil
	// means the collector acknowledged both.
	if err := provider.Shutdown(ctx); err != nil {
		t.Fatalf("OTLP export to the collector: %v", err)
	}
	return srv.SpanContext().TraceID(), srv.SpanContext().SpanID(), cli.SpanContext().SpanID()
}

func incidents(ctx context.Context, api *impactapi.Client) ([]impactapi.Incident, error) {
	list, err := api.Incidents(ctx, impactapi.Query{})
	return list.Incidents, err
}

// TestSIGKILLLosesNoAcknowledgedEvidence: evidence the collector acknowledged over OTLP makes its
// incident even when the collector is killed before the incident was decided; and an incident
// already stored stays one incident, not regressed, across another kill.
func TestSIGKILLLosesNoAcknowledgedEvidence(t *testing.T) {
	dataDir := t.TempDir()
	healthPort, otlpPort, apiPort := freePort(t), freePort(t), freePort(t)
	config := fmt.Sprintf(crashConfig, healthPort, dataDir, otlpPort, apiPort)
	api := &impactapi.Client{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", apiPort)}
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Second)
	defer cancel()

	first := startCollector(t, config, healthPort)
	traceID, serverSpan, clientSpan := failedCheckout(ctx, t, fmt.Sprintf("127.0.0.1:%d", otlpPort))
	acked := time.Now()
	stored, err := incidents(ctx, api)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 0 {
		t.Fatalf("an incident was served %s after the evidence, before decision_wait: the kill would not test the open state", time.Since(acked))
	}
	first.kill(t)
	if waited := time.Since(acked); waited >= 5*time.Second {
		t.Fatalf("the kill came %s after the evidence, not before decision_wait (5s)", waited)
	}

	// Same data directory: the incident comes back and is decided as if nothing had happened.
	second := startCollector(t, config, healthPort)
	var inc impactapi.Incident
	eventually(t, 20*time.Second, func() error {
		got, err := incidents(ctx, api)
		if err != nil {
			return err
		}
		if len(got) != 1 {
			return fmt.Errorf("%d incidents served after the restart, want 1", len(got))
		}
		inc = got[0]
		return nil
	})
	if inc.RootCause.EventName != string(unifiedevent.DependencyError) || inc.Version != 1 || inc.EventCount != 2 {
		t.Errorf("incident %s v%d: root cause %s, %d events; want v1, %s, 2 events", inc.ID, inc.Version, inc.RootCause.EventName, inc.EventCount, unifiedevent.DependencyError)
	}
	spans := map[string]bool{}
	for _, e := range inc.Chain {
		if e.TraceID != traceID.String() {
			t.Errorf("chain entry %s of trace %s, want %s", e.EventName, e.TraceID, traceID)
		}
		spans[e.SpanID] = true
	}
	if len(inc.Chain) != 2 || !spans[serverSpan.String()] || !spans[clientSpan.String()] {
		t.Errorf("chain %+v: want the SERVER span %s and the CLIENT span %s the SDK sent", inc.Chain, serverSpan, clientSpan)
	}

	// Killed after the incident was stored: after the restart it is still the one incident, at
	// its version, with its id.
	second.kill(t)
	startCollector(t, config, healthPort)
	// Two flush intervals, and the persistent queue drained: a re-emission would be stored by now.
	time.Sleep(3 * time.Second)
	got, err := incidents(ctx, api)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != inc.ID || got[0].Version < inc.Version || got[0].EventCount != inc.EventCount {
		t.Fatalf("after the second kill: %d incidents %+v; want %s v%d with %d events, once", len(got), summaries(got), inc.ID, inc.Version, inc.EventCount)
	}
	if ctx.Err() != nil {
		t.Fatal(errors.New("the test ran out of its 55 s"))
	}
}

func summaries(incs []impactapi.Incident) []string {
	out := make([]string, len(incs))
	for i, inc := range incs {
		out[i] = fmt.Sprintf("%s v%d (%d events, root %s)", inc.ID, inc.Version, inc.EventCount, inc.RootCause.EventName)
	}
	return out
}
