package scenario

import (
	"fmt"
	"time"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
	"github.com/yairfalse/tapio/test/rca/internal/score"
)

// redisStall is how long Redis stops answering: past the shipped slow-span threshold (2 s),
// short of the catalog's read timeout (10 s), so requests are slow and none fails.
const redisStall = 3 * time.Second

// RedisSlow: Redis stalls (DEBUG SLEEP: the single thread sleeps) and the catalog's requests
// wait for it. Redis is not instrumented, so the expected root cause is the catalog's slow
// CLIENT span naming Redis.
var RedisSlow = Scenario{Name: "redis-slow", Play: func(r *Run) error {
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
	client := rd.Client()
	defer client.Close()
	at := time.Now()
	if err := client.Do(r.Ctx, "DEBUG", "SLEEP", fmt.Sprintf("%.1f", redisStall.Seconds())).Err(); err != nil {
		return fmt.Errorf("DEBUG SLEEP: %w", err)
	}
	if took := time.Since(at); took < redisStall {
		return fmt.Errorf("DEBUG SLEEP %s answered after %s", redisStall, took)
	}
	r.Expect(score.Expectation{
		Fault:      fmt.Sprintf("Redis (pid %d, 127.0.0.1:%d) stalled for %s (DEBUG SLEEP)", rd.Proc.Pid(), rd.Port, redisStall),
		EventNames: []string{string(unifiedevent.SlowSpan)},
		SpanKind:   "CLIENT",
		Facts:      [][]string{{fmt.Sprintf(":%d", rd.Port), "redis"}},
		Services:   []string{"catalog"},
		Related:    []string{fmt.Sprintf(":%d", rd.Port), fmt.Sprintf("(pid %d)", rd.Proc.Pid())},
		At:         at,
		Slow:       true,
	})
	return r.Sleep(defaultWarmUp)
}}
