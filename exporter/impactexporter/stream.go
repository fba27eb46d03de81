package impactexporter

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"sync"

	"go.uber.org/zap"

	"github.com/yairfalse/tapio/exporter/impactexporter/internal/metadata"
	"github.com/yairfalse/tapio/pkg/impactapi"
)

// subscriberBuffer bounds the events waiting for one stream client; a client that falls
// further behind loses events, counted.
const subscriberBuffer = 256

// broker fans new and updated incidents out to the stream clients. Publishing never blocks.
type broker struct {
	telemetry *metadata.TelemetryBuilder
	logger    *zap.Logger

	mu     sync.Mutex
	subs   map[chan []byte]struct{}
	closed bool
	done   chan struct{}
}

func newBroker(tb *metadata.TelemetryBuilder, logger *zap.Logger) *broker {
	return &broker{telemetry: tb, logger: logger, subs: map[chan []byte]struct{}{}, done: make(chan struct{})}
}

// sseFrame formats one server-sent event.
func sseFrame(ev impactapi.StreamEvent) ([]byte, error) {
	data, err := json.Marshal(&ev)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Grow(len(data) + len(ev.Incident.ID) + 48)
	b.WriteString("id: ")
	b.WriteString(ev.Incident.ID)
	b.WriteByte('/')
	b.WriteString(strconv.FormatInt(ev.Incident.Version, 10))
	b.WriteString("\nevent: ")
	b.WriteString(ev.Type)
	b.WriteString("\ndata: ")
	b.Write(data) // compact JSON has no newline
	b.WriteString("\n\n")
	return b.Bytes(), nil
}

func (b *broker) publish(ev impactapi.StreamEvent) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || len(b.subs) == 0 {
		return
	}
	frame, err := sseFrame(ev)
	if err != nil {
		b.logger.Warn("incident could not be encoded for the stream", zap.Error(err))
		return
	}
	var dropped int64
	for ch := range b.subs {
		select {
		case ch <- frame:
		default:
			dropped++
		}
	}
	if dropped > 0 {
		b.telemetry.ExporterImpactStreamEventsDropped.Add(context.Background(), dropped)
		b.logger.Warn("stream clients fell behind; events dropped (counted in otelcol_exporter_impact_stream_events_dropped)",
			zap.Int64("dropped", dropped))
	}
}

// subscribe returns a channel of SSE frames and a function that ends the subscription. ok is
// false once the broker is closed.
func (b *broker) subscribe() (frames <-chan []byte, cancel func(), ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, func() {}, false
	}
	ch := make(chan []byte, subscriberBuffer)
	b.subs[ch] = struct{}{}
	return ch, func() {
		b.mu.Lock()
		delete(b.subs, ch)
		b.mu.Unlock()
	}, true
}

func (b *broker) subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// close ends every stream.
func (b *broker) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.closed = true
		close(b.done)
	}
}
