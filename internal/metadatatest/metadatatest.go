// Package metadatatest holds each component's metadata.yaml and its hand-written internal/metadata
// to each other.
//
// In contrib, metadata.yaml is the source: a "go:generate mdatagen metadata.yaml" directive in the
// component's doc.go regenerates internal/metadata from it. mdatagen is not served to this
// project, so internal/metadata is written by hand in the shape mdatagen generates, and doc.go
// carries no such directive: go generate (which make generate and make check-generated run) would
// fail on the missing tool, and a directive that quietly skips itself when the tool is missing
// would make the tree depend on what happens to be installed. Instead, a test in each
// internal/metadata package calls Check, which fails when metadata.yaml and the Go disagree on the
// type, the stability of each signal, or any self-telemetry metric (name, description, unit,
// instrument kind, value type).
package metadatatest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.yaml.in/yaml/v3"
)

// Component is what a hand-written internal/metadata package declares.
type Component struct {
	Type      component.Type
	ScopeName string
	// Stability maps each signal, spelled as in metadata.yaml (logs, traces_to_logs), to the
	// package's stability constant for it.
	Stability map[string]component.StabilityLevel
}

// Check fails t when the metadata.yaml at path disagrees with c and with the instruments that
// newBuilder creates. It records one value on every exported instrument of the builder, collects
// them, and compares each with its metadata.yaml entry, in both directions.
func Check[B any](t *testing.T, path string, c Component, newBuilder func(component.TelemetrySettings) (*B, error)) {
	t.Helper()
	md, err := load(path)
	if err != nil {
		t.Fatal(err)
	}
	checkStatus(t, path, md, c)

	tel := componenttest.NewTelemetry()
	defer func() { _ = tel.Shutdown(context.Background()) }()
	builder, err := newBuilder(tel.NewTelemetrySettings())
	if err != nil {
		t.Fatalf("NewTelemetryBuilder: %v", err)
	}
	if s, ok := any(builder).(interface{ Shutdown() }); ok {
		defer s.Shutdown()
	}
	instruments := recordOnEveryInstrument(t, builder)
	var rm metricdata.ResourceMetrics
	if err := tel.Reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	collected := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sm.Scope.Name != c.ScopeName {
				t.Errorf("%s is recorded under scope %q, want %q", m.Name, sm.Scope.Name, c.ScopeName)
			}
			collected[m.Name] = m
		}
	}
	if len(collected) != instruments {
		t.Errorf("the builder has %d instruments but they produced %d metrics: two share a name", instruments, len(collected))
	}
	checkTelemetry(t, md, collected)
}

// metadata is the part of mdatagen's metadata.yaml schema this project uses. Decoding is strict,
// so a key outside it (or a misspelt one) fails the test instead of being ignored.
type metadata struct {
	Type      string `yaml:"type"`
	ScopeName string `yaml:"scope_name"`
	Status    struct {
		Class     string              `yaml:"class"`
		Stability map[string][]string `yaml:"stability"`
		Warnings  []string            `yaml:"warnings"`
	} `yaml:"status"`
	Attributes map[string]attribute `yaml:"attributes"`
	Telemetry  struct {
		Metrics map[string]telemetryMetric `yaml:"metrics"`
	} `yaml:"telemetry"`

	dir, module, moduleDir string
}

type attribute struct {
	Description string `yaml:"description"`
	Type        string `yaml:"type"`
	// NameOverride is the attribute's key when it differs from the entry's name: two metrics
	// may use one key with different meanings and values.
	NameOverride string `yaml:"name_override"`
	// Enum lists the values a string attribute takes.
	Enum []string `yaml:"enum"`
}

type telemetryMetric struct {
	Enabled     bool   `yaml:"enabled"`
	Description string `yaml:"description"`
	Unit        string `yaml:"unit"`
	Stability   struct {
		Level string `yaml:"level"`
	} `yaml:"stability"`
	Sum        *instrument `yaml:"sum"`
	Gauge      *instrument `yaml:"gauge"`
	Histogram  *instrument `yaml:"histogram"`
	Attributes []string    `yaml:"attributes"`
}

type instrument struct {
	ValueType string `yaml:"value_type"`
	Monotonic bool   `yaml:"monotonic"`
	Async     bool   `yaml:"async"`
}

func load(path string) (*metadata, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var md metadata
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&md); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if md.dir, err = filepath.Abs(filepath.Dir(path)); err != nil {
		return nil, err
	}
	md.module, md.moduleDir, err = enclosingModule(md.dir)
	return &md, err
}

