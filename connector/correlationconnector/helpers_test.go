package correlationconnector

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

// scenarioStart is where every test clock starts.
var scenarioStart = time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: scenarioStart} }

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Set(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = t
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

func defaultConfig() *Config { return createDefaultConfig().(*Config) }

// harness is a correlator with a fake clock, a sink for its records and in-memory telemetry.
type harness struct {
	c     *correlator
	clock *fakeClock
	out   *consumertest.LogsSink
	tel   *componenttest.Telemetry
}

func newHarness(t testing.TB, cfg *Config) *harness {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h := &harness{clock: newFakeClock(), out: new(consumertest.LogsSink), tel: componenttest.NewTelemetry()}
	set := h.tel.NewTelemetrySettings()
	c, err := newCorrelator(set, cfg, h.clock)
	if err != nil {
		t.Fatal(err)
	}
	c.outputs.add(1, h.out)
	h.c = c
	t.Cleanup(func() {
		_ = c.Shutdown(context.Background())
		_ = h.tel.Shutdown(context.Background())
	})
	return h
}

func (h *harness) flush() { h.c.flush(context.Background(), h.clock.Now(), false) }

// records returns every correlation record emitted so far.
func (h *harness) records() []plog.LogRecord {
	var out []plog.LogRecord
	for _, ld := range h.out.AllLogs() {
		rls := ld.ResourceLogs()
		for i := 0; i < rls.Len(); i++ {
			sls := rls.At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				recs := sls.At(j).LogRecords()
				for k := 0; k < recs.Len(); k++ {
					out = append(out, recs.At(k))
				}
			}
		}
	}
	return out
}

// counter sums a self-telemetry sum over the data points whose attribute key has value (all
// points when key is "").
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
		if key == "" {
			total += dp.Value
			continue
		}
		if v, ok := dp.Attributes.Value(attribute.Key(key)); ok && v.AsString() == value {
			total += dp.Value
		}
	}
	return total
}

func str(m pcommon.Map, key string) string {
	v, ok := m.Get(key)
	if !ok {
		return ""
	}
	return v.AsString()
}

// chainNames lists event.name of each chain entry.
func chainNames(rec plog.LogRecord) []string {
	chain, ok := rec.Attributes().Get(unifiedevent.KeyCorrelationChain)
	if !ok {
		return nil
	}
	var names []string
	for i := 0; i < chain.Slice().Len(); i++ {
		names = append(names, str(chain.Slice().At(i).Map(), unifiedevent.KeyEventName))
	}
	return names
}

func chainField(rec plog.LogRecord, key string) []string {
	chain, ok := rec.Attributes().Get(unifiedevent.KeyCorrelationChain)
	if !ok {
		return nil
	}
	var out []string
	for i := 0; i < chain.Slice().Len(); i++ {
		out = append(out, str(chain.Slice().At(i).Map(), key))
	}
	return out
}

func sliceOf(rec plog.LogRecord, key string) []string {
	v, ok := rec.Attributes().Get(key)
	if !ok {
		return nil
	}
	var out []string
	for i := 0; i < v.Slice().Len(); i++ {
		out = append(out, v.Slice().At(i).AsString())
	}
	return out
}
