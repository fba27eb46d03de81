package metrics

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// What otelcol-tapio v0.145.0 serves (lines taken from a run), before and after some load.
const before = `# HELP otelcol_receiver_accepted_spans_total Number of spans successfully pushed into the pipeline. [Alpha]
# TYPE otelcol_receiver_accepted_spans_total counter
otelcol_receiver_accepted_spans_total{otel_scope_name="go.opentelemetry.io/collector/receiver/receiverhelper",otel_scope_schema_url="",otel_scope_version="",receiver="otlp",transport="grpc"} 100
otelcol_receiver_accepted_spans_total{otel_scope_name="go.opentelemetry.io/collector/receiver/receiverhelper",otel_scope_schema_url="",otel_scope_version="",receiver="otlp",transport="http"} 5
# HELP otelcol_connector_correlation_evictions_total State evicted before its time because a cap was reached, by cap.
# TYPE otelcol_connector_correlation_evictions_total counter
otelcol_connector_correlation_evictions_total{otel_scope_name="github.com/yairfalse/tapio/connector/correlationconnector",otel_scope_schema_url="",otel_scope_version="",reason="max_events_per_incident"} 7
# HELP otelcol_exporter_send_failed_spans_total Number of spans in failed attempts to send to destination. [Alpha]
# TYPE otelcol_exporter_send_failed_spans_total counter
otelcol_exporter_send_failed_spans_total{exporter="debug",otel_scope_name="go.opentelemetry.io/collector/exporter/exporterhelper",otel_scope_schema_url="",otel_scope_version=""} 0
`

const after = `# TYPE otelcol_receiver_accepted_spans_total counter
otelcol_receiver_accepted_spans_total{otel_scope_name="go.opentelemetry.io/collector/receiver/receiverhelper",otel_scope_schema_url="",otel_scope_version="",receiver="otlp",transport="grpc"} 1100
otelcol_receiver_accepted_spans_total{otel_scope_name="go.opentelemetry.io/collector/receiver/receiverhelper",otel_scope_schema_url="",otel_scope_version="",receiver="otlp",transport="http"} 5
# TYPE otelcol_receiver_refused_spans_total counter
otelcol_receiver_refused_spans_total{otel_scope_name="go.opentelemetry.io/collector/receiver/receiverhelper",otel_scope_schema_url="",otel_scope_version="",receiver="otlp",transport="grpc"} 40
# TYPE otelcol_connector_correlation_evictions_total counter
otelcol_connector_correlation_evictions_total{otel_scope_name="github.com/yairfalse/tapio/connector/correlationconnector",otel_scope_schema_url="",otel_scope_version="",reason="max_events_per_incident"} 7
# TYPE otelcol_exporter_send_failed_spans_total counter
otelcol_exporter_send_failed_spans_total{exporter="debug",otel_scope_name="go.opentelemetry.io/collector/exporter/exporterhelper",otel_scope_schema_url="",otel_scope_version=""} 3
`

func scrapeText(t *testing.T, text string) Snapshot {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write([]byte(text))
	}))
	defer srv.Close()
	s, err := Scrape(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSumAndProblems(t *testing.T) {
	a, b := scrapeText(t, before), scrapeText(t, after)
	if got := b.Sum("otelcol_receiver_accepted_spans", `receiver="otlp"`) - a.Sum("otelcol_receiver_accepted_spans", `receiver="otlp"`); got != 1000 {
		t.Fatalf("accepted delta %v, want 1000", got)
	}
	if got := b.Sum("otelcol_receiver_accepted_spans", `transport="http"`); got != 5 {
		t.Fatalf("http accepted %v, want 5", got)
	}
	p := b.Problems(a)
	want := []Count{
		{Series: `otelcol_exporter_send_failed_spans{exporter="debug"}`, Delta: 3},
		{Series: `otelcol_receiver_refused_spans{receiver="otlp",transport="grpc"}`, Delta: 40},
	}
	if len(p) != len(want) {
		t.Fatalf("problems %v, want %v (an unchanged eviction counter is not one)", p, want)
	}
	for i := range want {
		if p[i] != want[i] {
			t.Fatalf("problem %d: %v, want %v", i, p[i], want[i])
		}
	}
}

func TestScrapeErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "no", http.StatusServiceUnavailable) }))
	defer srv.Close()
	if _, err := Scrape(context.Background(), srv.URL); err == nil {
		t.Fatal("a 503 scraped without error")
	}
}
