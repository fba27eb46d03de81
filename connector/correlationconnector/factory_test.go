package correlationconnector

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/yairfalse/tapio/connector/correlationconnector/internal/metadata"
	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

func TestFactoryShape(t *testing.T) {
	f := NewFactory()
	if f.Type() != metadata.Type || f.Type().String() != "correlation" {
		t.Errorf("type %s", f.Type())
	}
	for name, got := range map[string]component.StabilityLevel{
		"traces→logs": f.TracesToLogsStability(), "logs→logs": f.LogsToLogsStability(), "metrics→logs": f.MetricsToLogsStability(),
	} {
		if got != component.StabilityLevelAlpha {
			t.Errorf("%s stability %s", name, got)
		}
	}
	if f.TracesToTracesStability() != component.StabilityLevelUndefined || f.LogsToMetricsStability() != component.StabilityLevelUndefined {
		t.Error("only the three pairs into logs are supported")
	}
}

// The three pipeline pairs of one component id share one state: a trace and a log reach the same
// incident, which is emitted once.
func TestSignalPairsShareOneState(t *testing.T) {
	f := NewFactory()
	set := connectortest.NewNopSettings(metadata.Type)
	cfg := defaultConfig()
	out := new(consumertest.LogsSink)
	traces, err := f.CreateTracesToLogs(ctx, set, cfg, out)
	must(t, err)
	logs, err := f.CreateLogsToLogs(ctx, set, cfg, out)
	must(t, err)
	metrics, err := f.CreateMetricsToLogs(ctx, set, cfg, out)
	must(t, err)
	if correlators.Len() != 1 {
		t.Fatalf("%d shared correlators, want 1", correlators.Len())
	}
	other, err := f.CreateLogsToLogs(ctx, connectortest.NewNopSettings(metadata.Type), cfg, out)
	must(t, err)
	if correlators.Len() != 2 {
		t.Fatalf("another component id must get its own state; %d correlators", correlators.Len())
	}
	must(t, other.Shutdown(ctx))

	host := componenttest.NewNopHost()
	for _, c := range []component.Component{traces, logs, metrics} {
		must(t, c.Start(ctx, host))
		must(t, c.Start(ctx, host))
	}
	now := time.Now()
	tid := traceID(5)
	td := tracesOf(sp{trace: tid, span: 1, kind: ptrace.SpanKindServer, name: unifiedevent.ServerError, id: 2, service: "checkout", entity: "pod-c"})
	td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).SetEndTimestamp(pcommonTime(now))
	must(t, traces.ConsumeTraces(ctx, td))
	ld := logsOf(ev{name: unifiedevent.Exception, id: 1, entity: "pod-c", service: "checkout", trace: tid})
	ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).SetTimestamp(pcommonTime(now.Add(-time.Millisecond)))
	must(t, logs.ConsumeLogs(ctx, ld))
	if logs.Capabilities().MutatesData {
		t.Error("the connector does not mutate its input")
	}

	for _, c := range []component.Component{metrics, traces} {
		must(t, c.Shutdown(ctx))
	}
	if out.LogRecordCount() != 0 {
		t.Fatal("the state must live until the last pipeline shuts down")
	}
	must(t, logs.Shutdown(ctx))
	must(t, logs.Shutdown(ctx))
	if out.LogRecordCount() != 1 {
		t.Fatalf("%d records at the last shutdown, want the one incident flushed once", out.LogRecordCount())
	}
	rec := out.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	if got := chainNames(rec); len(got) != 2 || got[0] != string(unifiedevent.Exception) {
		t.Errorf("chain %v", got)
	}
	if correlators.Len() != 0 {
		t.Errorf("%d correlators left after every shutdown", correlators.Len())
	}
}

func TestLifecycleIsIdempotent(t *testing.T) {
	f := NewFactory()
	set := connectortest.NewNopSettings(metadata.Type)
	c, err := f.CreateLogsToLogs(ctx, set, defaultConfig(), consumertest.NewNop())
	must(t, err)
	must(t, c.Shutdown(ctx)) // without Start
	must(t, c.Shutdown(ctx))
	must(t, c.Start(ctx, componenttest.NewNopHost())) // after Shutdown: a no-op, starts nothing

	tc, err := f.CreateTracesToLogs(ctx, set, defaultConfig(), consumertest.NewNop())
	must(t, err)
	must(t, tc.Start(ctx, componenttest.NewNopHost()))
	must(t, tc.Shutdown(ctx))
	must(t, tc.Shutdown(ctx))
	if correlators.Len() != 0 {
		t.Errorf("%d correlators left", correlators.Len())
	}
}
