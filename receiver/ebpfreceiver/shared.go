package ebpfreceiver

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/receiver"

	"github.com/yairfalse/tapio/internal/sharedcomponent"
)

// receivers shares one receiver — one set of kernel programs and one ring buffer — between the
// logs and the metrics pipeline that name the same component id. Both pipelines hold the same
// *ebpfReceiver; its Start and Shutdown go through the shared reference count, so the programs are
// loaded by the first Start and detached by the last Shutdown.
var receivers = registry{byID: sharedcomponent.NewMap[component.ID, kernelSession]()}

type registry struct {
	byID *sharedcomponent.Map[component.ID, kernelSession]
}

// kernelSession is what the map holds for a receiver: the receiver's own start and stop, which the
// map runs on the first Start and on the last Release.
type kernelSession struct{ receiver *ebpfReceiver }

func (s kernelSession) Start(ctx context.Context, host component.Host) error {
	return s.receiver.start(ctx, host)
}

func (s kernelSession) Shutdown(ctx context.Context) error { return s.receiver.stop(ctx) }

// getOrCreate returns the receiver of set.ID, creating it for the first pipeline, and takes a
// reference for the pipeline asking, which that pipeline's Shutdown gives back.
func (reg registry) getOrCreate(set receiver.Settings, cfg *Config) (*ebpfReceiver, error) {
	shared, err := reg.byID.Acquire(set.ID, func() (kernelSession, error) {
		r, err := newReceiver(set, cfg)
		return kernelSession{r}, err
	})
	if err != nil {
		return nil, err
	}
	r := shared.Unwrap().receiver
	// Every pipeline's acquire sets the same handle before that pipeline can Start through it.
	r.mu.Lock()
	r.shared = shared
	r.mu.Unlock()
	return r, nil
}

// Start loads and attaches the kernel programs on the first Start of any pipeline holding the
// receiver; later ones, and any after the last Shutdown, do nothing.
func (r *ebpfReceiver) Start(ctx context.Context, host component.Host) error {
	return r.handle().Start(ctx, host)
}

// Shutdown gives back one pipeline's reference; the last one stops reading, flushes what was read
// and detaches the programs. It is safe without Start and when called again.
func (r *ebpfReceiver) Shutdown(ctx context.Context) error {
	return r.handle().Release(ctx)
}

func (r *ebpfReceiver) handle() *sharedcomponent.Component[kernelSession] {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.shared
}
