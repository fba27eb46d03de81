package scenario

import (
	"fmt"
	"syscall"
	"time"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
	"github.com/yairfalse/tapio/test/rca/internal/fault"
	"github.com/yairfalse/tapio/test/rca/internal/proc"
	"github.com/yairfalse/tapio/test/rca/internal/score"
)

// An ended process is told by its fatal signal or its exit; either may be the root cause, as long
// as it names what the harness did.
var endEvents = []string{string(unifiedevent.FatalSignal), string(unifiedevent.ProcessExit)}

// RedisSegfault: Redis really crashes (DEBUG SEGFAULT writes through a bad pointer; its crash
// handler logs and re-raises), and every catalog request fails from then on.
var RedisSegfault = Scenario{Name: "redis-crash-segv", Play: func(r *Run) error {
	catalog, err := r.StartCatalog(CatalogOptions{})
	if err != nil {
		return err
	}
	stop, err := r.warmLoad(catalog.Target())
	defer stop()
	if err != nil {
		return err
	}
	e, err := r.segfaultRedis(catalog)
	if err != nil {
		return err
	}
	r.Expect(e)
	return r.Sleep(defaultFailWindow)
}}

func (r *Run) segfaultRedis(catalog *Catalog) (score.Expectation, error) {
	rd := catalog.Redis
	client := rd.Client()
	defer client.Close()
	at := time.Now()
	// The command never answers: Redis dies executing it.
	_ = client.Do(r.Ctx, "DEBUG", "SEGFAULT").Err()
	if !rd.Proc.WaitTimeout(10 * time.Second) {
		return score.Expectation{}, fmt.Errorf("Redis (pid %d) survived DEBUG SEGFAULT", rd.Proc.Pid())
	}
	if ws, _ := rd.Proc.WaitStatus(); !ws.Signaled() || ws.Signal() != syscall.SIGSEGV {
		return score.Expectation{}, fmt.Errorf("Redis (pid %d) %s after DEBUG SEGFAULT, not killed by SIGSEGV", rd.Proc.Pid(), rd.Proc.Outcome())
	}
	pid := rd.Proc.Pid()
	return score.Expectation{
		Fault:      fmt.Sprintf("Redis pid %d crashed: SIGSEGV (DEBUG SEGFAULT)", pid),
		EventNames: endEvents,
		Facts:      [][]string{{fmt.Sprintf("(pid %d)", pid)}, {"SIGSEGV"}},
		Services:   []string{"catalog"},
		Related:    []string{fmt.Sprintf("(pid %d)", pid), fmt.Sprintf(":%d", rd.Port)},
		At:         at,
	}, nil
}

// PostgresBackendAbort: one of the backends serving the orders service — a pre-fork worker —
// gets SIGABRT and dumps; the postmaster ends every other backend and recovers.
var PostgresBackendAbort = Scenario{Name: "pg-backend-abrt", Play: func(r *Run) error {
	orders, err := r.StartOrders(OrdersOptions{})
	if err != nil {
		return err
	}
	stop, err := r.warmLoad(orders.Target())
	defer stop()
	if err != nil {
		return err
	}
	pg := orders.Postgres
	backends, err := pg.BackendPids(r.Ctx, "orders")
	if err != nil {
		return err
	}
	if len(backends) == 0 {
		return fmt.Errorf("no PostgreSQL backend serves the orders service after %s of load", defaultWarmUp)
	}
	watch := r.watchPostgres(pg)
	victim := backends[0]
	sent, err := fault.Kill(r.LogDir, syscall.SIGABRT, victim)
	if err != nil {
		return err
	}
	sig, err := pg.WaitBackendTerminated(r.Ctx, victim, 10*time.Second)
	if err != nil {
		return err
	}
	if sig != syscall.SIGABRT {
		return fmt.Errorf("backend %d died of %s, not of SIGABRT", victim, proc.SignalName(sig))
	}
	r.Expect(score.Expectation{
		Fault:        fmt.Sprintf("PostgreSQL backend pid %d of the orders service crashed: SIGABRT (sent by kill pid %d)", victim, sent.SenderPID),
		EventNames:   endEvents,
		Facts:        [][]string{{fmt.Sprintf("(pid %d)", victim)}, {"SIGABRT"}},
		Services:     []string{"orders"},
		Related:      []string{fmt.Sprintf(":%d", pg.Port), fmt.Sprintf("(pid %d)", sent.SenderPID)},
		RelatedLater: watch.Tokens,
		At:           sent.At,
	})
	return r.Sleep(defaultFailWindow)
}}

