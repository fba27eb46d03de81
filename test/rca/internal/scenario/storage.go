package scenario

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
	"github.com/yairfalse/tapio/test/rca/internal/fault"
	"github.com/yairfalse/tapio/test/rca/internal/score"
)

// The thin disk under PostgreSQL: a 1 GiB filesystem on 96 MiB of real space, of which the
// cluster's copy takes about 30.
const (
	thinDiskSpace   = 96 << 20
	thinDiskBacking = 1 << 30
)

// postgresIOFailure matches PostgreSQL's own account of a failed write or sync.
var postgresIOFailure = regexp.MustCompile(`(?i)(could not (write|fsync|fdatasync|extend|open)[^\n]*|PANIC[^\n]*)(Input/output error|No space left|read-only)`)

// PostgresIOError: PostgreSQL's whole cluster lives on a thin disk whose real space runs out;
// its next WAL writes fail in the block layer, PostgreSQL panics, and orders fail.
var PostgresIOError = Scenario{Name: "pg-io-error", Play: func(r *Run) error {
	disk, err := fault.NewThinDisk(r, r.LogDir, filepath.Join(r.Dir, "disk"), thinDiskSpace, thinDiskBacking)
	if err != nil {
		return err
	}
	orders, err := r.StartOrders(OrdersOptions{DataDir: filepath.Join(disk.Mount, "pgdata")})
	if err != nil {
		return err
	}
	watch := r.watchPostgres(orders.Postgres)
	stop, err := r.warmLoad(orders.Target())
	defer stop()
	if err != nil {
		return err
	}
	at, err := disk.Fill()
	if err != nil {
		return err
	}
	logPath := orders.Postgres.Proc.LogPath
	if !r.waitFor(15*time.Second, func() bool {
		raw, err := os.ReadFile(logPath)
		return err == nil && postgresIOFailure.Match(raw)
	}) {
		return fmt.Errorf("PostgreSQL logged no I/O failure within 15 s of %s running out of space", disk.Device)
	}
	r.Expect(score.Expectation{
		Fault:        fmt.Sprintf("the thin disk under PostgreSQL (%s on a full %d MiB tmpfs) ran out of space: writes fail", disk.Device, thinDiskSpace>>20),
		EventNames:   []string{string(unifiedevent.IOError)},
		Facts:        [][]string{{disk.Device}},
		Services:     []string{"orders"},
		Related:      []string{disk.Device, fmt.Sprintf(":%d", orders.Postgres.Port)},
		RelatedLater: watch.Tokens,
		At:           at,
	})
	return r.Sleep(defaultFailWindow)
}}
