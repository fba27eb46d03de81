package impactexporter

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	"github.com/yairfalse/tapio/exporter/impactexporter/internal/metadata"
	ue "github.com/yairfalse/tapio/pkg/unifiedevent"
)

func TestMain(m *testing.M) {
	records, err := loadScenarioRecords()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	scenarioRecords = records
	goleak.VerifyTestMain(m)
}

// scenarioRecordsDir holds, as OTLP/JSON logs, the records the correlation connector emitted for
// its test scenarios (its scenario test writes them; `make generate` refreshes them). The tests
// here read the real connector's output without importing the connector.
var scenarioRecordsDir = filepath.Join("..", "..", "testdata", "correlation-records")

// scenarioLogs returns a scenario's records exactly as the connector emitted them.
func scenarioLogs(t testing.TB, scenario string) plog.Logs {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(scenarioRecordsDir, scenario+".json"))
	if err != nil {
		t.Fatal(err)
	}
	ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(raw)
	if err != nil {
		t.Fatalf("%s: %v", scenario, err)
	}
	return ld
}

// scenarioRecords are the records of every scenario, in the order the connector emitted them,
// read with the schema's codec.
var scenarioRecords map[string][]ue.CorrelationRecord

func loadScenarioRecords() (map[string][]ue.CorrelationRecord, error) {
	paths, err := filepath.Glob(filepath.Join(scenarioRecordsDir, "*.json"))
	if err != nil || len(paths) == 0 {
		return nil, fmt.Errorf("no correlation records in %s (%v): run make generate", scenarioRecordsDir, err)
	}
	out := map[string][]ue.CorrelationRecord{}
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		name := strings.TrimSuffix(filepath.Base(p), ".json")
		for _, rec := range logRecords(ld) {
			r, err := ue.ReadCorrelationRecord(rec)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			out[name] = append(out[name], r)
		}
	}
	return out, nil
}

func logRecords(ld plog.Logs) []plog.LogRecord {
	var out []plog.LogRecord
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		sls := ld.ResourceLogs().At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			for k := 0; k < sls.At(j).LogRecords().Len(); k++ {
				out = append(out, sls.At(j).LogRecords().At(k))
			}
		}
	}
	return out
}

// scenarioRecord returns a copy, free to change, of the last record of a scenario.
func scenarioRecord(scenario string) ue.CorrelationRecord {
	recs := scenarioRecords[scenario]
	if len(recs) == 0 {
		panic("no correlation records for scenario " + scenario)
	}
	r := recs[len(recs)-1]
	r.Chain = slices.Clone(r.Chain)
	r.TraceIDs = slices.Clone(r.TraceIDs)
	r.Services = slices.Clone(r.Services)
	r.MergedIDs = slices.Clone(r.MergedIDs)
	r.Recommendations = slices.Clone(r.Recommendations)
	return r
}

// oomChain is the connector's record for its oom_chain scenario: a kernel OOM kill of ledger-db
// refuses payment's connections, and two checkout requests fail with HTTP 500. The connector
// emitted it at 03:00:15, 5 s after the OOM kill.
func oomChain() ue.CorrelationRecord { return scenarioRecord("oom_chain") }

const (
	traceA = "11111111111111111111111111111111"
	traceB = "22222222222222222222222222222222"
)

// appendRecord writes r with the schema's codec as a record of its own resource in ld.
func appendRecord(ld plog.Logs, r ue.CorrelationRecord) plog.LogRecord {
	sl := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
	ue.MarkScope(sl.Scope())
	rec := sl.LogRecords().AppendEmpty()
	ue.WriteCorrelationRecord(rec, &r)
	return rec
}

func logsOf(rs ...ue.CorrelationRecord) plog.Logs {
	ld := plog.NewLogs()
	for _, r := range rs {
		appendRecord(ld, r)
	}
	return ld
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

func consume(t testing.TB, e *impactExporter, rs ...ue.CorrelationRecord) {
	t.Helper()
	if err := e.consumeLogs(context.Background(), logsOf(rs...)); err != nil {
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
