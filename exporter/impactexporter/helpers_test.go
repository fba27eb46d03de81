package impactexporter

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	"github.com/yairfalse/tapio/exporter/impactexporter/internal/metadata"
	ue "github.com/yairfalse/tapio/pkg/unifiedevent"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// chainEntry describes one chain entry of a test correlation record.
type chainEntry struct {
	time, layer, name, entity, narrative, eventID string
	traceID, spanID, kind, service, route         string
	status                                        int64
	endUser, user, session                        string
	reason, cause                                 string
	confidence                                    float64
}

// correlation describes a test correlation record (design section 4).
type correlation struct {
	id                                string
	version                           int64
	confidence                        float64
	rootEventID, rootName, rootEntity string
	rootNarrative, body               string
	firstSeen, lastSeen               string
	observed                          time.Time
	chain                             []chainEntry
	traces, services, merged          []string
	recommendations                   [][2]string // horizon, action
}

func (c correlation) appendTo(ld plog.Logs) {
	sl := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
	sl.Scope().Attributes().PutInt(ue.KeySchemaVersion, ue.SchemaVersion)
	rec := sl.LogRecords().AppendEmpty()
	a := rec.Attributes()
	a.PutStr(ue.KeyEventName, string(ue.CorrelationName))
	a.PutStr(ue.KeyCorrelationID, c.id)
	a.PutInt(ue.KeyCorrelationVersion, c.version)
	if c.confidence > 0 {
		a.PutDouble(ue.KeyCorrelationConfidence, c.confidence)
	}
	a.PutStr(ue.KeyRootCauseEventID, c.rootEventID)
	a.PutStr(ue.KeyRootCauseEventName, c.rootName)
	a.PutStr(ue.KeyRootCauseEntityID, c.rootEntity)
	a.PutStr(ue.KeyRootCauseNarrative, c.rootNarrative)
	a.PutInt(ue.KeyCorrelationEventCount, int64(len(c.chain)))
	if c.firstSeen != "" {
		a.PutStr(ue.KeyCorrelationFirstSeen, c.firstSeen)
	}
	if c.lastSeen != "" {
		a.PutStr(ue.KeyCorrelationLastSeen, c.lastSeen)
	}
	chain := a.PutEmptySlice(ue.KeyCorrelationChain)
	for _, e := range c.chain {
		m := chain.AppendEmpty().SetEmptyMap()
		m.PutStr(ue.ChainKeyTime, e.time)
		m.PutStr(ue.KeyLayer, e.layer)
		m.PutStr(ue.KeyEventName, e.name)
		m.PutStr(ue.KeyEntityID, e.entity)
		m.PutStr(ue.ChainKeyNarrative, e.narrative)
		m.PutStr(ue.KeyEventID, e.eventID)
		putIf := func(k, v string) {
			if v != "" {
				m.PutStr(k, v)
			}
		}
		putIf(ue.ChainKeyTraceID, e.traceID)
		putIf(ue.ChainKeySpanID, e.spanID)
		putIf(ue.ChainKeySpanKind, e.kind)
		putIf(ue.KeyServiceName, e.service)
		putIf(ue.KeyHTTPRoute, e.route)
		putIf(ue.KeyEndUserID, e.endUser)
		putIf(ue.KeyUserID, e.user)
		putIf(ue.KeySessionID, e.session)
		putIf(ue.ChainKeyLinkReason, e.reason)
		putIf(ue.ChainKeyLinkCause, e.cause)
		if e.status != 0 {
			m.PutInt(ue.KeyHTTPResponseStatusCode, e.status)
		}
		if e.confidence > 0 {
			m.PutDouble(ue.ChainKeyLinkConfidence, e.confidence)
		}
	}
	for _, kv := range []struct {
		key  string
		list []string
	}{{ue.KeyCorrelationTraceIDs, c.traces}, {ue.KeyCorrelationServices, c.services}, {ue.KeyCorrelationMergedIDs, c.merged}} {
		if kv.list == nil {
			continue
		}
		s := a.PutEmptySlice(kv.key)
		for _, v := range kv.list {
			s.AppendEmpty().SetStr(v)
		}
	}
	recs := a.PutEmptySlice(ue.KeyRecommendations)
	for _, r := range c.recommendations {
		m := recs.AppendEmpty().SetEmptyMap()
		m.PutStr(ue.RecommendationKeyHorizon, r[0])
		m.PutStr(ue.RecommendationKeyAction, r[1])
	}
	rec.Body().SetStr(c.body)
	rec.SetSeverityNumber(plog.SeverityNumberError)
	if !c.observed.IsZero() {
		rec.SetObservedTimestamp(pcommon.NewTimestampFromTime(c.observed))
	}
}

