package scenario

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/yairfalse/tapio/test/rca/internal/fault"
	"github.com/yairfalse/tapio/test/rca/internal/load"
	"github.com/yairfalse/tapio/test/rca/internal/proc"
	"github.com/yairfalse/tapio/test/rca/internal/servers"
)

// NoiseService: a healthy shop and everything that happens around one without anything being
// wrong — readiness probes refused while the orders service starts, healthy traffic, clients
// making bad requests (4xx), nginx reloading its workers under load, Redis restarted cleanly
// while the catalog is idle. No request fails: every incident is a false one.
var NoiseService = Scenario{Name: "noise-service", Noise: true, Play: func(r *Run) error {
	pg, err := servers.StartPostgres(r.Ctx, r.Env, servers.PostgresOptions{
		Name: "postgres", Port: r.Port(portPostgres), MemoryLimit: 1 << 30,
	})
	if err != nil {
		return err
	}
	// A readiness probe polls the orders port from before the service listens until it answers.
	ordersPort := r.Port(portOrders)
	probeCtx, stopProbe := context.WithCancel(r.Ctx)
	var probes sync.WaitGroup
	probes.Add(1)
	ready := make(chan struct{})
	go func() {
		defer probes.Done()
		readinessProbe(probeCtx, fmt.Sprintf("http://127.0.0.1:%d/healthz", ordersPort), ready)
	}()
	defer func() { stopProbe(); probes.Wait() }()
	if err := r.Sleep(time.Second); err != nil {
		return err
	}
	app, err := servers.StartOrders(r.Ctx, r.Env, r.Telemetry, servers.OrdersOptions{Name: "orders", Port: ordersPort, JSDir: r.cfg.JSDir, Postgres: pg})
	if err != nil {
		return err
	}
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("the readiness probe never saw the orders service ready")
	}
	orders := &Orders{Postgres: pg, App: app}
	catalog, err := r.StartCatalog(CatalogOptions{})
	if err != nil {
		return err
	}
	// This scenario pauses and resumes parts of the load, so it keeps the generator itself.
	gen := load.Start(r.Ctx, uint64(r.Index), orders.Target(), orders.BadRequests(), catalog.Target(), catalog.BadRequests())
	defer func() { r.Outcomes(gen.Stop()) }()
	if err := r.Sleep(defaultWarmUp); err != nil {
		return err
	}
	r.Logf("nginx reload (SIGHUP to master pid %d)", catalog.Nginx.Proc.Pid())
	if err := catalog.Nginx.Reload(); err != nil {
		return err
	}
	if err := r.Sleep(defaultWarmUp); err != nil {
		return err
	}
	// A clean restart of Redis between two bursts of catalog traffic.
	gen.Pause("catalog")
	gen.Pause("catalog-4xx")
	if err := r.Sleep(500 * time.Millisecond); err != nil {
		return err
	}
	rd := catalog.Redis
	sent, err := fault.Kill(r.LogDir, syscall.SIGTERM, rd.Proc.Pid())
	if err != nil {
		return err
	}
	if !rd.Proc.WaitTimeout(10*time.Second) || !rd.Proc.ExitedZero() {
		return fmt.Errorf("Redis (pid %d) %s after SIGTERM", rd.Proc.Pid(), rd.Proc.Outcome())
	}
	if err := rd.Restart(r.Ctx); err != nil {
		return err
	}
	r.Logf("Redis restarted cleanly (SIGTERM from kill pid %d): pid %d", sent.SenderPID, rd.Proc.Pid())
	gen.Resume("catalog")
	gen.Resume("catalog-4xx")
	return r.Sleep(defaultWarmUp + time.Second)
}}

// readinessProbe asks url every 200 ms until it answers 200 (refused while the service starts),
// then every second, as an orchestrator's readiness probe does.
func readinessProbe(ctx context.Context, url string, ready chan<- struct{}) {
	client := &http.Client{Timeout: time.Second}
	interval := 200 * time.Millisecond
	isReady := false
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && !isReady {
				isReady, interval = true, time.Second
				close(ready)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// NoiseHost: a healthy shop on a busy host — shell loops whose grep, test and false exit
// non-zero, a command cut short by timeout, short-lived tools that crash (SIGSEGV, SIGABRT).
// Nothing the shop depends on is touched: every incident is a false one.
var NoiseHost = Scenario{Name: "noise-host", Noise: true, Play: func(r *Run) error {
	orders, err := r.StartOrders(OrdersOptions{})
	if err != nil {
		return err
	}
	catalog, err := r.StartCatalog(CatalogOptions{})
	if err != nil {
		return err
	}
	stop, err := r.warmLoad(orders.Target(), catalog.Target())
	defer stop()
	if err != nil {
		return err
	}
	for round := 0; round < 6 && r.Ctx.Err() == nil; round++ {
		if err := r.busyHostRound(); err != nil {
			return err
		}
		if err := r.Sleep(700 * time.Millisecond); err != nil {
			return err
		}
	}
	return r.Sleep(time.Second)
}}

// busyLoop is a shell loop whose commands exit non-zero. Each command runs in the background for
// a moment so that the loop can print its pid: the suite must know them to tell its own noise
// from other work on a shared machine.
const busyLoop = `for f in /nonexistent-a /nonexistent-b; do
	grep -q no-such-line /etc/hostname & echo "$!"; wait "$!"
	/usr/bin/test -e "$f" & echo "$!"; wait "$!"
	/bin/false & echo "$!"; wait "$!"
done`

// busyHostTools are the commands of one round; each exits non-zero or dies of a signal, as a
// script on any host does many times a minute.
func (r *Run) busyHostTools() [][]string {
	return [][]string{
		{"sh", "-c", busyLoop},
		{"grep", "-q", "no-such-line", "/etc/hostname"},
		{"readlink", "/nonexistent"},
		{"timeout", "0.2", "sleep", "5"},
		{"sh", "-c", "kill -SEGV $$"},
		{r.cfg.Harness, "crash"},
	}
}

func (r *Run) busyHostRound() error {
	var wg sync.WaitGroup
	errs := make(chan error, len(r.busyHostTools()))
	for i, argv := range r.busyHostTools() {
		p, err := proc.Start(proc.Spec{Name: fmt.Sprintf("busy-%d", i), Argv: argv, LogDir: r.LogDir})
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !p.WaitTimeout(10 * time.Second) {
				p.Kill()
				errs <- fmt.Errorf("%v did not end", argv)
			}
			registerPrintedPids(p.LogPath)
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// registerPrintedPids records the pids a busy loop printed, one per line.
func registerPrintedPids(logPath string) {
	raw, err := os.ReadFile(logPath)
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if pid, err := strconv.Atoi(strings.TrimSpace(line)); err == nil && pid > 0 {
			proc.Register(pid)
		}
	}
}
