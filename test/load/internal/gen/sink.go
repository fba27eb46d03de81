package gen

import (
	"context"
	"sync"
	"time"
)

// flushEvery bounds how long a partly filled batch waits, as an SDK batcher's timeout does.
const flushEvery = 200 * time.Millisecond

// sink is one worker's batcher: items are added from the worker's own goroutine (the SDK calls
// the processor synchronously on span End and log Emit), a full batch is exported at once, and
// every Export call is timed and its outcome recorded.
type sink[T any] struct {
	rec       *recorder
	export    func(context.Context, []T) error
	size      int
	timeout   time.Duration
	openLoop  bool
	inFlight  chan struct{}
	wg        sync.WaitGroup
	batch     []T
	lastFlush time.Time
	// weight is the items one element holds (nil: one).
	weight func(T) int
}

func newSink[T any](cfg Config, rec *recorder, export func(context.Context, []T) error) *sink[T] {
	s := &sink[T]{rec: rec, export: export, size: cfg.BatchSize, timeout: cfg.ExportTimeout, openLoop: cfg.OpenLoop,
		batch: make([]T, 0, cfg.BatchSize), lastFlush: time.Now()}
	if cfg.OpenLoop {
		s.inFlight = make(chan struct{}, cfg.MaxInFlight)
	}
	return s
}

func (s *sink[T]) add(item T) {
	s.batch = append(s.batch, item)
	if len(s.batch) >= s.size {
		s.flush()
	}
}

// tick flushes a batch that has waited long enough.
func (s *sink[T]) tick(now time.Time) {
	if len(s.batch) > 0 && now.Sub(s.lastFlush) >= flushEvery {
		s.flush()
	}
}

func (s *sink[T]) flush() {
	s.lastFlush = time.Now()
	if len(s.batch) == 0 {
		return
	}
	b := s.batch
	s.batch = make([]T, 0, s.size)
	n := len(b)
	if s.weight != nil {
		n = 0
		for _, e := range b {
			n += s.weight(e)
		}
	}
	if !s.openLoop {
		s.send(b, n)
		return
	}
	select {
	case s.inFlight <- struct{}{}:
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.send(b, n)
			<-s.inFlight
		}()
	default:
		s.rec.shed(s.lastFlush, n)
	}
}

func (s *sink[T]) send(b []T, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	start := time.Now()
	err := s.export(ctx, b)
	s.rec.exported(start, time.Since(start), n, err)
}

// drain sends what is left and waits for the calls in flight.
func (s *sink[T]) drain() {
	s.flush()
	s.wg.Wait()
}
