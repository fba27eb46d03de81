package correlationconnector

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.yaml.in/yaml/v3"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

var update = flag.Bool("update", false, "rewrite the golden files of the scenarios")

// scenario is one test case given as OTLP data: steps move the fake clock, feed OTLP logs, traces or
// metrics (in OTLP/JSON's shape, written as YAML), or flush. ${+1.5s} in the file is the start
// time plus 1.5s, in unix nanoseconds.
type scenario struct {
	Description string         `yaml:"description"`
	Config      map[string]any `yaml:"config"`
	Steps       []struct {
		At      string         `yaml:"at"`
		Logs    map[string]any `yaml:"logs"`
		Traces  map[string]any `yaml:"traces"`
		Metrics map[string]any `yaml:"metrics"`
		Flush   bool           `yaml:"flush"`
	} `yaml:"steps"`
	Expect struct {
		Incidents int              `yaml:"incidents"`
		Records   int              `yaml:"records"`
		RootCause string           `yaml:"root_cause"`
		Roots     []string         `yaml:"roots"`
		Chain     []string         `yaml:"chain"`
		Links     []string         `yaml:"links"`
		TraceIDs  []string         `yaml:"trace_ids"`
		Versions  []int64          `yaml:"versions"`
		Ignored   map[string]int64 `yaml:"ignored"`
	} `yaml:"expect"`
}

var offsetPattern = regexp.MustCompile(`\$\{\+([0-9.]+[a-z]+)\}`)

