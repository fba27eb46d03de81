// Package scenario plays the README's story for real: otelcol-tapio, checkout → payment →
// ledger-db, a load of customers, and a ledger-db that leaks memory until the kernel OOM-kills
// it inside a memory cgroup. `make demo` and the acceptance test both run it.
package scenario

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/yairfalse/tapio/internal/memcg"
)

// Options says where everything is and how hard to push.
type Options struct {
	Collector string
	// CollectorConfigs are passed in order, each as --config: the distribution's config, then
	// the demo shop's business figures merged over it.
	CollectorConfigs            []string
	Checkout, Payment, LedgerDB string
	// CollectorEnv is added to the collector's environment (data directories, ports).
	CollectorEnv []string
	// HealthURL answers 200 once the collector is ready.
	HealthURL string
	// OTLPEndpoint is where the services send telemetry.
	OTLPEndpoint string
	// LedgerLimitBytes is ledger-db's memory cgroup limit; each charge leaks LeakBytes.
	LedgerLimitBytes, LeakBytes int64
	// Users is how many distinct customers the load draws from; Rate is requests per second.
	Users int
	Rate  int
	// FailuresAfterKill is how many failed checkouts to collect after the OOM kill.
	FailuresAfterKill int
	// Log receives the processes' output; nil discards it.
	Log io.Writer
	// Progress is told what is happening, phase by phase.
	Progress func(phase Phase, detail string)
}

// Phase names a step of the story.
type Phase string

const (
	PhaseStarting Phase = "starting"
	PhaseHealthy  Phase = "healthy traffic"
	PhaseLeaking  Phase = "ledger-db leaking"
	PhaseKilled   Phase = "ledger-db OOM-killed"
	PhaseFailing  Phase = "checkouts failing"
	PhaseDone     Phase = "done"
)

// Failure is one checkout the load generator saw fail.
type Failure struct {
	TraceID string
	User    string
	At      time.Time
}

// Result is what the load generator itself observed.
type Result struct {
	Requests    int
	Succeeded   int
	Failures    []Failure
	FailedUsers map[string]bool
	LedgerPID   int
	// KilledAt is when ledger-db's death was observed (its wait(2) returned).
	KilledAt   time.Time
	KillSignal string
}

// Stack is everything the scenario started; Stop ends it all.
type Stack struct {
	procs      []*exec.Cmd
	group      *memcg.Group
	ledger     *exec.Cmd
	ledgerDone chan struct{}
	ledgerErr  error
}

const (
	checkoutAddr = "127.0.0.1:18080"
	paymentAddr  = "127.0.0.1:18081"
	ledgerAddr   = "127.0.0.1:15432"
)

// Start launches the collector and the three services.
func Start(ctx context.Context, o Options) (*Stack, error) {
	s := &Stack{ledgerDone: make(chan struct{})}
	var args []string
	for _, c := range o.CollectorConfigs {
		args = append(args, "--config", c)
	}
	progress(o, PhaseStarting, "otelcol-tapio "+strings.Join(args, " "))
	collector := exec.Command(o.Collector, args...)
	collector.Env = append(os.Environ(), o.CollectorEnv...)
	if err := s.launch(o, collector); err != nil {
		return s, fmt.Errorf("starting otelcol-tapio: %w", err)
	}
	if err := waitHTTP(ctx, o.HealthURL, 60*time.Second); err != nil {
		return s, fmt.Errorf("otelcol-tapio did not become healthy: %w", err)
	}

	group, err := memcg.Create("tapio-demo-ledger-db", o.LedgerLimitBytes)
	if err != nil {
		return s, err
	}
	s.group = group
	// Locked, ledger-db is killed when its cache crosses the limit. Unlocked, the kernel may
	// reclaim its code and fault it back in for many seconds first, every charge stalling: a
	// story of its own (hundreds of timed-out checkouts before the kill) that the demo does not tell.
	argv := group.Command(o.LedgerDB, "-lock-memory", "-listen", ledgerAddr, "-leak-bytes", fmt.Sprint(o.LeakBytes))
	s.ledger = exec.Command(argv[0], argv[1:]...)
	progress(o, PhaseStarting, fmt.Sprintf("ledger-db in memory cgroup %s (limit %d MiB)", group.Dir, o.LedgerLimitBytes>>20))
	if err := s.launchLedger(o); err != nil {
		return s, err
	}
	serviceEnv := append(os.Environ(), "OTEL_EXPORTER_OTLP_ENDPOINT="+o.OTLPEndpoint)
	payment := exec.Command(o.Payment, "-listen", paymentAddr, "-ledger", ledgerAddr)
	payment.Env = serviceEnv
	checkout := exec.Command(o.Checkout, "-listen", checkoutAddr, "-payment", "http://"+paymentAddr)
	checkout.Env = serviceEnv
	for _, c := range []*exec.Cmd{payment, checkout} {
		if err := s.launch(o, c); err != nil {
			return s, err
		}
	}
	for _, addr := range []string{ledgerAddr, paymentAddr, checkoutAddr} {
		if err := waitListening(ctx, addr, 20*time.Second); err != nil {
			return s, err
		}
	}
	return s, nil
}

func (s *Stack) launch(o Options, c *exec.Cmd) error {
	c.Stdout, c.Stderr = logWriter(o), logWriter(o)
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the scenario
	if err := c.Start(); err != nil {
		return err
	}
	s.procs = append(s.procs, c)
	return nil
}

