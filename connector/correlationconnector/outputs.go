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

	// mu guards outputs and orders sends: one batch of records leaves at a time, in the order
	// the builder handed them over. Pipelines attach and detach only at start and shutdown, so
	// waiting for a send then costs nothing.
	mu      sync.Mutex
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

// sendLocked hands correlation records downstream and releases r.mu; it is called holding it
// (taken by the builder, hand over hand) and outside every state lock. Records no consumer takes
// are counted and logged, never dropped silently.
func (r *outputRouter) sendLocked(ctx context.Context, ld plog.Logs) {
	defer r.mu.Unlock()
	if ld.LogRecordCount() == 0 {
		return
	}
	n := int64(ld.LogRecordCount())
	if len(r.outputs) == 0 {
		r.telemetry.refused(ctx, n, refusedNoOutput, nil)
		return
	}
	if err := r.outputs[0].next.ConsumeLogs(ctx, ld); err != nil {
		r.telemetry.refused(ctx, n, refusedDownstream, err)
	}
}
