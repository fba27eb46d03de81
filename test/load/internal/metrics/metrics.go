// Package metrics reads the collector's own telemetry from its Prometheus endpoint.
package metrics

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Snapshot is every counter and gauge sample of one scrape, by series.
type Snapshot map[Series]float64

// Series names one sample: the family and its labels, without the otel_scope_* labels that only
// say which library counted.
type Series struct {
	Name   string
	Labels string // k="v",… sorted
}

func (s Series) String() string {
	if s.Labels == "" {
		return s.Name
	}
	return s.Name + "{" + s.Labels + "}"
}

// Scrape reads url (…/metrics).
func Scrape(ctx context.Context, url string) (Snapshot, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	snap := Snapshot{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			var v float64
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				v = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				v = m.GetGauge().GetValue()
			case dto.MetricType_UNTYPED:
				v = m.GetUntyped().GetValue()
			default:
				continue
			}
			snap[Series{Name: strings.TrimSuffix(name, "_total"), Labels: labelString(m.GetLabel())}] = v
		}
	}
	return snap, nil
}

func labelString(pairs []*dto.LabelPair) string {
	var parts []string
	for _, p := range pairs {
		if strings.HasPrefix(p.GetName(), "otel_scope_") {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s=%q", p.GetName(), p.GetValue()))
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// Sum adds the samples of family name whose labels contain every one of match (k="v" strings).
func (s Snapshot) Sum(name string, match ...string) float64 {
	var total float64
	for series, v := range s {
		if series.Name != name {
			continue
		}
		ok := true
		for _, m := range match {
			if !strings.Contains(series.Labels, m) {
				ok = false
				break
			}
		}
		if ok {
			total += v
		}
	}
	return total
}

// problem families: every count of something refused, dropped, evicted or failed.
var problem = regexp.MustCompile(`refused|dropped|evict|failed`)

// Count is one problem counter's increase.
type Count struct {
	Series string  `json:"series"`
	Delta  float64 `json:"delta"`
}

// Problems lists, sorted, each otelcol_* refused/dropped/evicted/failed counter that rose from
// before to s. Gauges of the same names would be read as counters too; the collector has none.
func (s Snapshot) Problems(before Snapshot) []Count {
	var out []Count
	for series, v := range s {
		if !strings.HasPrefix(series.Name, "otelcol_") || !problem.MatchString(series.Name) {
			continue
		}
		if d := v - before[series]; d > 0 {
			out = append(out, Count{Series: series.String(), Delta: d})
		}
	}
	slices.SortFunc(out, func(a, b Count) int { return strings.Compare(a.Series, b.Series) })
	return out
}
