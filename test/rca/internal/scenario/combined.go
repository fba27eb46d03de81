package scenario

import (
	"errors"

	"github.com/yairfalse/tapio/test/rca/internal/score"
)

// TwoFaults: both stacks at once, each with its own fault at the same moment — a PostgreSQL
// backend OOM-killed under the orders service, Redis crashing under the catalog. Two unrelated
// faults: two incidents, each with its own root cause.
var TwoFaults = Scenario{Name: "two-faults", Play: func(r *Run) error {
	orders, err := r.StartOrders(OrdersOptions{PostgresMemory: postgresMemory})
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
	type result struct {
		e   score.Expectation
		err error
	}
	pgDone, redisDone := make(chan result, 1), make(chan result, 1)
	go func() { e, err := r.oomPostgresBackend(orders); pgDone <- result{e, err} }()
	go func() { e, err := r.segfaultRedis(catalog); redisDone <- result{e, err} }()
	pg, rd := <-pgDone, <-redisDone
	if err := errors.Join(pg.err, rd.err); err != nil {
		return err
	}
	r.Expect(pg.e)
	r.Expect(rd.e)
	return r.Sleep(defaultFailWindow)
}}
