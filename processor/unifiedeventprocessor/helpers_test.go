package unifiedeventprocessor

import (
	"context"
	"testing"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/yairfalse/tapio/processor/unifiedeventprocessor/internal/metadata"
)

type harness struct {
	tel     *componenttest.Telemetry
	logs    processor.Logs
	traces  processor.Traces
	logOut  *consumertest.LogsSink
	spanOut *consumertest.TracesSink
}

func defaultConfig() *Config { return createDefaultConfig().(*Config) }

func newHarness(t testing.TB, cfg *Config) *harness {
	t.Helper()
	h := &harness{tel: componenttest.NewTelemetry(), logOut: new(consumertest.LogsSink), spanOut: new(consumertest.TracesSink)}
	set := processortest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = h.tel.NewTelemetrySettings()
	var err error
	f := NewFactory()
	if h.logs, err = f.CreateLogs(context.Background(), set, cfg, h.logOut); err != nil {
		t.Fatal(err)
	}
	if h.traces, err = f.CreateTraces(context.Background(), set, cfg, h.spanOut); err != nil {
		t.Fatal(err)
	}
	if err := h.logs.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	if err := h.traces.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = h.logs.Shutdown(context.Background())
		_ = h.traces.Shutdown(context.Background())
		_ = h.tel.Shutdown(context.Background())
	})
	return h
}

func (h *harness) consumeLogs(t testing.TB, ld plog.Logs) []plog.LogRecord {
	t.Helper()
	h.logOut.Reset()
	if err := h.logs.ConsumeLogs(context.Background(), ld); err != nil {
		t.Fatal(err)
	}
	var out []plog.LogRecord
	for _, got := range h.logOut.AllLogs() {
		for i := 0; i < got.ResourceLogs().Len(); i++ {
			sls := got.ResourceLogs().At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				for k := 0; k < sls.At(j).LogRecords().Len(); k++ {
					out = append(out, sls.At(j).LogRecords().At(k))
				}
			}
		}
	}
	return out
}

func (h *harness) consumeTraces(t testing.TB, td ptrace.Traces) ptrace.Traces {
	t.Helper()
	h.spanOut.Reset()
	if err := h.traces.ConsumeTraces(context.Background(), td); err != nil {
		t.Fatal(err)
	}
	all := h.spanOut.AllTraces()
	if len(all) != 1 {
		t.Fatalf("expected one traces batch downstream, got %d", len(all))
	}
	return all[0]
}

// counter returns the value of a self-telemetry counter for one attribute value (0 when absent).
func (h *harness) counter(t testing.TB, name, key, value string) int64 {
	t.Helper()
	m, err := h.tel.GetMetric(name)
	if err != nil {
		return 0
	}
	sum, ok := m.Data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("%s is a %T, want an int64 sum", name, m.Data)
	}
	var total int64
	for _, dp := range sum.DataPoints {
		if v, ok := dp.Attributes.Value(attribute.Key(key)); ok && v.AsString() == value {
			total += dp.Value
		}
	}
	return total
}