// enclosingModule finds the go.mod above dir and returns its module path and directory.
func enclosingModule(dir string) (string, string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		f, err := os.Open(filepath.Join(d, "go.mod"))
		if err == nil {
			defer f.Close()
			lines := bufio.NewScanner(f)
			for lines.Scan() {
				if mod, ok := strings.CutPrefix(strings.TrimSpace(lines.Text()), "module "); ok {
					return strings.TrimSpace(mod), d, nil
				}
			}
			return "", "", fmt.Errorf("%s/go.mod has no module line", d)
		}
		if filepath.Dir(d) == d {
			return "", "", fmt.Errorf("no go.mod above %s", dir)
		}
	}
}

func checkStatus(t *testing.T, path string, md *metadata, c Component) {
	t.Helper()
	if md.Type != c.Type.String() {
		t.Errorf("%s: type %q, the Go declares %q", path, md.Type, c.Type)
	}
	rel, err := filepath.Rel(md.moduleDir, md.dir)
	if err != nil {
		t.Fatal(err)
	}
	rel = filepath.ToSlash(rel)
	// mdatagen's default scope is the component's import path.
	scope := md.ScopeName
	if scope == "" {
		scope = md.module + "/" + rel
	}
	if scope != c.ScopeName {
		t.Errorf("%s: scope %q, the Go declares %q", path, scope, c.ScopeName)
	}
	// The repository is laid out by class: receiver/, processor/, connector/, exporter/.
	if class, _, _ := strings.Cut(rel, "/"); md.Status.Class != class {
		t.Errorf("%s: status.class %q for a component under %s/", path, md.Status.Class, class)
	}
	declared := map[string]component.StabilityLevel{}
	for level, signals := range md.Status.Stability {
		var l component.StabilityLevel
		if err := l.UnmarshalText([]byte(level)); err != nil || l == component.StabilityLevelUndefined {
			t.Errorf("%s: %q is not a stability level", path, level)
			continue
		}
		for _, signal := range signals {
			if _, twice := declared[signal]; twice {
				t.Errorf("%s: %s is listed under two stability levels", path, signal)
			}
			declared[signal] = l
		}
	}
	for signal, want := range c.Stability {
		if got, ok := declared[signal]; !ok {
			t.Errorf("%s: no stability for %s, which the Go declares %s", path, signal, want)
		} else if got != want {
			t.Errorf("%s: %s is %s, the Go declares %s", path, signal, got, want)
		}
	}
	for signal := range declared {
		if _, ok := c.Stability[signal]; !ok {
			t.Errorf("%s: stability for %s, which the Go does not declare", path, signal)
		}
	}
}

// instrumentKind is what the Go creates and what mdatagen would generate from metadata.yaml.
type instrumentKind struct {
	data      string // sum, gauge, histogram
	monotonic bool
	double    bool
}

func (k instrumentKind) String() string {
	value := "int"
	if k.double {
		value = "double"
	}
	if k.data == "sum" {
		return fmt.Sprintf("sum (%s, monotonic: %v)", value, k.monotonic)
	}
	return fmt.Sprintf("%s (%s)", k.data, value)
}

// recordOnEveryInstrument adds or records 1 on each exported instrument field of builder and
// returns how many there are; the SDK's aggregation of each then shows its kind. Any other
// exported field fails the test: an instrument this helper cannot record on would go unchecked.
func recordOnEveryInstrument(t *testing.T, builder any) int {
	t.Helper()
	ctx := context.Background()
	v := reflect.ValueOf(builder).Elem()
	instruments := 0
	for i := range v.NumField() {
		field := v.Type().Field(i)
		if !field.IsExported() {
			continue
		}
		if v.Field(i).IsNil() {
			t.Errorf("TelemetryBuilder.%s was never created", field.Name)
			continue
		}
		switch inst := v.Field(i).Interface().(type) {
		case metric.Int64Counter:
			inst.Add(ctx, 1)
			instruments++
		case metric.Int64UpDownCounter:
			inst.Add(ctx, 1)
			instruments++
		case metric.Int64Gauge:
			inst.Record(ctx, 1)
			instruments++
		case metric.Int64Histogram:
			inst.Record(ctx, 1)
			instruments++
		case metric.Float64Counter:
			inst.Add(ctx, 1)
			instruments++
		case metric.Float64UpDownCounter:
			inst.Add(ctx, 1)
			instruments++
		case metric.Float64Gauge:
			inst.Record(ctx, 1)
			instruments++
		case metric.Float64Histogram:
			inst.Record(ctx, 1)
			instruments++
		default:
			t.Errorf("TelemetryBuilder.%s is a %s, which this check cannot record on", field.Name, field.Type)
		}
	}
	return instruments
}

