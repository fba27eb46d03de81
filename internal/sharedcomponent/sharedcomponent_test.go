package sharedcomponent

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type counting struct {
	starts, stops int
}

func (c *counting) Start(context.Context, component.Host) error { c.starts++; return nil }
func (c *counting) Shutdown(context.Context) error              { c.stops++; return nil }

func TestStartOnceReleaseLast(t *testing.T) {
	m := NewMap[string, *counting]()
	created := 0
	create := func() (*counting, error) { created++; return &counting{}, nil }
	a, err := m.Acquire("x", create)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := m.Acquire("x", create)
	other, _ := m.Acquire("y", create)
	if created != 2 || a.Unwrap() != b.Unwrap() || a.Unwrap() == other.Unwrap() || m.Len() != 2 {
		t.Fatalf("created %d, len %d", created, m.Len())
	}
	ctx, host := context.Background(), componenttest.NewNopHost()
	_ = a.Start(ctx, host)
	_ = b.Start(ctx, host)
	c := a.Unwrap()
	if c.starts != 1 {
		t.Errorf("started %d times", c.starts)
	}
	_ = a.Release(ctx)
	if c.stops != 0 || m.Len() != 2 {
		t.Fatalf("the first release must not stop a shared instance (stops %d)", c.stops)
	}
	_ = b.Release(ctx)
	_ = b.Release(ctx)
	if c.stops != 1 || m.Len() != 1 {
		t.Errorf("the last release stops once and forgets: stops %d, len %d", c.stops, m.Len())
	}
	if err := a.Start(ctx, host); err != nil || c.starts != 1 {
		t.Error("a released instance must not start again")
	}
	// Released without a start: shut down anyway, safely.
	_ = other.Release(ctx)
	if other.Unwrap().stops != 1 || m.Len() != 0 {
		t.Errorf("release without start: stops %d, len %d", other.Unwrap().stops, m.Len())
	}
	// A new Acquire after the last release creates a fresh instance.
	again, _ := m.Acquire("x", create)
	if again.Unwrap() == c {
		t.Error("a released instance must not be handed out again")
	}
	if _, err := m.Acquire("z", func() (*counting, error) { return nil, errors.New("boom") }); err == nil || m.Len() != 1 {
		t.Errorf("a failed create must not be stored: %v, len %d", err, m.Len())
	}
}

type concurrent struct {
	starts, stops atomic.Int32
}

func (c *concurrent) Start(context.Context, component.Host) error { c.starts.Add(1); return nil }
func (c *concurrent) Shutdown(context.Context) error              { c.stops.Add(1); return nil }

// Pipelines are built and torn down one by one by the collector, but nothing in the map relies on
// that: holders racing on one key must neither deadlock nor start or stop an instance twice.
func TestConcurrentHoldersOfOneKey(t *testing.T) {
	m := NewMap[string, *concurrent]()
	var (
		mu      sync.Mutex
		created []*concurrent
	)
	create := func() (*concurrent, error) {
		c := &concurrent{}
		mu.Lock()
		created = append(created, c)
		mu.Unlock()
		return c, nil
	}
	ctx, host := context.Background(), componenttest.NewNopHost()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 5000 {
				c, err := m.Acquire("x", create)
				if err != nil {
					t.Error(err)
					return
				}
				_ = c.Start(ctx, host)
				_ = c.Release(ctx)
			}
		})
	}
	wg.Wait()
	if m.Len() != 0 {
		t.Errorf("%d instances left after every holder released", m.Len())
	}
	for i, c := range created {
		if c.starts.Load() > 1 || c.stops.Load() != 1 {
			t.Fatalf("instance %d of %d: started %d times, stopped %d times", i, len(created), c.starts.Load(), c.stops.Load())
		}
	}
}
