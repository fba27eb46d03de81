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
	"go.opentelemetry.io/collector/config/configretry"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/yairfalse/tapio/pkg/impactapi"
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

// webhookConfig posts to url and retries without jitter: 20 ms, 40 ms, 40 ms… for ten seconds.
func webhookConfig(t *testing.T, url string) *Config {
	cfg := testConfig(t)
	cfg.Notifications.Webhook.Endpoint = url
	cfg.Notifications.Webhook.RetryOnFailure = configretry.BackOffConfig{Enabled: true,
		InitialInterval: 20 * time.Millisecond, Multiplier: 2, MaxInterval: 40 * time.Millisecond,
		MaxElapsedTime: 10 * time.Second}
	return cfg
}

// gaps are the times between the webhook's requests.
func (f *flakyWebhook) gaps() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	var gaps []time.Duration
	for i := 1; i < len(f.times); i++ {
		gaps = append(gaps, f.times[i].Sub(f.times[i-1]))
	}
	return gaps
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
	got := hook.got
	hook.mu.Unlock()
	if len(got) != 1 || got[0].Type != "created" || got[0].Incident.ID != "correlation-1" {
		t.Fatalf("webhook received %+v", got)
	}
	// Backoff: 20ms, 40ms, 40ms (capped) between the four attempts.
	assertGaps(t, hook.gaps(), 20*time.Millisecond, 40*time.Millisecond, 40*time.Millisecond)
}

// assertGaps checks that request gaps are at least the backoff delays, one gap per delay.
func assertGaps(t *testing.T, gaps []time.Duration, delays ...time.Duration) {
	t.Helper()
	if len(gaps) != len(delays) {
		t.Fatalf("%d gaps between requests (%v), want %d", len(gaps), gaps, len(delays))
	}
	for i, want := range delays {
		if gaps[i] < want {
			t.Errorf("gap %d = %s, want at least %s", i, gaps[i], want)
		}
	}
}

// Retries stop once the next one would start after max_elapsed_time: with 100 ms, 200 ms, 200 ms…
// and 400 ms, the third attempt starts at 300 ms and a fourth would at 500 ms. Each bound has
// 100 ms of room for the requests themselves.
func TestWebhookGivesUpAfterMaxElapsedTime(t *testing.T) {
	hook := &flakyWebhook{failures: 100}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	tel := componenttest.NewTelemetry()
	defer func() { _ = tel.Shutdown(t.Context()) }()
	cfg := webhookConfig(t, srv.URL)
	cfg.Notifications.Webhook.RetryOnFailure = configretry.BackOffConfig{Enabled: true,
		InitialInterval: 100 * time.Millisecond, Multiplier: 2, MaxInterval: 200 * time.Millisecond,
		MaxElapsedTime: 400 * time.Millisecond}
	e := startExporter(t, cfg, nil, tel)
	consume(t, e, oomChain())
	waitFor(t, "give up", func() bool { return counterValue(t, tel, "otelcol_exporter_impact_notifications_failed") == 1 })
	if hook.calls.Load() != 3 || counterValue(t, tel, "otelcol_exporter_impact_notifications_retried") != 2 {
		t.Fatalf("calls = %d, retried = %d, want 3 and 2", hook.calls.Load(), counterValue(t, tel, "otelcol_exporter_impact_notifications_retried"))
	}
	assertGaps(t, hook.gaps(), 100*time.Millisecond, 200*time.Millisecond)
}

func TestWebhookRetryDisabledTriesOnce(t *testing.T) {
	hook := &flakyWebhook{failures: 1}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	tel := componenttest.NewTelemetry()
	defer func() { _ = tel.Shutdown(t.Context()) }()
	cfg := webhookConfig(t, srv.URL)
	cfg.Notifications.Webhook.RetryOnFailure.Enabled = false
	e := startExporter(t, cfg, nil, tel)
	consume(t, e, oomChain())
	waitFor(t, "failure", func() bool { return counterValue(t, tel, "otelcol_exporter_impact_notifications_failed") == 1 })
	if hook.calls.Load() != 1 || counterValue(t, tel, "otelcol_exporter_impact_notifications_retried") != 0 {
		t.Fatalf("calls = %d with retry_on_failure disabled, want 1", hook.calls.Load())
	}
}

// A configuration with the deprecated keys keeps their schedule: max_attempts attempts, the delay
// doubling from initial_interval. The webhook fails throughout: three attempts, 100 ms then 200 ms
// apart, and no fourth (its delay, 400 ms, would end past the budget of 300 ms + 400 ms / 2).
func TestWebhookDeprecatedKeysKeepTheirSchedule(t *testing.T) {
	hook := &flakyWebhook{failures: 100}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	tel := componenttest.NewTelemetry()
	defer func() { _ = tel.Shutdown(t.Context()) }()
	core, logs := observer.New(zap.WarnLevel)
	cfg := testConfig(t)
	wh := &cfg.Notifications.Webhook
	wh.Endpoint = srv.URL
	attempts, initial, maxInterval := 3, 100*time.Millisecond, time.Second
	wh.MaxAttempts, wh.InitialInterval, wh.MaxInterval = &attempts, &initial, &maxInterval
	e := startExporter(t, cfg, nil, tel, func(e *impactExporter) { e.set.Logger = zap.New(core) })
	consume(t, e, oomChain())
	waitFor(t, "give up", func() bool { return counterValue(t, tel, "otelcol_exporter_impact_notifications_failed") == 1 })
	if hook.calls.Load() != 3 {
		t.Fatalf("calls = %d, want max_attempts = 3", hook.calls.Load())
	}
	assertGaps(t, hook.gaps(), 100*time.Millisecond, 200*time.Millisecond)

	// One warning per deprecated key, at start, naming it and its replacement.
	for _, k := range []struct{ key, replacement string }{
		{"max_attempts", "retry_on_failure.max_elapsed_time"},
		{"initial_interval", "retry_on_failure.initial_interval"},
		{"max_interval", "retry_on_failure.max_interval"},
	} {
		found := logs.FilterField(zap.String("deprecated", "notifications.webhook."+k.key)).All()
		if len(found) != 1 {
			t.Fatalf("%d warnings about %s, want 1: %v", len(found), k.key, logs.All())
		}
		want := "notifications.webhook." + k.key + " is deprecated and will be removed in the next release: use notifications.webhook." + k.replacement +
			" (this configuration's retries read as retry_on_failure: {initial_interval: 100ms, multiplier: 2, randomization_factor: 0, max_interval: 500ms, max_elapsed_time: 500ms})"
		if found[0].Message != want || found[0].Level != zap.WarnLevel {
			t.Errorf("warning\n%s\nwant\n%s", found[0].Message, want)
		}
	}
	if err := e.start(t.Context(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	if n := logs.FilterMessageSnippet("is deprecated").Len(); n != 3 {
		t.Fatalf("%d deprecation warnings after a second start, want 3", n)
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
