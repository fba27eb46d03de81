package ebpfreceiver

import (
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/receiver"
)

// receivers shares one receiver (one set of kernel programs and one ring buffer) between the logs
// and metrics pipelines that name the same component id.
var receivers = &registry{byID: map[component.ID]*ebpfReceiver{}}

type registry struct {
	mu   sync.Mutex
	byID map[component.ID]*ebpfReceiver
}

func (r *registry) getOrCreate(set receiver.Settings, cfg *Config) (*ebpfReceiver, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if existing, ok := r.byID[set.ID]; ok {
		return existing, nil
	}
	created, err := newReceiver(set, cfg, func() { r.remove(set.ID) })
	if err != nil {
		return nil, err
	}
	r.byID[set.ID] = created
	return created, nil
}

func (r *registry) remove(id component.ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.byID, id)
}
