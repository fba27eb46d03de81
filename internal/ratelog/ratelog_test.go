package ratelog

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestOncePerTickPerMessage(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	l := Sampled(zap.New(core))
	for i := 0; i < 5; i++ {
		l.Warn("ring buffer full")
		l.Warn("rate limited")
	}
	if n := logs.FilterMessage("ring buffer full").Len(); n != 1 {
		t.Errorf("%d lines for one message within a tick, want 1", n)
	}
	if n := logs.FilterMessage("rate limited").Len(); n != 1 {
		t.Errorf("another message must be logged on its own: %d lines", n)
	}
}
