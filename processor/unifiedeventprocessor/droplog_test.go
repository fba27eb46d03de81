package unifiedeventprocessor

import (
	"context"
	"testing"

	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/yairfalse/tapio/processor/unifiedeventprocessor/internal/metadata"
)

// Drops by rule are logged, at a bounded rate: one line per 10 s, not one per batch.
func TestDropsAreLoggedOncePerInterval(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	set := processortest.NewNopSettings(metadata.Type)
	set.Logger = zap.New(core)
	p, err := NewFactory().CreateLogs(context.Background(), set, defaultConfig(), consumertest.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	normal := map[string]any{"apiVersion": "v1", "kind": "Event", "type": "Normal", "reason": "Pulled",
		"metadata": map[string]any{"name": "p.1", "namespace": "shop"}, "involvedObject": map[string]any{"kind": "Pod", "name": "p", "uid": "u"}}
	for i := 0; i < 3; i++ {
		if err := p.ConsumeLogs(context.Background(), k8sObjectsLogs(normal, "")); err != nil {
			t.Fatal(err)
		}
	}
	entries := logs.FilterMessageSnippet("dropped log records by rule").All()
	if len(entries) != 1 {
		t.Fatalf("%d drop log lines for three batches, want 1 (sampled)", len(entries))
	}
	if got := entries[0].ContextMap()["kubernetes_normal_event"]; got != int64(1) {
		t.Errorf("the log line should count the drop by reason, got %v", entries[0].ContextMap())
	}
}