// PostmasterKilled: another process SIGKILLs PostgreSQL's postmaster, the listener; its
// backends end as they notice, and new connections are refused. The root cause is the kill,
// naming who sent it.
var PostmasterKilled = Scenario{Name: "pg-postmaster-sigkill", Play: func(r *Run) error {
	orders, err := r.StartOrders(OrdersOptions{})
	if err != nil {
		return err
	}
	stop, err := r.warmLoad(orders.Target())
	defer stop()
	if err != nil {
		return err
	}
	pg := orders.Postgres
	watch := r.watchPostgres(pg)
	postmaster := pg.Proc.Pid()
	sent, err := fault.Kill(r.LogDir, syscall.SIGKILL, postmaster)
	if err != nil {
		return err
	}
	if !pg.Proc.WaitTimeout(10*time.Second) || !killedBy(pg.Proc, syscall.SIGKILL) {
		return fmt.Errorf("the postmaster (pid %d) %s after kill -KILL", postmaster, pg.Proc.Outcome())
	}
	r.Expect(score.Expectation{
		Fault:        fmt.Sprintf("PostgreSQL postmaster pid %d SIGKILLed by kill pid %d", postmaster, sent.SenderPID),
		EventNames:   endEvents,
		Facts:        [][]string{{fmt.Sprintf("(pid %d)", postmaster)}, {fmt.Sprintf("(pid %d)", sent.SenderPID)}, {"SIGKILL"}},
		Services:     []string{"orders"},
		Related:      []string{fmt.Sprintf(":%d", pg.Port), fmt.Sprintf("(pid %d)", sent.SenderPID)},
		RelatedLater: watch.Tokens,
		At:           sent.At,
	})
	return r.Sleep(defaultFailWindow)
}}

// RedisStopped: an operator stops Redis cleanly (SIGTERM: Redis exits 0) while the catalog is
// busy, and every request fails from then on. The root cause is that exit and who asked for it.
var RedisStopped = Scenario{Name: "redis-sigterm", Play: func(r *Run) error {
	catalog, err := r.StartCatalog(CatalogOptions{})
	if err != nil {
		return err
	}
	stop, err := r.warmLoad(catalog.Target())
	defer stop()
	if err != nil {
		return err
	}
	rd := catalog.Redis
	pid := rd.Proc.Pid()
	sent, err := fault.Kill(r.LogDir, syscall.SIGTERM, pid)
	if err != nil {
		return err
	}
	if !rd.Proc.WaitTimeout(10*time.Second) || !rd.Proc.ExitedZero() {
		return fmt.Errorf("Redis (pid %d) %s after SIGTERM, not a clean exit 0", pid, rd.Proc.Outcome())
	}
	r.Expect(score.Expectation{
		Fault:      fmt.Sprintf("Redis pid %d stopped cleanly (SIGTERM from kill pid %d, exit 0)", pid, sent.SenderPID),
		EventNames: endEvents,
		Facts:      [][]string{{fmt.Sprintf("(pid %d)", pid)}, {fmt.Sprintf("(pid %d)", sent.SenderPID)}},
		Services:   []string{"catalog"},
		Related:    []string{fmt.Sprintf("(pid %d)", pid), fmt.Sprintf("(pid %d)", sent.SenderPID), fmt.Sprintf(":%d", rd.Port)},
		At:         sent.At,
	})
	return r.Sleep(defaultFailWindow)
}}

func killedBy(p *proc.Proc, sig syscall.Signal) bool {
	ws, ok := p.WaitStatus()
	return ok && ws.Signaled() && ws.Signal() == sig
}
