package gen

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// ConnectCounts is what a connect storm did in its window.
type ConnectCounts struct {
	Attempts  int64 `json:"attempts"`
	Refused   int64 `json:"refused"`
	Connected int64 `json:"connected"`
	Other     int64 `json:"other_errors"`
}

// ConnectConfig is a process connecting to a closed loopback port over and over, as a client
// whose server is down does in its retry loop.
type ConnectConfig struct {
	Addr     netip.AddrPort
	Rate     float64 // connects per second, all workers; 0 = as fast as they go
	Warmup   time.Duration
	Duration time.Duration
	Workers  int
}

// RunConnects runs the storm and reports on its window. A port that accepts is an error: the
// storm is of refused connections.
func RunConnects(ctx context.Context, cfg ConnectConfig) (Result, error) {
	if !cfg.Addr.Addr().IsLoopback() {
		return Result{}, fmt.Errorf("%s is not a loopback address", cfg.Addr)
	}
	if cfg.Workers < 1 || cfg.Duration <= 0 || cfg.Rate < 0 {
		return Result{}, errors.New("connect storm: want workers ≥ 1, a positive duration and a rate ≥ 0")
	}
	sa := &unix.SockaddrInet4{Port: int(cfg.Addr.Port()), Addr: cfg.Addr.Addr().As4()}
	begin := time.Now()
	w := window{start: begin.Add(cfg.Warmup)}
	w.end = w.start.Add(cfg.Duration)
	runCtx, stop := context.WithDeadline(ctx, w.end)
	defer stop()
	var c ConnectCounts
	var wg sync.WaitGroup
	for range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := newPacer(cfg.Rate, cfg.Workers)
			for runCtx.Err() == nil {
				err := connectOnce(sa)
				if now := time.Now(); w.in(now) {
					atomic.AddInt64(&c.Attempts, 1)
					switch {
					case err == nil:
						atomic.AddInt64(&c.Connected, 1)
					case errors.Is(err, unix.ECONNREFUSED):
						atomic.AddInt64(&c.Refused, 1)
					default:
						atomic.AddInt64(&c.Other, 1)
					}
				}
				p.wait(1, runCtx.Done())
			}
		}()
	}
	wg.Wait()
	res := Result{Signal: "kernel", Mix: "refused_connects", Workers: cfg.Workers, Rate: cfg.Rate, WindowS: cfg.Duration.Seconds(),
		Generated: c.Attempts, Connects: &c}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if c.Connected > 0 {
		return res, fmt.Errorf("%d connects to %s were accepted: the port is not closed", c.Connected, cfg.Addr)
	}
	return res, nil
}

func connectOnce(sa *unix.SockaddrInet4) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Connect(fd, sa)
}
