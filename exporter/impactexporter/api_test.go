package impactexporter

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/bearertokenauthextension"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/otel/attribute"

	"github.com/yairfalse/tapio/pkg/impactapi"
	ue "github.com/yairfalse/tapio/pkg/unifiedevent"
)

const testToken = "s3cret-token"

// bearerHost returns a host holding a real bearertokenauth extension, started, and configures
// cfg's server to authenticate with it.
func bearerHost(t *testing.T, cfg *Config) component.Host {
	t.Helper()
	f := bearertokenauthextension.NewFactory()
	extCfg := f.CreateDefaultConfig().(*bearertokenauthextension.Config)
	extCfg.BearerToken = configopaque.String(testToken)
	id := component.NewID(f.Type())
	ext, err := f.Create(context.Background(), extension.Settings{
		ID: id, TelemetrySettings: componenttest.NewNopTelemetrySettings(), BuildInfo: component.NewDefaultBuildInfo(),
	}, extCfg)
	if err != nil {
		t.Fatal(err)
	}
	host := testHost{extensions: map[component.ID]component.Component{id: ext}}
	if err := ext.Start(context.Background(), host); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ext.Shutdown(context.Background()) })
	cfg.HTTP.Auth = configoptional.Some(confighttp.AuthConfig{Config: configauth.Config{AuthenticatorID: id}})
	return host
}

func TestAPIAuth(t *testing.T) {
	for _, auth := range []bool{false, true} {
		t.Run(map[bool]string{false: "auth off", true: "auth on"}[auth], func(t *testing.T) {
			cfg := testConfig(t)
			var host component.Host
			if auth {
				host = bearerHost(t, cfg)
			}
			e := startExporter(t, cfg, host, nil)
			consume(t, e, oomChain())
			base := "http://" + e.addr()
			for _, path := range []string{"/healthz", "/api/v1/incidents", "/api/v1/incidents/correlation-1"} {
				noToken := getJSON(t, http.DefaultClient, base+path, "", nil)
				wrong := getJSON(t, http.DefaultClient, base+path, "wrong", nil)
				right := getJSON(t, http.DefaultClient, base+path, testToken, nil)
				want := [3]int{200, 200, 200}
				if auth {
					want = [3]int{401, 401, 200}
				}
				if got := [3]int{noToken, wrong, right}; got != want {
					t.Errorf("%s: no token, wrong token, right token = %v, want %v", path, got, want)
				}
			}
		})
	}
}

func TestAPIListAndGet(t *testing.T) {
	cfg := testConfig(t)
	businessConfig(cfg)
	e := startExporter(t, cfg, nil, nil)
	consume(t, e, oomChain())
	base := "http://" + e.addr()

	var list impactapi.IncidentList
	if code := getJSON(t, http.DefaultClient, base+"/api/v1/incidents?trace_id="+strings.ToUpper(traceA)+"&severity=critical&service=checkout&since=1h&limit=5", "", &list); code != 200 {
		t.Fatalf("status %d", code)
	}
	if list.Count != 1 || len(list.Incidents) != 1 || list.Incidents[0].ID != "correlation-1" {
		t.Fatalf("list = %+v", list)
	}
	inc := list.Incidents[0]
	if inc.Impact.RevenueAtRisk.Amount != 85 || inc.Impact.FailedTransactions.Count != 2 || len(inc.Chain) != 6 || len(inc.Recommendations) != 3 {
		t.Fatalf("incident = %+v", inc)
	}
	var health impactapi.Health
	if getJSON(t, http.DefaultClient, base+"/healthz", "", &health); health.Status != "ok" || health.Incidents != 1 {
		t.Fatalf("health = %+v", health)
	}
	var apiErr impactapi.Error
	if code := getJSON(t, http.DefaultClient, base+"/api/v1/incidents/nope", "", &apiErr); code != 404 || apiErr.Error != `no incident "nope"` {
		t.Fatalf("missing incident: %d %+v", code, apiErr)
	}
	var empty impactapi.IncidentList
	if code := getJSON(t, http.DefaultClient, base+"/api/v1/incidents?service=search", "", &empty); code != 200 || empty.Count != 0 || empty.Incidents == nil {
		t.Fatalf("empty list: %d %+v (incidents must be [] not null)", code, empty)
	}
}

