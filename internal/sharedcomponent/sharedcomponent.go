// Package sharedcomponent lets the several pipelines a component ID appears in share one instance:
// the first Start starts it, the last Release shuts it down and forgets it. It is a small,
// reference-counted version of the pattern in the collector's own internal/sharedcomponent, used
// by the correlation connector (traces, logs and metrics in, one correlator) and by the ebpf
// receiver (logs and metrics out, one set of kernel programs).
package sharedcomponent

import (
	"context"
	"sync"

	"go.opentelemetry.io/collector/component"
)

// Map holds the shared instances, keyed by K (the component ID). Its lock guards membership and
// every instance's reference count; an instance's own lock guards only its lifecycle, and the two
// are never held together, so Acquire and Release may race without deadlock.
type Map[K comparable, V component.Component] struct {
	mu         sync.Mutex
	components map[K]*Component[V]
}

// NewMap returns an empty map.
func NewMap[K comparable, V component.Component]() *Map[K, V] {
	return &Map[K, V]{components: map[K]*Component[V]{}}
}

// Acquire returns the instance for key, creating it with create when there is none, and adds a
// reference that the caller gives back with Release.
func (m *Map[K, V]) Acquire(key K, create func() (V, error)) (*Component[V], error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.components[key]; ok {
		c.refs++
		return c, nil
	}
	v, err := create()
	if err != nil {
		return nil, err
	}
	c := &Component[V]{value: v, refs: 1}
	c.dropRef = func() bool { return m.dropRef(key, c) }
	m.components[key] = c
	return c, nil
}

// dropRef gives back one reference to c and reports whether it was the last one, in which case c
// is forgotten: a later Acquire of key creates a fresh instance.
func (m *Map[K, V]) dropRef(key K, c *Component[V]) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c.refs == 0 {
		return false // already released by every holder
	}
	c.refs--
	if c.refs > 0 {
		return false
	}
	if m.components[key] == c {
		delete(m.components, key)
	}
	return true
}

// Len returns the number of live shared instances.
func (m *Map[K, V]) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.components)
}

// Component is one shared instance.
type Component[V component.Component] struct {
	value   V
	dropRef func() bool
	refs    int // guarded by the Map's lock

	mu      sync.Mutex // held across the instance's Start and Shutdown
	started bool
	stopped bool
}

// Unwrap returns the shared instance.
func (c *Component[V]) Unwrap() V { return c.value }

// Start starts the instance the first time any holder asks; it never restarts a released one.
func (c *Component[V]) Start(ctx context.Context, host component.Host) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started || c.stopped {
		return nil
	}
	if err := c.value.Start(ctx, host); err != nil {
		return err
	}
	c.started = true
	return nil
}

// Release gives back one reference; the last one shuts the instance down (whether or not it was
// started) and removes it from the map. Each holder must call it at most once; calls beyond the
// number of references do nothing.
func (c *Component[V]) Release(ctx context.Context) error {
	if !c.dropRef() {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
	return c.value.Shutdown(ctx)
}
