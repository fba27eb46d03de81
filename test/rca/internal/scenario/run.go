// Package scenario holds the suite's scenarios and what they share: a run (its directory, its
// collector, its cleanups, its expectations) and the shop's two stacks.
package scenario

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/yairfalse/tapio/test/rca/internal/load"
	"github.com/yairfalse/tapio/test/rca/internal/proc"
	"github.com/yairfalse/tapio/test/rca/internal/score"
	"github.com/yairfalse/tapio/test/rca/internal/servers"
	"github.com/yairfalse/tapio/test/rca/internal/tapio"
)

// Config is what every run needs to find.
type Config struct {
	Collector string
	// CollectorConfigs are merged in order: the shipped standalone config, then the overlay.
	CollectorConfigs []string
	Catalog          string // the Go service's binary
	Harness          string // this binary, for its helper subcommands
	JSDir            string // test/rca/js, node_modules installed
	CacheDir         string
	WorkDir          string // runs' directories go under it
	PortBase         int
	// SettleMin is the least wait for incidents after a run's load has stopped; SettleMax bounds the wait for incidents after a run's load has stopped.
	SettleMin, SettleMax time.Duration
	// Progress receives one line per step.
	Progress io.Writer
}

// Scenario is one kind of run.
type Scenario struct {
	Name string
	// Noise scenarios inject no fault: any incident is a false one.
	Noise bool
	// Play starts what the scenario needs, drives the load, injects the fault, records the
	// expectations (Run.Expect) and the load's outcomes (Run.Outcomes).
	Play func(r *Run) error
}

// Run is one run of a scenario.
type Run struct {
	Scenario  string
	Index     int
	Dir       string
	LogDir    string
	Ctx       context.Context
	Collector *tapio.Collector
	Env       servers.Env
	Telemetry servers.Telemetry
	cfg       *Config

	collectorOptions tapio.Options

	mu       sync.Mutex
	cleanups []cleanup
	result   score.Run
}

type cleanup struct {
	what string
	undo func() error
}

// Defer registers an undo; they run last first when the run ends, failed or not.
func (r *Run) Defer(what string, undo func() error) {
	r.mu.Lock()
	r.cleanups = append(r.cleanups, cleanup{what, undo})
	r.mu.Unlock()
}

// Expect records an injected fault.
func (r *Run) Expect(e score.Expectation) {
	r.mu.Lock()
	r.result.Expectations = append(r.result.Expectations, e)
	r.mu.Unlock()
	r.Logf("fault: %s", e.Fault)
}

// Outcomes records what the load generator saw.
func (r *Run) Outcomes(o []load.Outcome) {
	r.mu.Lock()
	r.result.Outcomes = append(r.result.Outcomes, o...)
	r.mu.Unlock()
}

// Note adds a remark to the run's row.
func (r *Run) Note(format string, args ...any) {
	r.mu.Lock()
	r.result.Notes = append(r.result.Notes, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

// Logf reports progress.
func (r *Run) Logf(format string, args ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, "[%s] %s#%d: %s\n", time.Now().Format("15:04:05.0"), r.Scenario, r.Index, fmt.Sprintf(format, args...))
	}
}

// Port is the suite's port at offset from its base.
func (r *Run) Port(offset int) int { return r.cfg.PortBase + offset }

// Sleep waits, unless the suite is being stopped.
// warmLoad starts the load generator on targets and lets it run healthy for defaultWarmUp. The
// stop it returns is always safe to defer: it records what the load saw.
func (r *Run) warmLoad(targets ...load.Target) (stop func(), err error) {
	gen := load.Start(r.Ctx, uint64(r.Index), targets...)
	return func() { r.Outcomes(gen.Stop()) }, r.Sleep(defaultWarmUp)
}