func loadScenario(t *testing.T, path string) scenario {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := offsetPattern.ReplaceAllStringFunc(string(raw), func(m string) string {
		d, err := time.ParseDuration(offsetPattern.FindStringSubmatch(m)[1])
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		return strconv.FormatInt(scenarioStart.Add(d).UnixNano(), 10)
	})
	var s scenario
	if err := yaml.Unmarshal([]byte(text), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func scenarioConfig(t *testing.T, overrides map[string]any) *Config {
	cfg := defaultConfig()
	cfg.Shards = 2
	for k, v := range overrides {
		switch k {
		case "decision_wait":
			d, err := time.ParseDuration(v.(string))
			if err != nil {
				t.Fatal(err)
			}
			cfg.DecisionWait = d
		default:
			t.Fatalf("scenario config %q is not supported by the runner", k)
		}
	}
	return cfg
}

func asJSON(t *testing.T, v map[string]any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func runScenario(t *testing.T, s scenario) *harness {
	h := newHarness(t, scenarioConfig(t, s.Config))
	ctx := context.Background()
	for i, step := range s.Steps {
		d, err := time.ParseDuration(step.At)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		h.clock.Set(scenarioStart.Add(d))
		if step.Logs != nil {
			ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(asJSON(t, step.Logs))
			if err != nil {
				t.Fatalf("step %d logs: %v", i, err)
			}
			if err := h.c.consumeLogs(ctx, ld); err != nil {
				t.Fatal(err)
			}
		}
		if step.Traces != nil {
			td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(asJSON(t, step.Traces))
			if err != nil {
				t.Fatalf("step %d traces: %v", i, err)
			}
			if err := h.c.consumeTraces(ctx, td); err != nil {
				t.Fatal(err)
			}
		}
		if step.Metrics != nil {
			md, err := (&pmetric.JSONUnmarshaler{}).UnmarshalMetrics(asJSON(t, step.Metrics))
			if err != nil {
				t.Fatalf("step %d metrics: %v", i, err)
			}
			if err := h.c.consumeMetrics(ctx, md); err != nil {
				t.Fatal(err)
			}
		}
		if step.Flush {
			h.flush()
		}
	}
	return h
}

// idAliases replaces correlation ids, which are random, by their order of first appearance, so
// that golden files are stable.
type idAliases map[string]string

func (a idAliases) of(id string) string {
	if alias, ok := a[id]; ok {
		return alias
	}
	a[id] = "correlation-" + strconv.Itoa(len(a)+1)
	return a[id]
}

// renderGolden renders the emitted records with correlation ids aliased, so the golden file is
// stable.
func renderGolden(t *testing.T, recs []plog.LogRecord) []byte {
	ids := idAliases{}
	var out []map[string]any
	for _, rec := range recs {
		attrs := rec.Attributes().AsRaw()
		attrs[unifiedevent.KeyCorrelationID] = ids.of(attrs[unifiedevent.KeyCorrelationID].(string))
		if merged, ok := attrs[unifiedevent.KeyCorrelationMergedIDs].([]any); ok {
			for i, id := range merged {
				merged[i] = ids.of(id.(string))
			}
		}
		out = append(out, map[string]any{
			"timestamp":  rec.Timestamp().AsTime().Format(time.RFC3339Nano),
			"trace_id":   rec.TraceID().String(),
			"severity":   rec.SeverityText(),
			"body":       rec.Body().AsString(),
			"attributes": attrs,
		})
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// correlationRecordsDir holds every scenario's records as OTLP/JSON logs, exactly as the connector
// emitted them but for the aliased ids: the impact exporter's tests read them, so that both halves
// of the record contract are tested on the same records.
var correlationRecordsDir = filepath.Join("..", "..", "testdata", "correlation-records")

// renderRecords renders everything the connector emitted, one resource per emitted batch, as
// OTLP/JSON with correlation ids aliased as renderGolden does. Observed timestamps come from the
// harness's fake clock, so they are stable too.
func renderRecords(t *testing.T, h *harness) []byte {
	ld := plog.NewLogs()
	for _, emitted := range h.out.AllLogs() {
		for i := 0; i < emitted.ResourceLogs().Len(); i++ {
			emitted.ResourceLogs().At(i).CopyTo(ld.ResourceLogs().AppendEmpty())
		}
	}
	ids := idAliases{}
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			recs := sls.At(j).LogRecords()
			for k := 0; k < recs.Len(); k++ {
				attrs := recs.At(k).Attributes()
				attrs.PutStr(unifiedevent.KeyCorrelationID, ids.of(str(attrs, unifiedevent.KeyCorrelationID)))
				if merged, ok := attrs.Get(unifiedevent.KeyCorrelationMergedIDs); ok {
					for m := 0; m < merged.Slice().Len(); m++ {
						id := merged.Slice().At(m)
						id.SetStr(ids.of(id.Str()))
					}
				}
			}
		}
	}
	raw, err := (&plog.JSONMarshaler{}).MarshalLogs(ld)
	if err != nil {
		t.Fatal(err)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, raw, "", "  "); err != nil {
		t.Fatal(err)
	}
	pretty.WriteByte('\n')
	return pretty.Bytes()
}

// checkGolden compares got with the file at path, or with -update rewrites the file.
func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run make generate to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("records differ from %s (run make generate after checking the change):\n%s", path, got)
	}
}

func TestScenarios(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "scenarios", "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, path := range paths {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		t.Run(name, func(t *testing.T) {
			s := loadScenario(t, path)
			h := runScenario(t, s)
			recs := h.records()
			checkExpectations(t, h, s, recs)

			checkGolden(t, strings.TrimSuffix(path, ".yaml")+".golden.json", renderGolden(t, recs))
			checkGolden(t, filepath.Join(correlationRecordsDir, name+".json"), renderRecords(t, h))
		})
	}
	// A golden record whose scenario is gone would still be read by the exporter's tests.
	records, err := filepath.Glob(filepath.Join(correlationRecordsDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range records {
		scenario := filepath.Join("testdata", "scenarios", strings.TrimSuffix(filepath.Base(r), ".json")+".yaml")
		if !slices.Contains(paths, scenario) {
			t.Errorf("%s has no scenario %s: delete it", r, scenario)
		}
	}
}

func checkExpectations(t *testing.T, h *harness, s scenario, recs []plog.LogRecord) {
	t.Helper()
	e := s.Expect
	if len(recs) != e.Records {
		t.Fatalf("%d records emitted, want %d", len(recs), e.Records)
	}
	ids := map[string]bool{}
	var roots []string
	for _, r := range recs {
		ids[str(r.Attributes(), unifiedevent.KeyCorrelationID)] = true
		roots = append(roots, str(r.Attributes(), unifiedevent.KeyRootCauseEventName))
		if str(r.Attributes(), unifiedevent.KeyEventName) != string(unifiedevent.CorrelationName) {
			t.Errorf("record event.name = %q", str(r.Attributes(), unifiedevent.KeyEventName))
		}
	}
	if len(ids) != e.Incidents {
		t.Errorf("%d incidents, want %d", len(ids), e.Incidents)
	}
	if e.Roots != nil {
		slices.Sort(roots)
		if !slices.Equal(roots, e.Roots) {
			t.Errorf("root causes %v, want %v", roots, e.Roots)
		}
	}
	last := recs[len(recs)-1]
	if e.RootCause != "" {
		if got := str(last.Attributes(), unifiedevent.KeyRootCauseEventName); got != e.RootCause {
			t.Errorf("root cause %q, want %q", got, e.RootCause)
		}
		if names := chainNames(last); len(names) == 0 || names[0] != e.RootCause {
			t.Errorf("the chain must start with the root cause: %v", names)
		}
	}
	if e.Chain != nil {
		if got := chainNames(last); !slices.Equal(got, e.Chain) {
			t.Errorf("chain %v\nwant  %v", got, e.Chain)
		}
	}
	if e.Links != nil {
		if got := chainField(last, unifiedevent.ChainKeyLinkReason); !slices.Equal(got, e.Links) {
			t.Errorf("links %v, want %v", got, e.Links)
		}
	}
	if e.TraceIDs != nil {
		if got := sliceOf(last, unifiedevent.KeyCorrelationTraceIDs); !slices.Equal(got, e.TraceIDs) {
			t.Errorf("trace ids %v, want %v", got, e.TraceIDs)
		}
	}
	if e.Versions != nil {
		var got []int64
		for _, r := range recs {
			v, _ := r.Attributes().Get(unifiedevent.KeyCorrelationVersion)
			got = append(got, v.Int())
		}
		if !slices.Equal(got, e.Versions) {
			t.Errorf("versions %v, want %v", got, e.Versions)
		}
	}
	for reason, want := range e.Ignored {
		if got := h.counter(t, "otelcol_connector_correlation_records_ignored", "reason", reason); got != want {
			t.Errorf("ignored %s = %d, want %d", reason, got, want)
		}
	}
}
