package ebpfreceiver

import (
	"context"
	"os"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/yairfalse/tapio/internal/kerneltest"
	"github.com/yairfalse/tapio/pkg/unifiedevent"
	"github.com/yairfalse/tapio/receiver/ebpfreceiver/internal/metadata"
)

func counterValue(t *testing.T, tel *componenttest.Telemetry, name, event string) int64 {
	t.Helper()
	m, err := tel.GetMetric(name)
	if err != nil {
		return 0
	}
	var total int64
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		if v, ok := dp.Attributes.Value(attribute.Key("event")); ok && v.AsString() == event {
			total += dp.Value
		}
	}
	return total
}

func TestRateLimitDropsAreCounted(t *testing.T) {
	rr := startReceiver(t, func(c *Config) {
		c.RateLimits = map[string]float64{string(unifiedevent.ConnectionRefused): 1}
	})
	port := closedLoopbackPort(t)
	refusedConnects(t, port, 50, 1)
	deadline := time.Now().Add(5 * time.Second)
	for {
		limited := counterValue(t, rr.tel, "otelcol_receiver_ebpf_rate_limited", string(unifiedevent.ConnectionRefused))
		received := counterValue(t, rr.tel, "otelcol_receiver_ebpf_events_received", string(unifiedevent.ConnectionRefused))
		if limited >= 45 && received >= 50 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("rate_limited = %d, received = %d; want ≥ 45 of 50 refused connects limited at 1/s", limited, received)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestMetricsCountPerContainer(t *testing.T) {
	sink := new(consumertest.MetricsSink)
	tel := componenttest.NewTelemetry()
	defer tel.Shutdown(context.Background())
	set := receivertest.NewNopSettings(metadata.Type)
	set.ID = component.NewIDWithName(metadata.Type, "metrics")
	set.TelemetrySettings = tel.NewTelemetrySettings()
	cfg := createDefaultConfig().(*Config)
	cfg.MetricsInterval = 200 * time.Millisecond
	r, err := NewFactory().CreateMetrics(context.Background(), set, cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		kerneltest.SkipOrFail(t, "the ebpf receiver cannot start on this machine: %v", err)
	}
	defer func() {
		if err := r.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	refusedConnects(t, closedLoopbackPort(t), 7, 1)

	host, _ := os.Hostname()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, md := range sink.AllMetrics() {
			if refused := sumOf(md, "tapio.network.connections_refused", host); refused >= 7 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("no tapio.network.connections_refused ≥ 7 for this host's cgroup within 5s")
}

func sumOf(md pmetric.Metrics, name, host string) int64 {
	var best int64
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		rm := md.ResourceMetrics().At(i)
		if v, _ := rm.Resource().Attributes().Get(unifiedevent.KeyHostName); v.Str() != host {
			continue
		}
		if _, ok := rm.Resource().Attributes().Get(unifiedevent.KeyEntityID); !ok {
			continue
		}
		for j := 0; j < rm.ScopeMetrics().Len(); j++ {
			ms := rm.ScopeMetrics().At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				if m.Name() != name || !m.Sum().IsMonotonic() {
					continue
				}
				if v := m.Sum().DataPoints().At(0).IntValue(); v > best {
					best = v
				}
			}
		}
	}
	return best
}

// Records wake the reader only in bulk, so at shutdown the ring buffer may hold events the reader
// has not read yet: they are delivered, not lost with the reader.
func TestShutdownDeliversWhatTheRingBufferHolds(t *testing.T) {
	rr := startReceiver(t, func(c *Config) { c.Batch.Timeout = time.Minute })
	port := closedLoopbackPort(t)
	const connects = 50
	refusedConnects(t, port, connects, 1)
	if err := rr.receiver.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	delivered := rr.count(unifiedevent.ConnectionRefused, func(e kernelEvent) bool { return e.int("destination.port") == int64(port) })
	dropped := counterValue(t, rr.tel, "otelcol_receiver_ebpf_ringbuf_dropped", string(unifiedevent.ConnectionRefused))
	if int64(delivered)+dropped < connects {
		t.Errorf("%d refused connects before shutdown: %d delivered, %d counted dropped", connects, delivered, dropped)
	}
}
