package impactexporter

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/yairfalse/tapio/exporter/impactexporter/impactapi"
)

// flakyWebhook fails the first `failures` requests with 503, then accepts.
type flakyWebhook struct {
	failures int32
	calls    atomic.Int32
	mu       sync.Mutex
	got      []impactapi.StreamEvent
	times    []time.Time
	status   int // answer after the failures; 200 when 0
}

func (f *flakyWebhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := f.calls.Add(1)
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.times = append(f.times, time.Now())
	f.mu.Unlock()
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if n <= f.failures {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if f.status != 0 {
		w.WriteHeader(f.status)
		return
	}
	var ev impactapi.StreamEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.got = append(f.got, ev)
	f.mu.Unlock()
}

func webhookConfig(t *testing.T, url string) *Config {
	cfg := testConfig(t)
	cfg.Notifications.Webhook.Endpoint = url
	cfg.Notifications.Webhook.InitialInterval = 20 * time.Millisecond
	cfg.Notifications.Webhook.MaxInterval = 40 * time.Millisecond
	cfg.Notifications.Webhook.MaxAttempts = 5
	return cfg
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWebhookRetriesWithBackoffUntilDelivered(t *testing.T) {
	hook := &flakyWebhook{failures: 3}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	tel := componenttest.NewTelemetry()
	defer func() { _ = tel.Shutdown(t.Context()) }()
	e := startExporter(t, webhookConfig(t, srv.URL), nil, tel)

	consume(t, e, oomChain())
	waitFor(t, "delivery", func() bool { return counterValue(t, tel, "otelcol_exporter_impact_notifications_sent") == 1 })
	if got := counterValue(t, tel, "otelcol_exporter_impact_notifications_retried"); got != 3 {
		t.Fatalf("retried = %d, want 3", got)
	}
	if got := counterValue(t, tel, "otelcol_exporter_impact_notifications_failed"); got != 0 {
		t.Fatalf("failed = %d, want 0", got)
	}
	hook.mu.Lock()
	defer hook.mu.Unlock()
	if len(hook.got) != 1 || hook.got[0].Type != "created" || hook.got[0].Incident.ID != "correlation-1" {
		t.Fatalf("webhook received %+v", hook.got)
	}
	// Backoff: 20ms, 40ms, 40ms (capped) between the four attempts.
	for i, want := range []time.Duration{20 * time.Millisecond, 40 * time.Millisecond, 40 * time.Millisecond} {
		if gap := hook.times[i+1].Sub(hook.times[i]); gap < want {
			t.Errorf("gap %d = %s, want at least %s", i, gap, want)
		}
	}
}

func TestWebhookGivesUpAndCounts(t *testing.T) {
	hook := &flakyWebhook{failures: 100}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	tel := componenttest.NewTelemetry()
	defer func() { _ = tel.Shutdown(t.Context()) }()
	cfg := webhookConfig(t, srv.URL)
	cfg.Notifications.Webhook.MaxAttempts = 3
	e := startExporter(t, cfg, nil, tel)
	consume(t, e, oomChain())
	waitFor(t, "give up", func() bool { return counterValue(t, tel, "otelcol_exporter_impact_notifications_failed") == 1 })
	if hook.calls.Load() != 3 {
		t.Fatalf("calls = %d, want 3", hook.calls.Load())
	}
}

func TestWebhookDoesNotRetryARefusal(t *testing.T) {
	hook := &flakyWebhook{status: http.StatusUnprocessableEntity}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	tel := componenttest.NewTelemetry()
	defer func() { _ = tel.Shutdown(t.Context()) }()
	e := startExporter(t, webhookConfig(t, srv.URL), nil, tel)
	consume(t, e, oomChain())
	waitFor(t, "failure", func() bool { return counterValue(t, tel, "otelcol_exporter_impact_notifications_failed") == 1 })
	if hook.calls.Load() != 1 || counterValue(t, tel, "otelcol_exporter_impact_notifications_retried") != 0 {
		t.Fatalf("calls = %d, a 422 must not be retried", hook.calls.Load())
	}
}

func TestWebhookNotifiesCreationAndSeverityChangesOnly(t *testing.T) {
	hook := &flakyWebhook{}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	tel := componenttest.NewTelemetry()
	defer func() { _ = tel.Shutdown(t.Context()) }()
	cfg := webhookConfig(t, srv.URL)
	cfg.Impact.CustomerFacing.Services = []string{"checkout"}
	e := startExporter(t, cfg, nil, tel)

	v1 := oomChain()
	consume(t, e, v1)
	v2 := oomChain() // same chain, same severity: not notified
	v2.Version = 2
	consume(t, e, v2)
	v3 := oomChain() // the checkout spans are gone: no longer customer-facing, lower severity
	v3.Version = 3
	v3.Chain = v3.Chain[:4]
	v3.Services = []string{"ledger-db", "payment"}
	consume(t, e, v3)
	waitFor(t, "two deliveries", func() bool { return counterValue(t, tel, "otelcol_exporter_impact_notifications_sent") == 2 })
	time.Sleep(50 * time.Millisecond)
	hook.mu.Lock()
	defer hook.mu.Unlock()
	if len(hook.got) != 2 || hook.got[0].Incident.Version != 1 || hook.got[1].Incident.Version != 3 ||
		hook.got[0].Incident.Severity == hook.got[1].Incident.Severity {
		t.Fatalf("notified %+v", hook.got)
	}
}

func TestWebhookQueueIsBounded(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	tel := componenttest.NewTelemetry()
	defer func() { _ = tel.Shutdown(t.Context()) }()
	cfg := webhookConfig(t, srv.URL)
	cfg.Notifications.Webhook.QueueSize = 2
	e := startExporter(t, cfg, nil, tel)
	for i := range 6 {
		c := oomChain()
		c.ID = "c" + string(rune('a'+i))
		consume(t, e, c)
	}
	// One in flight, two queued, the rest dropped: at least 3 of 6.
	if got := counterValue(t, tel, "otelcol_exporter_impact_notifications_dropped"); got < 3 {
		t.Fatalf("dropped = %d, want ≥ 3", got)
	}
}

func TestLogSummary(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	cfg := testConfig(t)
	businessConfig(cfg)
	cfg.Notifications.LogSummary = LogSummaryConfig{Enabled: true, MinSeverity: "HIGH"}
	e := startExporter(t, cfg, nil, nil, func(e *impactExporter) { e.set.Logger = zap.New(core) })
	consume(t, e, oomChain())
	found := logs.FilterMessageSnippet("New incident correlation-1").All()
	if len(found) != 1 {
		t.Fatalf("summaries: %v", logs.All())
	}
	want := "New incident correlation-1: CRITICAL (score 0.80). Root cause: Kernel OOM killer killed postgres (pid 4242): memory cgroup limit 64 MiB reached. Revenue at risk: 85 EUR. Failed transactions: 2. Affected users: 2. Services: ledger-db, payment, checkout. Do now: Raise the memory limit of the killed container (or restart it with more headroom) to restore service."
	if found[0].Message != want {
		t.Fatalf("summary\n%s\nwant\n%s", found[0].Message, want)
	}
}
