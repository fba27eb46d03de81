package ebpfreceiver

import (
	"context"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/yairfalse/tapio/receiver/ebpfreceiver/internal/metadata"
)

// The kernel programs of one component id stay attached while any pipeline still holds them: the
// logs pipeline shutting down first must not stop the metrics pipeline's counts.
func TestPipelinesShareOneReceiverUntilTheLastShutdown(t *testing.T) {
	f := NewFactory()
	set := receivertest.NewNopSettings(metadata.Type)
	set.ID = component.NewIDWithName(metadata.Type, "shared")
	ctx := context.Background()
	logs, err := f.CreateLogs(ctx, set, createDefaultConfig(), consumertest.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := f.CreateMetrics(ctx, set, createDefaultConfig(), consumertest.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	r := logs.(*ebpfReceiver)
	if metrics != logs {
		t.Fatal("a logs and a metrics pipeline with the same id must share one receiver")
	}
	stopped := func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.stopped
	}
	if err := logs.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if stopped() {
		t.Fatal("the first pipeline's Shutdown stopped a receiver the other pipeline still holds")
	}
	if err := metrics.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if !stopped() {
		t.Fatal("the last pipeline's Shutdown did not stop the receiver")
	}
	again, err := f.CreateLogs(ctx, set, createDefaultConfig(), consumertest.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer again.Shutdown(ctx)
	if again == logs {
		t.Error("a pipeline created after the last Shutdown got the stopped receiver back")
	}
}
