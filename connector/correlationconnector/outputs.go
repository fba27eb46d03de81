package correlationconnector

import (
	"context"
	"sync"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
)

// outputRouter knows the logs consumers of the pipeline pairs that share one correlator. Every
// pair's consumer leads to the logs pipelines the connector exports to, so records go to the
// first still attached, once.
type outputRouter struct {
	telemetry *selfTelemetry

	mu      sync.Mutex // guards outputs
	outputs []registeredOutput
}

type registeredOutput struct {
	id   int
	next consumer.Logs
}

func (r *outputRouter) add(id int, next consumer.Logs) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.outputs = append(r.outputs, registeredOutput{id, next})
}

func (r *outputRouter) remove(id int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, o := range r.outputs {
		if o.id == id {
			r.outputs = append(r.outputs[:i], r.outputs[i+1:]...)
			return
		}
	}
}

func (r *outputRouter) first() consumer.Logs {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.outputs) == 0 {
		return nil
	}
	return r.outputs[0].next
}

// send hands correlation records downstream; it is called outside every state lock. Records no
// consumer takes are counted and logged, never dropped silently.
func (r *outputRouter) send(ctx context.Context, ld plog.Logs) {
	if ld.LogRecordCount() == 0 {
		return
	}
	next := r.first()
	n := int64(ld.LogRecordCount())
	if next == nil {
		r.telemetry.refused(ctx, n, refusedNoOutput, nil)
		return
	}
	if err := next.ConsumeLogs(ctx, ld); err != nil {
		r.telemetry.refused(ctx, n, refusedDownstream, err)
	}
}