func (r *Run) Sleep(d time.Duration) error {
	select {
	case <-r.Ctx.Done():
		return r.Ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// Port offsets from Config.PortBase.
const (
	portHealth = iota
	portOTLPGRPC
	portOTLPHTTP
	portAPI
	portPprof
	portMetrics
)

// After its load stops a run waits at least Config.SettleMin for Tapio, then until the incidents
// have been quiet for settleQuiet, never longer than Config.SettleMax.
const settleQuiet = 2 * time.Second

// Execute plays one run: a fresh collector (its own data directory: nothing carries over from
// the run before), the scenario, the incidents once they have settled; then everything the run
// started is stopped, the collector first so that the teardown is not observed.
func Execute(ctx context.Context, cfg *Config, s Scenario, index int) score.Run {
	r := &Run{Scenario: s.Name, Index: index, Ctx: ctx, cfg: cfg}
	r.result = score.Run{Scenario: s.Name, Index: index, Noise: s.Noise}
	err := r.execute(s)
	r.teardown()
	r.result.Err = err
	if err != nil {
		r.Logf("harness error: %v", err)
	}
	return r.result
}

func (r *Run) execute(s Scenario) error {
	dir, err := os.MkdirTemp(r.cfg.WorkDir, fmt.Sprintf("%s-%d-", s.Name, r.Index))
	if err != nil {
		return err
	}
	// PostgreSQL (its own user) and nginx's workers need to reach their files below.
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	r.Dir, r.LogDir = dir, filepath.Join(dir, "logs")
	if err := os.Mkdir(r.LogDir, 0o755); err != nil {
		return err
	}
	r.Env = servers.Env{RunDir: dir, LogDir: r.LogDir, CacheDir: r.cfg.CacheDir, Cleanup: r}
	// Every process below the harness is the suite's; on a shared machine other incidents are
	// about other people's processes, and the table says how many.
	suite := r.watch(func() []int { return []int{os.Getpid()} })
	r.result.Ours = func(pid int) bool { return proc.Started(pid) || suite.seen(pid) }
	r.collectorOptions = tapio.Options{
		Binary:  r.cfg.Collector,
		Configs: r.cfg.CollectorConfigs,
		Ports: tapio.Ports{
			Health: r.Port(portHealth), OTLPGRPC: r.Port(portOTLPGRPC), OTLPHTTP: r.Port(portOTLPHTTP),
			API: r.Port(portAPI), Pprof: r.Port(portPprof), Metrics: r.Port(portMetrics),
		},
		DataDir: filepath.Join(dir, "tapio"),
		LogDir:  r.LogDir,
	}
	col, err := tapio.Start(r.Ctx, r.collectorOptions)
	if err != nil {
		return err
	}
	r.Collector = col
	r.Telemetry = servers.Telemetry{
		OTLPHTTP:   fmt.Sprintf("http://127.0.0.1:%d", r.Port(portOTLPHTTP)),
		OTLPGRPC:   fmt.Sprintf("127.0.0.1:%d", r.Port(portOTLPGRPC)),
		OTLPSocket: col.OTLPSocket,
	}
	r.Logf("collector up (pid %d), %s", col.Proc.Pid(), dir)

	playErr := s.Play(r)
	loadEnd := time.Now()
	r.mu.Lock()
	for i := range r.result.Expectations {
		if e := &r.result.Expectations[i]; e.RelatedLater != nil {
			e.Related = append(e.Related, e.RelatedLater()...)
		}
	}
	r.mu.Unlock()
	served, err := col.API.Settle(r.Ctx, loadEnd.Add(r.cfg.SettleMin), loadEnd.Add(r.cfg.SettleMax), settleQuiet)
	if err != nil {
		return errors.Join(playErr, err)
	}
	final, err := r.flushIncidents()
	if err != nil {
		return errors.Join(playErr, err)
	}
	r.result.Incidents, r.result.Served = final, served
	r.Logf("%d incidents served, %d once the collector stopped", len(served), len(final))
	return playErr
}

// flushIncidents stops the collector, which emits every incident whose evidence it still holds
// (the connector's Shutdown; an incident that keeps receiving evidence is otherwise held up to
// max_decision_delay), and reads the store back through a collector started on the same data
// directory just for that. The collector is stopped before anything else of the run: the
// teardown of servers and apps is never observed.
func (r *Run) flushIncidents() ([]tapio.Incident, error) {
	r.Collector.Stop()
	r.Collector = nil
	reader, err := tapio.Start(r.Ctx, r.collectorOptions)
	if err != nil {
		return nil, fmt.Errorf("restarting the collector to read its store: %w", err)
	}
	defer reader.Stop()
	return reader.API.Incidents(r.Ctx)
}

// teardown stops the collector, then undoes the run's set-up, last first.
func (r *Run) teardown() {
	if r.Collector != nil {
		r.Collector.Stop()
	}
	r.mu.Lock()
	cleanups := r.cleanups
	r.cleanups = nil
	r.mu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		if err := cleanups[i].undo(); err != nil {
			r.Logf("cleanup of %s: %v", cleanups[i].what, err)
			r.Note("cleanup of %s failed: %v", cleanups[i].what, err)
		}
	}
	if err := r.closeLingeringSockets(); err != nil {
		r.Logf("closing lingering sockets: %v", err)
	}
}

// closeLingeringSockets destroys what is left of the run's connections on the suite's ports: a
// connection that lost its peer (a reset injected on one side only) keeps retransmitting its FIN
// for minutes, and the next run's collector would see a fault from this one. TIME_WAIT sockets
// send nothing and stay.
func (r *Run) closeLingeringSockets() error {
	if r.LogDir == "" {
		return nil
	}
	low, high := r.cfg.PortBase, r.cfg.PortBase+99
	filter := fmt.Sprintf("( sport >= :%d and sport <= :%d ) or ( dport >= :%d and dport <= :%d )", low, high, low, high)
	argv := []string{"ss", "-K", "-t", "-n"}
	for _, state := range []string{"established", "syn-sent", "syn-recv", "fin-wait-1", "fin-wait-2", "close-wait", "last-ack", "closing"} {
		argv = append(argv, "state", state)
	}
	return proc.Run(proc.Spec{Name: "ss", Argv: append(argv, filter), LogDir: r.LogDir}, 30*time.Second)
}
