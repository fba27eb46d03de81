package scenario

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
	"github.com/yairfalse/tapio/test/rca/internal/proc"
	"github.com/yairfalse/tapio/test/rca/internal/score"
)

// postgresMemory is PostgreSQL's memory cgroup limit: ample for the shop, far short of one
// analyst's array_agg over a hundred million rows with work_mem at 2 GB.
const postgresMemory = 160 << 20

// PostgresOOM: a query makes one PostgreSQL backend — a pre-fork worker, neither the listener
// nor a client — allocate past the cgroup's limit; the kernel OOM-kills it, and the postmaster
// ends every other backend and recovers, failing the orders in flight.
var PostgresOOM = Scenario{Name: "pg-backend-oom", Play: func(r *Run) error {
	orders, err := r.StartOrders(OrdersOptions{PostgresMemory: postgresMemory})
	if err != nil {
		return err
	}
	stop, err := r.warmLoad(orders.Target())
	defer stop()
	if err != nil {
		return err
	}
	e, err := r.oomPostgresBackend(orders)
	if err != nil {
		return err
	}
	r.Expect(e)
	return r.Sleep(defaultFailWindow)
}}

// oomPostgresBackend runs the allocating query on a connection of the harness's own and returns
// the expectation once the postmaster has logged that backend's death by SIGKILL.
func (r *Run) oomPostgresBackend(orders *Orders) (score.Expectation, error) {
	pg := orders.Postgres
	conn, err := pg.Connect(r.Ctx)
	if err != nil {
		return score.Expectation{}, err
	}
	defer conn.Close(context.Background())
	var pid int
	if err := conn.QueryRow(r.Ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		return score.Expectation{}, err
	}
	if _, err := conn.Exec(r.Ctx, "SET work_mem = '2GB'"); err != nil {
		return score.Expectation{}, err
	}
	watch := r.watchPostgres(pg)
	at := time.Now()
	queryErr := make(chan error, 1)
	go func() {
		_, err := conn.Exec(r.Ctx, "SELECT array_length(array_agg(g), 1) FROM generate_series(1, 100000000) AS g")
		queryErr <- err
	}()
	sig, err := pg.WaitBackendTerminated(r.Ctx, pid, 30*time.Second)
	if err != nil {
		return score.Expectation{}, err
	}
	<-queryErr
	if sig != syscall.SIGKILL {
		return score.Expectation{}, fmt.Errorf("backend %d died of %s, not of the OOM killer's SIGKILL", pid, proc.SignalName(sig))
	}
	return score.Expectation{
		Fault:        fmt.Sprintf("OOM kill of PostgreSQL backend pid %d (memory cgroup %d MiB)", pid, postgresMemory>>20),
		EventNames:   []string{string(unifiedevent.OOMKill)},
		Facts:        [][]string{{fmt.Sprintf("(pid %d)", pid)}},
		Services:     []string{"orders"},
		Related:      []string{fmt.Sprintf(":%d", pg.Port)},
		RelatedLater: watch.Tokens,
		At:           at,
	}, nil
}

// redisMemory is Redis's memory cgroup limit; its own maxmemory is off.
const redisMemory = 64 << 20

// RedisOOM: a single-process server filled past its cgroup's limit (maxmemory off, as shipped)
// is OOM-killed; every catalog request fails from then on.
var RedisOOM = Scenario{Name: "redis-oom", Play: func(r *Run) error {
	catalog, err := r.StartCatalog(CatalogOptions{RedisMemory: redisMemory})
	if err != nil {
		return err
	}
	stop, err := r.warmLoad(catalog.Target())
	defer stop()
	if err != nil {
		return err
	}
	e, err := r.oomRedis(catalog)
	if err != nil {
		return err
	}
	r.Expect(e)
	return r.Sleep(defaultFailWindow)
}}

// oomRedis writes 1 MiB values until Redis is gone, and returns the expectation once the
// harness has reaped Redis and seen it die of SIGKILL.
func (r *Run) oomRedis(catalog *Catalog) (score.Expectation, error) {
	rd := catalog.Redis
	client := rd.Client()
	defer client.Close()
	value := strings.Repeat("x", 1<<20)
	at := time.Now()
	for i := 0; i < 4*redisMemory>>20 && !rd.Proc.Exited(); i++ {
		if err := client.Set(r.Ctx, fmt.Sprintf("filler:%d", i), value, 0).Err(); err != nil {
			break
		}
	}
	if !rd.Proc.WaitTimeout(10 * time.Second) {
		return score.Expectation{}, fmt.Errorf("Redis (pid %d) outlived %d MiB of writes into a %d MiB cgroup", rd.Proc.Pid(), 4*redisMemory>>20, redisMemory>>20)
	}
	if ws, _ := rd.Proc.WaitStatus(); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		return score.Expectation{}, fmt.Errorf("Redis (pid %d) %s, not killed by the OOM killer's SIGKILL", rd.Proc.Pid(), rd.Proc.Outcome())
	}
	pid := rd.Proc.Pid()
	return score.Expectation{
		Fault:      fmt.Sprintf("OOM kill of Redis pid %d (memory cgroup %d MiB)", pid, redisMemory>>20),
		EventNames: []string{string(unifiedevent.OOMKill)},
		Facts:      [][]string{{fmt.Sprintf("(pid %d)", pid)}},
		Services:   []string{"catalog"},
		Related:    []string{fmt.Sprintf("(pid %d)", pid), fmt.Sprintf(":%d", rd.Port)},
		At:         at,
	}, nil
}
