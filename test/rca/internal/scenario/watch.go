package scenario

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/yairfalse/tapio/test/rca/internal/servers"
)

// processWatch remembers every process of a server seen during a run — its main process, every
// descendant, everything in its memory cgroup, every pid its log names — so that an incident
// about any of them can be told apart from one about an unrelated process.
type processWatch struct {
	mu    sync.Mutex
	pids  map[int]bool
	roots func() []int
	logs  []string
	stop  chan struct{}
	done  chan struct{}
}

// logPid matches the pid in a log line prefix: PostgreSQL's "[4242] " (log_line_prefix %p) and
// Redis's "4242:M ".
var logPid = regexp.MustCompile(`(?m)(?:\[(\d+)\] |^(\d+):[MCSX] )`)

// watch polls roots and their descendants every 50 ms until the run ends; logs are read for pids
// at the end.
func (r *Run) watch(roots func() []int, logs ...string) *processWatch {
	w := &processWatch{pids: map[int]bool{}, roots: roots, logs: logs, stop: make(chan struct{}), done: make(chan struct{})}
	w.poll()
	go func() {
		defer close(w.done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
				w.poll()
			}
		}
	}()
	r.Defer("process watch", func() error { w.end(); return nil })
	return w
}

func (w *processWatch) poll() {
	var found []int
	for _, pid := range w.roots() {
		found = append(found, descendants(pid)...)
	}
	w.mu.Lock()
	for _, pid := range found {
		w.pids[pid] = true
	}
	w.mu.Unlock()
}

func (w *processWatch) end() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// Tokens ends the watch and names every process seen as narratives do: "(pid 4242)".
func (w *processWatch) Tokens() []string {
	w.end()
	w.poll()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, path := range w.logs {
		raw, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		for _, m := range logPid.FindAllStringSubmatch(string(raw), -1) {
			for _, g := range m[1:] {
				if pid, err := strconv.Atoi(g); err == nil {
					w.pids[pid] = true
				}
			}
		}
	}
	pids := make([]int, 0, len(w.pids))
	for pid := range w.pids {
		pids = append(pids, pid)
	}
	sort.Ints(pids)
	out := make([]string, len(pids))
	for i, pid := range pids {
		out[i] = fmt.Sprintf("(pid %d)", pid)
	}
	return out
}

// descendants is pid and every process below it. A child is listed under the thread that forked
// it, so every thread's list is read (the harness starts processes from any of its threads).
func descendants(pid int) []int {
	if pid <= 0 {
		return nil
	}
	out := []int{pid}
	lists, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, list := range lists {
		raw, err := os.ReadFile(list)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(raw)) {
			if child, err := strconv.Atoi(f); err == nil {
				out = append(out, descendants(child)...)
			}
		}
	}
	return out
}

// watchPostgres watches a PostgreSQL server: its cgroup when it has one, the postmaster's tree,
// and the pids of its log.
func (r *Run) watchPostgres(pg *servers.Postgres) *processWatch {
	return r.watch(func() []int {
		roots := []int{pg.Proc.Pid()}
		if pg.Group != nil {
			if pids, err := servers.GroupPids(pg.Group); err == nil {
				roots = append(roots, pids...)
			}
		}
		return roots
	}, pg.Proc.LogPath)
}

// seen reports whether the watch ever saw pid.
func (w *processWatch) seen(pid int) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pids[pid]
}