func TestAPIBadParameters(t *testing.T) {
	tel := componenttest.NewTelemetry()
	defer func() { _ = tel.Shutdown(t.Context()) }()
	e := startExporter(t, testConfig(t), nil, tel)
	base := "http://" + e.addr() + "/api/v1/incidents?"
	tests := map[string]string{
		"trace_id=xyz":                        `trace_id "xyz" is not a trace id (32 hex digits, not all zero)`,
		"trace_id=" + strings.Repeat("0", 32): "is not a trace id",
		"severity=urgent":                     `severity "urgent" is not one of LOW, MEDIUM, HIGH, CRITICAL`,
		"since=yesterday":                     `since "yesterday" is neither an RFC 3339 time nor a positive duration such as 15m`,
		"since=-5m":                           "is neither an RFC 3339 time",
		"limit=0":                             `limit "0" is not a whole number from 1 to 1000`,
		"limit=5000":                          "is not a whole number from 1 to 1000",
		"service=":                            "service must not be empty",
		"servcie=checkout":                    `unknown query parameter "servcie"`,
		"limit=1&limit=2":                     `query parameter "limit" is given 2 times`,
	}
	for query, want := range tests {
		var apiErr impactapi.Error
		code := getJSON(t, http.DefaultClient, base+query, "", &apiErr)
		if code != http.StatusBadRequest || !strings.Contains(apiErr.Error, want) {
			t.Errorf("%s: %d %q, want 400 containing %q", query, code, apiErr.Error, want)
		}
	}
	if got := counterValue(t, tel, "otelcol_exporter_impact_api_requests", attribute.String("status_class", "4xx")); got != int64(len(tests)) {
		t.Fatalf("4xx requests counted = %d, want %d", got, len(tests))
	}
}

func TestStreamDeliversCreateAndUpdate(t *testing.T) {
	e := startExporter(t, testConfig(t), nil, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+e.addr()+"/api/v1/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	r := bufio.NewReader(resp.Body)
	if line, _ := r.ReadString('\n'); line != ": connected\n" {
		t.Fatalf("first line %q", line)
	}
	consume(t, e, oomChain())
	v2 := oomChain()
	v2.Version = 2
	consume(t, e, v2)

	for _, want := range []struct {
		kind    string
		version int64
	}{{"created", 1}, {"updated", 2}} {
		ev := readEvent(t, r)
		if ev.name != want.kind {
			t.Fatalf("event %q, want %q", ev.name, want.kind)
		}
		var se impactapi.StreamEvent
		mustUnmarshal(t, []byte(ev.data), &se)
		if se.Type != want.kind || se.Incident.ID != "correlation-1" || se.Incident.Version != want.version {
			t.Fatalf("event data = %+v", se)
		}
		if ev.id != "correlation-1/"+string(rune('0'+want.version)) {
			t.Fatalf("event id %q", ev.id)
		}
	}
}

type sseEvent struct{ id, name, data string }

func readEvent(t *testing.T, r *bufio.Reader) sseEvent {
	t.Helper()
	var ev sseEvent
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended: %v", err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if ev.name != "" {
				return ev
			}
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.name = line[7:]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[6:]
		}
	}
}

func TestIgnoredAndInvalidRecordsAreCounted(t *testing.T) {
	tel := componenttest.NewTelemetry()
	defer func() { _ = tel.Shutdown(t.Context()) }()
	e := startExporter(t, testConfig(t), nil, tel)
	ld := logsOf(oomChain())
	other := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().AppendEmpty()
	other.Body().SetStr("an ordinary log line")
	noID := oomChain()
	noID.ID = ""
	appendRecord(ld, noID)
	badTime := oomChain()
	badTime.ID = "bad-time"
	appendRecord(ld, badTime).Attributes().PutStr(ue.KeyCorrelationFirstSeen, "yesterday")
	newer := oomChain()
	newer.ID = "newer"
	appendRecord(ld, newer).Attributes().PutInt(ue.KeyCorrelationCodecVersion, ue.CorrelationCodecVersion+1)
	if err := e.consumeLogs(t.Context(), ld); err != nil {
		t.Fatal(err)
	}
	if got := counterValue(t, tel, "otelcol_exporter_impact_records_ignored"); got != 1 {
		t.Errorf("ignored = %d, want 1", got)
	}
	for reason, want := range map[string]int64{"missing_id": 1, "bad_time": 1, "unsupported_version": 1} {
		if got := counterValue(t, tel, "otelcol_exporter_impact_records_invalid", attribute.String("reason", reason)); got != want {
			t.Errorf("invalid %s = %d, want %d", reason, got, want)
		}
	}
	if e.store.Len() != 1 {
		t.Fatalf("stored %d incidents, want the one valid record", e.store.Len())
	}
}