func logsOf(cs ...correlation) plog.Logs {
	ld := plog.NewLogs()
	for _, c := range cs {
		c.appendTo(ld)
	}
	return ld
}

const (
	traceA = "11111111111111111111111111111111"
	traceB = "22222222222222222222222222222222"
)

// oomChain is the correlation the connector emits for its oom_chain scenario: a kernel OOM kill
// of ledger-db refuses payment's connections, and two checkout requests fail with HTTP 500.
func oomChain() correlation {
	return correlation{
		id: "correlation-1", version: 1, confidence: 0.8,
		rootEventID: "000000000000000000000000000a0001", rootName: string(ue.OOMKill), rootEntity: "pod-ledger-db-0",
		rootNarrative: "Kernel OOM killer killed postgres (pid 4242): memory cgroup limit 64 MiB reached",
		body:          "Kernel OOM killer killed postgres (pid 4242): memory cgroup limit 64 MiB reached; root cause of 5 related events in ledger-db, payment, checkout (confidence 0.80)",
		firstSeen:     "2026-11-25T03:00:10Z", lastSeen: "2026-11-25T03:00:10.64Z",
		observed: time.Date(2026, 11, 25, 3, 0, 12, 500_000_000, time.UTC),
		chain: []chainEntry{
			{time: "2026-11-25T03:00:10Z", layer: "kernel", name: string(ue.OOMKill), entity: "pod-ledger-db-0",
				narrative: "Kernel OOM killer killed postgres (pid 4242): memory cgroup limit 64 MiB reached",
				eventID:   "000000000000000000000000000a0001", service: "ledger-db", reason: "root"},
			{time: "2026-11-25T03:00:10.5Z", layer: "network", name: string(ue.ConnectionRefused), entity: "pod-payment-1",
				narrative: "payment (pid 311) could not connect to 10.0.0.7:5432: connection refused",
				eventID:   "000000000000000000000000000a0002", service: "payment", reason: "peer", cause: "000000000000000000000000000a0001", confidence: 0.8},
			{time: "2026-11-25T03:00:10.55Z", layer: "trace", name: string(ue.DependencyError), entity: "pod-payment-1",
				narrative: "payment: CLIENT span INSERT ledger failed with connection refused after 90ms",
				eventID:   "000000000000000000000000000a0014", traceID: traceA, spanID: "1111111111110004", kind: "CLIENT",
				service: "payment", reason: "entity", cause: "000000000000000000000000000a0002", confidence: 0.9},
			{time: "2026-11-25T03:00:10.57Z", layer: "trace", name: string(ue.DependencyError), entity: "pod-payment-1",
				narrative: "payment: CLIENT span INSERT ledger failed with connection refused after 100ms",
				eventID:   "000000000000000000000000000a0024", traceID: traceB, spanID: "2222222222220004", kind: "CLIENT",
				service: "payment", reason: "entity", cause: "000000000000000000000000000a0014", confidence: 0.9},
			{time: "2026-11-25T03:00:10.62Z", layer: "trace", name: string(ue.ServerError), entity: "pod-checkout-1",
				narrative: "checkout: SERVER span POST /api/checkout failed with HTTP 500 after 220ms",
				eventID:   "000000000000000000000000000a0011", traceID: traceA, spanID: "1111111111110001", kind: "SERVER",
				service: "checkout", route: "/api/checkout", status: 500, endUser: "user-17",
				reason: "trace.parent", cause: "000000000000000000000000000a0014", confidence: 1},
			{time: "2026-11-25T03:00:10.64Z", layer: "trace", name: string(ue.ServerError), entity: "pod-checkout-1",
				narrative: "checkout: SERVER span POST /api/checkout failed with HTTP 500 after 220ms",
				eventID:   "000000000000000000000000000a0021", traceID: traceB, spanID: "2222222222220001", kind: "SERVER",
				service: "checkout", route: "/api/checkout", status: 500, endUser: "user-42", session: "sess-9",
				reason: "trace.parent", cause: "000000000000000000000000000a0024", confidence: 1},
		},
		traces:   []string{traceA, traceB},
		services: []string{"ledger-db", "payment", "checkout"},
		recommendations: [][2]string{
			{ue.HorizonImmediate, "Raise the memory limit of the killed container (or restart it with more headroom) to restore service."},
			{ue.HorizonShortTerm, "Find the leak or the unbounded cache: compare heap profiles before and after load; check recent deploys."},
			{ue.HorizonLongTerm, "Scale out and set requests/limits from observed peak usage; alert on memory utilisation before the limit."},
		},
	}
}