func (s *Stack) launchLedger(o Options) error {
	s.ledger.Stdout, s.ledger.Stderr = logWriter(o), logWriter(o)
	s.ledger.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.ledger.Start(); err != nil {
		return fmt.Errorf("starting ledger-db: %w", err)
	}
	go func() {
		s.ledgerErr = s.ledger.Wait()
		close(s.ledgerDone)
	}()
	return nil
}

func logWriter(o Options) io.Writer {
	if o.Log == nil {
		return io.Discard
	}
	return o.Log
}

func progress(o Options, p Phase, detail string) {
	if o.Progress != nil {
		o.Progress(p, detail)
	}
}

// Drive sends checkouts until ledger-db has been killed and FailuresAfterKill checkouts have
// failed since, and reports what it saw.
func (s *Stack) Drive(ctx context.Context, o Options) (*Result, error) {
	res := &Result{FailedUsers: map[string]bool{}, LedgerPID: s.ledger.Process.Pid}
	client := &http.Client{Timeout: 10 * time.Second}
	var mu sync.Mutex
	ticker := time.NewTicker(time.Second / time.Duration(o.Rate))
	defer ticker.Stop()
	phase := PhaseHealthy
	progress(o, phase, fmt.Sprintf("%d customers, %d checkouts/s", o.Users, o.Rate))
	lastReport := time.Now()
	var wg sync.WaitGroup
	defer wg.Wait()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-ticker.C:
		}
		if time.Now().After(deadline) {
			return res, errors.New("ledger-db was not OOM-killed within 3 minutes of load")
		}
		select {
		case <-s.ledgerDone:
			if res.KilledAt.IsZero() {
				mu.Lock()
				res.KilledAt = time.Now()
				res.KillSignal = exitSignal(s.ledgerErr)
				mu.Unlock()
				progress(o, PhaseKilled, fmt.Sprintf("ledger-db (pid %d) died: %s", res.LedgerPID, res.KillSignal))
				phase = PhaseFailing
			}
		default:
		}
		mu.Lock()
		failedSinceKill := 0
		for _, f := range res.Failures {
			if !res.KilledAt.IsZero() && f.At.After(res.KilledAt) {
				failedSinceKill++
			}
		}
		mu.Unlock()
		if failedSinceKill >= o.FailuresAfterKill {
			break
		}
		if time.Since(lastReport) > time.Second {
			lastReport = time.Now()
			mu.Lock()
			detail := fmt.Sprintf("%d checkouts, %d failed", res.Requests, len(res.Failures))
			mu.Unlock()
			if phase != PhaseFailing && s.group != nil {
				if usage, err := s.group.UsageBytes(); err == nil {
					phase = PhaseLeaking
					detail += fmt.Sprintf("; ledger-db memory %d MiB of %d MiB", usage>>20, o.LedgerLimitBytes>>20)
				}
			}
			progress(o, phase, detail)
		}
		user := fmt.Sprintf("user-%03d", rand.IntN(o.Users)+1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			traceID, ok := checkout(ctx, client, user)
			mu.Lock()
			defer mu.Unlock()
			res.Requests++
			if ok {
				res.Succeeded++
				return
			}
			res.Failures = append(res.Failures, Failure{TraceID: traceID, User: user, At: time.Now()})
			res.FailedUsers[user] = true
		}()
	}
	wg.Wait()
	progress(o, PhaseDone, fmt.Sprintf("%d checkouts, %d failed, %d distinct customers affected", res.Requests, len(res.Failures), len(res.FailedUsers)))
	return res, nil
}

func checkout(ctx context.Context, client *http.Client, user string) (traceID string, ok bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+checkoutAddr+"/api/checkout?user="+user+"&amount=49.90", nil)
	if err != nil {
		return "", false
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", false
	}
	resp.Body.Close()
	return resp.Header.Get("X-Trace-Id"), resp.StatusCode == http.StatusOK
}

func exitSignal(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return ws.Signal().String()
		}
		return ee.String()
	}
	if err == nil {
		return "exited"
	}
	return err.Error()
}

// Stop ends every process the scenario started and removes ledger-db's cgroup.
func (s *Stack) Stop() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		c := s.procs[i]
		if c.Process == nil {
			continue
		}
		_ = c.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = c.Process.Kill()
			<-done
		}
	}
	if s.ledger != nil && s.ledger.Process != nil {
		select {
		case <-s.ledgerDone:
		default:
			_ = s.ledger.Process.Kill()
			<-s.ledgerDone
		}
	}
	if s.group != nil {
		_ = s.group.Remove()
	}
}

func waitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %v", url, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitListening waits until something listens on addr, reading /proc/net/tcp rather than
// connecting: a probe before the server is up would be a real refused connection, and Tapio
// would rightly report it.
func waitListening(ctx context.Context, addr string, timeout time.Duration) error {
	_, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return err
	}
	want := fmt.Sprintf(":%04X ", port)
	deadline := time.Now().Add(timeout)
	for {
		raw, err := os.ReadFile("/proc/net/tcp")
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(raw), "\n")[1:] {
			fields := strings.Fields(line)
			// local_address is the second field, st the fourth; 0A is TCP_LISTEN.
			if len(fields) > 3 && strings.HasSuffix(fields[1]+" ", want) && fields[3] == "0A" {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s after %s", addr, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
