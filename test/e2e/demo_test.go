//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/yairfalse/tapio/demo/scenario"
	"github.com/yairfalse/tapio/internal/kerneltest"
	"github.com/yairfalse/tapio/pkg/impactapi"
	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

// demoValuePerCheckout is what demo/shop.yaml says one checkout is worth.
const demoValuePerCheckout = 49.90

// TestDemoStory is `make demo` as an acceptance test: the real kernel OOM-kills ledger-db, and
// Tapio must explain the failed checkouts from the kernel up, with figures that match what the
// load generator itself saw.
func TestDemoStory(t *testing.T) {
	if os.Geteuid() != 0 {
		kerneltest.SkipOrFail(t, "not root: the demo loads eBPF programs and uses a memory cgroup")
	}
	demoBin := os.Getenv("TAPIO_DEMO_BIN")
	if demoBin == "" {
		demoBin = filepath.Join(repoRoot(t), "_build", "demo")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	opts := scenario.Options{
		Collector:         collectorBinary(t),
		CollectorConfigs:  []string{filepath.Join(repoRoot(t), "distributions", "standalone", "config.yaml"), filepath.Join(repoRoot(t), "demo", "shop.yaml")},
		CollectorEnv:      []string{"TAPIO_DATA_DIR=" + t.TempDir()},
		HealthURL:         "http://127.0.0.1:13133/",
		OTLPEndpoint:      "127.0.0.1:4317",
		Checkout:          filepath.Join(demoBin, "checkout"),
		Payment:           filepath.Join(demoBin, "payment"),
		LedgerDB:          filepath.Join(demoBin, "ledger-db"),
		LedgerLimitBytes:  64 << 20,
		LeakBytes:         1 << 20,
		Users:             40,
		Rate:              20,
		FailuresAfterKill: 12,
		Progress:          func(p scenario.Phase, detail string) { t.Logf("[%s] %s", p, detail) },
	}
	stack, err := scenario.Start(ctx, opts)
	defer stack.Stop()
	if err != nil {
		t.Fatal(err)
	}
	res, err := stack.Drive(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	failed := res.Failures[0].TraceID
	client := &impactapi.Client{Endpoint: impactapi.DefaultEndpoint}

	// The incident is re-emitted as evidence keeps arriving; wait until it holds every failure.
	var inc *impactapi.Incident
	eventually(t, 60*time.Second, func() error {
		list, err := client.Incidents(ctx, impactapi.Query{TraceID: failed})
		if err != nil {
			return err
		}
		if len(list.Incidents) == 0 {
			return fmt.Errorf("no incident yet for trace %s", failed)
		}
		inc = &list.Incidents[0]
		if ft := inc.Impact.FailedTransactions; ft == nil || ft.Count != int64(len(res.Failures)) {
			return fmt.Errorf("failed transactions %+v, the load generator saw %d", ft, len(res.Failures))
		}
		return nil
	})

	if inc.RootCause.EventName != string(unifiedevent.OOMKill) {
		t.Fatalf("root cause %s (%s), want the kernel OOM kill", inc.RootCause.EventName, inc.RootCause.Narrative)
	}
	for _, want := range []string{"ledger-db", fmt.Sprintf("pid %d", res.LedgerPID), "64 MiB"} {
		if !strings.Contains(inc.RootCause.Narrative, want) {
			t.Errorf("root cause narrative %q lacks %q", inc.RootCause.Narrative, want)
		}
	}

	// The chain runs cause → effect: oom_kill → connection_refused (payment → ledger-db's port)
	// → dependency_error (payment) → server_error (checkout, HTTP 500).
	position := func(match func(impactapi.ChainEntry) bool) int {
		for i, e := range inc.Chain {
			if match(e) {
				return i
			}
		}
		return -1
	}
	oom := position(func(e impactapi.ChainEntry) bool { return e.EventName == string(unifiedevent.OOMKill) })
	refused := position(func(e impactapi.ChainEntry) bool {
		return e.EventName == string(unifiedevent.ConnectionRefused) && strings.Contains(e.Narrative, "payment") && strings.Contains(e.Narrative, ":15432")
	})
	dependency := position(func(e impactapi.ChainEntry) bool {
		return e.EventName == string(unifiedevent.DependencyError) && e.Service == "payment"
	})
	serverError := position(func(e impactapi.ChainEntry) bool {
		return e.EventName == string(unifiedevent.ServerError) && e.Service == "checkout" && e.HTTPStatusCode == 500
	})
	if !(oom == 0 && oom < refused && refused < dependency && dependency < serverError) {
		t.Errorf("chain order: oom_kill at %d, connection_refused at %d, dependency_error at %d, server_error at %d", oom, refused, dependency, serverError)
	}

	users := inc.Impact.AffectedUsers
	if users == nil || users.Count != int64(len(res.FailedUsers)) {
		t.Errorf("affected users %+v, the load generator's failed checkouts came from %d distinct users", users, len(res.FailedUsers))
	}
	revenue := inc.Impact.RevenueAtRisk
	want := float64(len(res.Failures)) * demoValuePerCheckout
	if revenue == nil || math.Abs(revenue.Amount-want) > 0.005 || revenue.Currency != "EUR" {
		t.Errorf("revenue at risk %+v, want %.2f EUR (%d failed checkouts × %.2f)", revenue, want, len(res.Failures), demoValuePerCheckout)
	}
	if inc.TimeToDetectionSeconds <= 0 {
		t.Errorf("time to detection %g", inc.TimeToDetectionSeconds)
	}
	if len(inc.Recommendations) == 0 {
		t.Error("no recommended actions")
	}
	t.Logf("incident %s v%d: %s", inc.ID, inc.Version, inc.Summary)
}
