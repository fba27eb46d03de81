package gen

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// worker is one application instance: its own SDK provider, exporter, connection and batcher.
type worker interface {
	// request makes the telemetry of one request and returns how many items that was.
	request(now time.Time) int
	tick(now time.Time)
	// close sends what is left, waits for calls in flight and shuts the exporter down.
	close(ctx context.Context) error
}

// Run generates the configured load until the window ends and reports on the window.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	begin := time.Now()
	w := window{start: begin.Add(cfg.Warmup)}
	w.end = w.start.Add(cfg.Duration)
	rec := newRecorder(w)
	workers := make([]worker, 0, cfg.Workers)
	for i := range cfg.Workers {
		var wk worker
		var err error
		if cfg.Signal() == "logs" {
			wk, err = newLogWorker(ctx, cfg, i, rec)
		} else {
			wk, err = newTraceWorker(ctx, cfg, i, rec)
		}
		if err != nil {
			for _, o := range workers {
				_ = o.close(ctx)
			}
			return Result{}, fmt.Errorf("worker %d: %w", i, err)
		}
		workers = append(workers, wk)
	}
	runCtx, stopRun := context.WithDeadline(ctx, w.end)
	defer stopRun()
	stop := runCtx.Done()
	var wg sync.WaitGroup
	for _, wk := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := newPacer(cfg.Rate, cfg.Workers)
			for {
				select {
				case <-stop:
					return
				default:
				}
				now := time.Now()
				n := wk.request(now)
				rec.made(now, n)
				wk.tick(now)
				p.wait(n, stop)
			}
		}()
	}
	wg.Wait()
	closeCtx, cancel := context.WithTimeout(context.Background(), cfg.ExportTimeout+5*time.Second)
	defer cancel()
	var closeErr error
	for _, wk := range workers {
		if err := wk.close(closeCtx); err != nil && closeErr == nil {
			closeErr = err
		}
	}
	res := rec.result(Result{Signal: cfg.Signal(), Mix: cfg.Mix, Workers: cfg.Workers, Rate: cfg.Rate, OpenLoop: cfg.OpenLoop})
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	return res, closeErr
}
