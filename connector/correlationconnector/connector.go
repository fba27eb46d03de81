package correlationconnector

import (
	"context"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/yairfalse/tapio/internal/sharedcomponent"
)

var outputIDs atomic.Int64

// signalConnector is what one pipeline pair (traces→logs, logs→logs or metrics→logs) holds: its
// own downstream consumer and a reference to the shared correlator.
type signalConnector struct {
	shared *sharedcomponent.Component[*correlator]
	c      *correlator
	id     int

	mu       sync.Mutex
	started  bool
	released bool
}

func newSignalConnector(shared *sharedcomponent.Component[*correlator], next consumer.Logs) *signalConnector {
	s := &signalConnector{shared: shared, c: shared.Unwrap(), id: int(outputIDs.Add(1))}
	s.c.outputs.add(s.id, next)
	return s
}

// Capabilities: the connector reads its input and never changes it.
func (*signalConnector) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: false}
}

// Start starts the shared correlator (once, whichever pipeline starts first).
func (s *signalConnector) Start(ctx context.Context, host component.Host) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.released {
		return nil
	}
	s.started = true
	return s.shared.Start(ctx, host)
}

// Shutdown gives back this pipeline's reference; the last one flushes open incidents and stops the
// correlator. It is safe twice and safe without Start.
func (s *signalConnector) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.released {
		return nil
	}
	s.released = true
	// The last holder's consumer stays attached until the final flush has used it.
	err := s.shared.Release(ctx)
	s.c.outputs.remove(s.id)
	return err
}

func (s *signalConnector) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	return s.c.consumeTraces(ctx, td)
}

func (s *signalConnector) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	return s.c.consumeLogs(ctx, ld)
}

func (s *signalConnector) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	return s.c.consumeMetrics(ctx, md)
}