// collectedKind reads the kind back from what the SDK aggregated.
func collectedKind(m metricdata.Metrics) (instrumentKind, bool) {
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		return instrumentKind{data: "sum", monotonic: d.IsMonotonic}, true
	case metricdata.Sum[float64]:
		return instrumentKind{data: "sum", monotonic: d.IsMonotonic, double: true}, true
	case metricdata.Gauge[int64]:
		return instrumentKind{data: "gauge"}, true
	case metricdata.Gauge[float64]:
		return instrumentKind{data: "gauge", double: true}, true
	case metricdata.Histogram[int64]:
		return instrumentKind{data: "histogram"}, true
	case metricdata.Histogram[float64]:
		return instrumentKind{data: "histogram", double: true}, true
	}
	return instrumentKind{}, false
}

// declaredKind reads the kind metadata.yaml gives a metric.
func declaredKind(m telemetryMetric) (instrumentKind, error) {
	var k instrumentKind
	var inst *instrument
	set := 0
	for _, candidate := range []struct {
		name string
		inst *instrument
	}{{"sum", m.Sum}, {"gauge", m.Gauge}, {"histogram", m.Histogram}} {
		if candidate.inst != nil {
			k.data, inst = candidate.name, candidate.inst
			set++
		}
	}
	if set != 1 {
		return k, fmt.Errorf("needs exactly one of sum, gauge and histogram, has %d", set)
	}
	switch inst.ValueType {
	case "int":
	case "double":
		k.double = true
	default:
		return k, fmt.Errorf("value_type %q is neither int nor double", inst.ValueType)
	}
	if inst.Monotonic && k.data != "sum" {
		return k, fmt.Errorf("monotonic applies only to a sum")
	}
	if inst.Async {
		return k, fmt.Errorf("is asynchronous, and the hand-written builders register no callbacks")
	}
	k.monotonic = inst.Monotonic
	return k, nil
}

func checkTelemetry(t *testing.T, md *metadata, collected map[string]metricdata.Metrics) {
	t.Helper()
	used := map[string]bool{}
	for key, m := range md.Telemetry.Metrics {
		// mdatagen names the instrument otelcol_<key> and appends the stability to the description.
		name := "otelcol_" + key
		level := component.StabilityLevelAlpha
		if m.Stability.Level != "" {
			if err := level.UnmarshalText([]byte(m.Stability.Level)); err != nil || level == component.StabilityLevelUndefined {
				t.Errorf("%s: stability level %q", key, m.Stability.Level)
			}
		}
		if !m.Enabled {
			t.Errorf("%s: enabled is false, but the hand-written builder always creates it", key)
		}
		want, err := declaredKind(m)
		if err != nil {
			t.Errorf("%s: %v", key, err)
		}
		keys := map[string]string{}
		for _, a := range m.Attributes {
			used[a] = true
			def, ok := md.Attributes[a]
			if !ok {
				t.Errorf("%s: attribute %q is not defined under attributes", key, a)
				continue
			}
			k := a
			if def.NameOverride != "" {
				k = def.NameOverride
			}
			if other, twice := keys[k]; twice {
				t.Errorf("%s: attributes %q and %q are both the key %q", key, other, a, k)
			}
			keys[k] = a
		}
		got, ok := collected[name]
		if !ok {
			t.Errorf("%s is in metadata.yaml but the builder creates no %s", key, name)
			continue
		}
		delete(collected, name)
		if description := m.Description + " [" + level.String() + "]"; got.Description != description {
			t.Errorf("%s: description\n  Go:   %q\n  yaml: %q", name, got.Description, description)
		}
		if got.Unit != m.Unit {
			t.Errorf("%s: unit %q in the Go, %q in metadata.yaml", name, got.Unit, m.Unit)
		}
		if kind, ok := collectedKind(got); !ok {
			t.Errorf("%s: unexpected aggregation %T", name, got.Data)
		} else if err == nil && kind != want {
			t.Errorf("%s: the Go creates a %s, metadata.yaml declares a %s", name, kind, want)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(collected)) {
		t.Errorf("the builder creates %s, which metadata.yaml does not describe", name)
	}
	for name, a := range md.Attributes {
		if !used[name] {
			t.Errorf("attribute %q is defined but no metric has it", name)
		}
		if a.Description == "" {
			t.Errorf("attribute %q has no description", name)
		}
		switch a.Type {
		case "string", "int", "double", "bool":
		default:
			t.Errorf("attribute %q: type %q is not one a telemetry attribute may have", name, a.Type)
		}
		if len(a.Enum) > 0 && a.Type != "string" {
			t.Errorf("attribute %q: enum on a %s attribute; mdatagen allows it on strings only", name, a.Type)
		}
		seen := map[string]bool{}
		for _, v := range a.Enum {
			if v == "" || seen[v] {
				t.Errorf("attribute %q: enum value %q is empty or listed twice", name, v)
			}
			seen[v] = true
		}
	}
}