// testConfig is the default configuration on a free loopback port and a temporary directory.
func testConfig(t testing.TB) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.HTTP.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.Storage.Directory = t.TempDir()
	return cfg
}

// businessConfig configures every figure for the oom_chain scenario.
func businessConfig(cfg *Config) {
	cfg.Impact.CustomerFacing.Services = []string{"checkout"}
	cfg.Impact.Transactions = TransactionsConfig{
		Routes:              []RouteMatch{{Service: "checkout", Route: "/api/checkout"}},
		ValuePerTransaction: 42.5, Currency: "EUR",
	}
	cfg.Impact.SLOs = []SLOConfig{{Service: "checkout", Availability: 0.999, Window: 30 * 24 * time.Hour, ExpectedRequests: 1_000_000}}
}

type testHost struct {
	extensions map[component.ID]component.Component
}

func (h testHost) GetExtensions() map[component.ID]component.Component { return h.extensions }

// startExporter starts an exporter with cfg and stops it when the test ends.
func startExporter(t testing.TB, cfg *Config, host component.Host, tel *componenttest.Telemetry, opts ...func(*impactExporter)) *impactExporter {
	t.Helper()
	set := exportertest.NewNopSettings(metadata.Type)
	if tel != nil {
		set.TelemetrySettings = tel.NewTelemetrySettings()
	}
	e, err := newImpactExporter(set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range opts {
		o(e)
	}
	if host == nil {
		host = componenttest.NewNopHost()
	}
	if err := e.start(context.Background(), host); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return e
}

func consume(t testing.TB, e *impactExporter, cs ...correlation) {
	t.Helper()
	if err := e.consumeLogs(context.Background(), logsOf(cs...)); err != nil {
		t.Fatal(err)
	}
}

// getJSON fetches a URL and decodes the answer into out; it returns the status code.
func getJSON(t testing.TB, client *http.Client, url, token string, out any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil && len(body) > 0 {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s: %v in %s", url, err, body)
		}
	}
	return resp.StatusCode
}

// counterValue sums a counter's data points whose attributes include attrs; 0 when it was never
// recorded.
func counterValue(t testing.TB, tel *componenttest.Telemetry, name string, attrs ...attribute.KeyValue) int64 {
	t.Helper()
	m, err := tel.GetMetric(name)
	if err != nil {
		return 0
	}
	data, ok := m.Data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("%s is a %T, not an int64 sum", name, m.Data)
	}
	var total int64
	for _, dp := range data.DataPoints {
		match := true
		for _, kv := range attrs {
			if v, ok := dp.Attributes.Value(kv.Key); !ok || v != kv.Value {
				match = false
			}
		}
		if match {
			total += dp.Value
		}
	}
	return total
}

func mustUnmarshal(t testing.TB, raw []byte, out any) {
	t.Helper()
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("%v in %s", err, raw)
	}
}

func exportertestSettings() exporter.Settings { return exportertest.NewNopSettings(metadata.Type) }

// testClock is a settable clock, safe to read from the exporter's goroutines.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func withClock(c *testClock) func(*impactExporter) {
	return func(e *impactExporter) { e.now = c.Now }
}