func TestFactoryLifecycle(t *testing.T) {
	cfg := testConfig(t)
	f := NewFactory()
	exp, err := f.CreateLogs(t.Context(), exportertestSettings(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Shutdown without Start is safe.
	if err := exp.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	exp, err = f.CreateLogs(t.Context(), exportertestSettings(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	host := componenttest.NewNopHost()
	for range 2 {
		if err := exp.Start(t.Context(), host); err != nil {
			t.Fatal(err)
		}
	}
	if err := exp.ConsumeLogs(t.Context(), logsOf(oomChain())); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := exp.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestShutdownEndsOpenStreams(t *testing.T) {
	cfg := testConfig(t)
	e, err := newImpactExporter(exportertestSettings(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.start(t.Context(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + e.addr() + "/api/v1/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := e.shutdown(ctx); err != nil {
		t.Fatalf("shutdown with an open stream: %v", err)
	}
	ended := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, resp.Body)
		close(ended)
	}()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		_ = resp.Body.Close()
		t.Fatal("the stream is still open after shutdown")
	}
}

// The server's write_timeout must not end a stream: each write gets its own deadline.
func TestStreamOutlivesWriteTimeout(t *testing.T) {
	cfg := testConfig(t)
	cfg.HTTP.WriteTimeout = 300 * time.Millisecond
	e := startExporter(t, cfg, nil, nil, func(e *impactExporter) { e.heartbeat = 100 * time.Millisecond })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+e.addr()+"/api/v1/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	time.Sleep(time.Second) // three write timeouts
	consume(t, e, oomChain())
	if ev := readEvent(t, r); ev.name != "created" {
		t.Fatalf("event %+v", ev)
	}
}

// The page at / and each file it loads are served with their type and their embedded content.
func TestWebAssets(t *testing.T) {
	e := startExporter(t, testConfig(t), nil, nil)
	base := "http://" + e.addr()
	for _, tt := range []struct {
		path, file, contentType, contains string
	}{
		{"/", "web/index.html", "text/html; charset=utf-8", "<title>Tapio incidents</title>"},
		{"/app.js", "web/app.js", "text/javascript; charset=utf-8", "new EventSource('api/v1/stream')"},
		{"/style.css", "web/style.css", "text/css; charset=utf-8", ".CRITICAL"},
	} {
		t.Run(tt.path, func(t *testing.T) {
			want, err := webFiles.ReadFile(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.Get(base + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != tt.contentType ||
				resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Fatalf("status %d, Content-Type %q, X-Content-Type-Options %q; want 200, %q, nosniff",
					resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("X-Content-Type-Options"), tt.contentType)
			}
			if string(body) != string(want) || !strings.Contains(string(body), tt.contains) {
				t.Fatalf("%s served %d bytes, not %s", tt.path, len(body), tt.file)
			}
		})
	}
	// Only the page itself is at /, not every path under it.
	if code := getJSON(t, http.DefaultClient, base+"/nothing-here", "", nil); code != http.StatusNotFound {
		t.Fatalf("/nothing-here answered %d, want 404", code)
	}
}

// Every file the page loads is served, and the page loads nothing from elsewhere.
func TestWebPageLoadsOnlyServedAssets(t *testing.T) {
	page, err := webFiles.ReadFile("web/index.html")
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	for _, a := range webAssets {
		served[a.route] = true
	}
	refs := regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllStringSubmatch(string(page), -1)
	if len(refs) != len(webAssets)-1 {
		t.Errorf("the page loads %d files, %d are served besides it", len(refs), len(webAssets)-1)
	}
	for _, ref := range refs {
		if !served["/"+ref[1]] {
			t.Errorf("the page loads %q, which is not served", ref[1])
		}
	}
}

// The API's text comes from the monitored systems: the script must only ever make text nodes of
// it, never parse it as markup.
func TestWebScriptNeverParsesMarkup(t *testing.T) {
	script, err := webFiles.ReadFile("web/app.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "DOMParser", "createContextualFragment"} {
		if strings.Contains(string(script), sink) {
			t.Errorf("app.js uses %s", sink)
		}
	}
	if !strings.Contains(string(script), "createTextNode") {
		t.Error("app.js builds no text nodes")
	}
}
