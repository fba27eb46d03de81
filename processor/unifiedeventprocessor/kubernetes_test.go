package unifiedeventprocessor

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

type kubernetesCase struct {
	Name      string         `json:"name"`
	WatchType string         `json:"watch_type"`
	Body      map[string]any `json:"body"`
	Want      struct {
		Dropped    string         `json:"dropped"`
		Invalid    string         `json:"invalid"`
		EventName  string         `json:"event_name"`
		Severity   string         `json:"severity"`
		Timestamp  string         `json:"timestamp"`
		Body       string         `json:"body"`
		Resource   map[string]any `json:"resource"`
		Attributes map[string]any `json:"attributes"`
	} `json:"want"`
}

func loadKubernetesCases(t testing.TB) []kubernetesCase {
	raw, err := os.ReadFile("testdata/kubernetes_events.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []kubernetesCase
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	for i := range cases {
		cases[i].Body = integralNumbersAsInts(cases[i].Body).(map[string]any)
	}
	return cases
}

// integralNumbersAsInts turns JSON's float64 numbers back into the int64 values the k8sobjects
// receiver emits for Kubernetes integers.
func integralNumbersAsInts(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = integralNumbersAsInts(e)
		}
	case []any:
		for i, e := range x {
			x[i] = integralNumbersAsInts(e)
		}
	case float64:
		if x == float64(int64(x)) {
			return int64(x)
		}
	}
	return v
}

// k8sObjectsLogs shapes an object the way the k8sobjects receiver does: per-namespace resource,
// its scope, and in watch mode a {type, object} body with event.domain/event.name attributes.
func k8sObjectsLogs(body map[string]any, watchType string) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	if meta, ok := body["metadata"].(map[string]any); ok {
		if ns, ok := meta["namespace"].(string); ok {
			rl.Resource().Attributes().PutStr("k8s.namespace.name", ns)
		}
	}
	rl.Resource().Attributes().PutStr("k8s.cluster.name", "prod-eu")
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("github.com/open-telemetry/opentelemetry-collector-contrib/receiver/k8sobjectsreceiver")
	rec := sl.LogRecords().AppendEmpty()
	rec.SetObservedTimestamp(pcommon.NewTimestampFromTime(time.Date(2026, 11, 25, 3, 10, 0, 0, time.UTC)))
	rec.Attributes().PutStr("k8s.resource.name", "events")
	raw := body
	if watchType != "" {
		raw = map[string]any{"type": watchType, "object": body}
		rec.Attributes().PutStr("event.domain", "k8s")
		rec.Attributes().PutStr("event.name", "some-object-name")
	}
	if err := rec.Body().SetEmptyMap().FromRaw(raw); err != nil {
		panic(err)
	}
	return ld
}

func TestKubernetesEventsBecomeUnifiedEvents(t *testing.T) {
	for _, tc := range loadKubernetesCases(t) {
		t.Run(tc.Name, func(t *testing.T) {
			h := newHarness(t, defaultConfig())
			got := h.consumeLogs(t, k8sObjectsLogs(tc.Body, tc.WatchType))
			switch {
			case tc.Want.Dropped != "":
				if len(got) != 0 {
					t.Fatalf("want the record dropped, got %d records", len(got))
				}
				if n := h.counter(t, "otelcol_processor_unifiedevent_records_dropped", "reason", tc.Want.Dropped); n != 1 {
					t.Errorf("dropped{reason=%s} = %d, want 1", tc.Want.Dropped, n)
				}
				return
			case tc.Want.Invalid != "":
				if len(got) != 1 || got[0].Body().Type() != pcommon.ValueTypeMap {
					t.Fatalf("want the invalid record passed on unchanged, got %d records", len(got))
				}
				if _, ok := got[0].Attributes().Get(unifiedevent.KeyEventID); ok {
					t.Error("an invalid record must not be stamped as an event")
				}
				if n := h.counter(t, "otelcol_processor_unifiedevent_records_invalid", "reason", tc.Want.Invalid); n != 1 {
					t.Errorf("invalid{reason=%s} = %d, want 1", tc.Want.Invalid, n)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("got %d records, want 1", len(got))
			}
			rec := got[0]
			attrs := unifiedevent.Of(rec.Attributes())
			if attrs.Name() != tc.Want.EventName {
				t.Errorf("event.name = %q, want %q", attrs.Name(), tc.Want.EventName)
			}
			if !unifiedevent.ValidEventID(attrs.EventID()) {
				t.Errorf("event id %q is malformed", attrs.EventID())
			}
			if rec.SeverityText() != tc.Want.Severity {
				t.Errorf("severity = %q, want %q", rec.SeverityText(), tc.Want.Severity)
			}
			wantTime, _ := time.Parse(time.RFC3339Nano, tc.Want.Timestamp)
			if !rec.Timestamp().AsTime().Equal(wantTime) {
				t.Errorf("timestamp = %s, want %s", rec.Timestamp().AsTime(), wantTime)
			}
			if rec.Body().Type() != pcommon.ValueTypeStr || rec.Body().Str() == "" {
				t.Errorf("body must be a narrative sentence, got %v", rec.Body().AsRaw())
			}
			if tc.Want.Body != "" && rec.Body().Str() != tc.Want.Body {
				t.Errorf("body = %q\nwant  %q", rec.Body().Str(), tc.Want.Body)
			}
			if _, ok := rec.Attributes().Get("event.domain"); ok {
				t.Error("event.domain from the receiver should be gone")
			}
			if rec.ObservedTimestamp() == 0 {
				t.Error("observed timestamp lost")
			}
			res, scope := resourceAndScopeOf(t, h, rec)
			assertSubset(t, "resource", res.Attributes(), tc.Want.Resource)
			assertSubset(t, "attributes", rec.Attributes(), tc.Want.Attributes)
			if unifiedevent.StringAttribute(res.Attributes(), "k8s.cluster.name") != "prod-eu" {
				t.Error("resource attributes of the source must be kept")
			}
			if v, ok := scope.Attributes().Get(unifiedevent.KeySchemaVersion); !ok || v.Int() != 1 {
				t.Error("scope lacks tapio.schema.version = 1")
			}
			if n := h.counter(t, "otelcol_processor_unifiedevent_records_normalized", "layer", "kubernetes"); n != 1 {
				t.Errorf("normalized{layer=kubernetes} = %d, want 1", n)
			}
		})
	}
}

func resourceAndScopeOf(t *testing.T, h *harness, rec plog.LogRecord) (pcommon.Resource, pcommon.InstrumentationScope) {
	for _, ld := range h.logOut.AllLogs() {
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			rl := ld.ResourceLogs().At(i)
			for j := 0; j < rl.ScopeLogs().Len(); j++ {
				sl := rl.ScopeLogs().At(j)
				for k := 0; k < sl.LogRecords().Len(); k++ {
					if sl.LogRecords().At(k) == rec {
						return rl.Resource(), sl.Scope()
					}
				}
			}
		}
	}
	t.Fatal("record not found downstream")
	return pcommon.Resource{}, pcommon.InstrumentationScope{}
}

func assertSubset(t *testing.T, what string, got pcommon.Map, want map[string]any) {
	t.Helper()
	for k, w := range want {
		v, ok := got.Get(k)
		if !ok {
			t.Errorf("%s: %s missing (have %v)", what, k, got.AsRaw())
			continue
		}
		if fmt.Sprint(v.AsRaw()) != fmt.Sprint(w) {
			t.Errorf("%s: %s = %v, want %v", what, k, v.AsRaw(), w)
		}
	}
}

func TestNormalKubernetesEventsKeptWhenConfigured(t *testing.T) {
	cfg := defaultConfig()
	cfg.Kubernetes.NormalEvents = Keep
	h := newHarness(t, cfg)
	body := map[string]any{"apiVersion": "v1", "kind": "Event", "type": "Normal", "reason": "Pulled", "message": "Successfully pulled image",
		"metadata": map[string]any{"name": "p.1", "namespace": "shop"}, "involvedObject": map[string]any{"kind": "Pod", "name": "p", "uid": "u1", "namespace": "shop"}}
	got := h.consumeLogs(t, k8sObjectsLogs(body, ""))
	if len(got) != 1 || unifiedevent.Of(got[0].Attributes()).Name() != string(unifiedevent.KubernetesNormal) || got[0].SeverityText() != "INFO" {
		t.Fatalf("want one tapio.kubernetes.normal at INFO, got %d", len(got))
	}
}

func TestKubernetesEventsOfManyPodsGetOneResourceEach(t *testing.T) {
	h := newHarness(t, defaultConfig())
	ld := plog.NewLogs()
	sl := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
	for i := 0; i < 3; i++ {
		for repeat := 0; repeat < 2; repeat++ {
			body := map[string]any{"apiVersion": "v1", "kind": "Event", "type": "Warning", "reason": "Unhealthy",
				"metadata":       map[string]any{"name": fmt.Sprintf("p%d.%d", i, repeat), "namespace": "shop"},
				"involvedObject": map[string]any{"kind": "Pod", "name": fmt.Sprintf("p%d", i), "uid": fmt.Sprintf("uid-%d", i), "namespace": "shop"}}
			_ = sl.LogRecords().AppendEmpty().Body().SetEmptyMap().FromRaw(body)
		}
	}
	// An ordinary record in the same scope stays where it was.
	sl.LogRecords().AppendEmpty().Body().SetStr("plain line")
	h.consumeLogs(t, ld)
	out := h.logOut.AllLogs()[0]
	if out.ResourceLogs().Len() != 4 {
		t.Fatalf("want the original resource plus one per pod (4), got %d", out.ResourceLogs().Len())
	}
	for i := 1; i < 4; i++ {
		rl := out.ResourceLogs().At(i)
		if n := rl.ScopeLogs().At(0).LogRecords().Len(); n != 2 {
			t.Errorf("pod resource %d holds %d events, want 2", i, n)
		}
		uid := unifiedevent.StringAttribute(rl.Resource().Attributes(), unifiedevent.KeyK8sPodUID)
		if uid != fmt.Sprintf("uid-%d", i-1) {
			t.Errorf("resource %d is about %q", i, uid)
		}
	}
}

func TestKubernetesHugeMessageIsBounded(t *testing.T) {
	h := newHarness(t, defaultConfig())
	body := map[string]any{"apiVersion": "v1", "kind": "Event", "type": "Warning", "reason": strings.Repeat("R", 5000), "message": strings.Repeat("é", 1<<20),
		"metadata": map[string]any{"name": "p.1"}, "involvedObject": map[string]any{"kind": "Pod", "name": strings.Repeat("n", 5000)}}
	got := h.consumeLogs(t, k8sObjectsLogs(body, ""))
	if len(got) != 1 {
		t.Fatalf("got %d records", len(got))
	}
	if l := len(got[0].Body().Str()); l > unifiedevent.DefaultMaxNarrativeBytes {
		t.Errorf("narrative is %d bytes, limit %d", l, unifiedevent.DefaultMaxNarrativeBytes)
	}
	reason := unifiedevent.StringAttribute(got[0].Attributes(), unifiedevent.KeyK8sEventReason)
	if reason == "" || len(reason) > unifiedevent.DefaultMaxNarrativeBytes {
		t.Errorf("reason attribute is %d bytes", len(reason))
	}
}

func TestKubernetesDropsInvalidWhenConfigured(t *testing.T) {
	cfg := defaultConfig()
	cfg.OnInvalid = Drop
	h := newHarness(t, cfg)
	body := map[string]any{"apiVersion": "v1", "kind": "Event", "involvedObject": map[string]any{"kind": "Pod", "name": "x"}}
	if got := h.consumeLogs(t, k8sObjectsLogs(body, "")); len(got) != 0 {
		t.Fatalf("want the invalid record dropped, got %d", len(got))
	}
	if n := h.counter(t, "otelcol_processor_unifiedevent_records_dropped", "reason", "invalid"); n != 1 {
		t.Errorf("dropped{reason=invalid} = %d", n)
	}
}

// FuzzKubernetesEventMapping feeds arbitrary JSON to the Kubernetes mapping: it must never panic,
// and whatever it emits must be a well-formed UnifiedEvent.
func FuzzKubernetesEventMapping(f *testing.F) {
	for _, tc := range loadKubernetesCases(f) {
		raw, _ := json.Marshal(tc.Body)
		f.Add(raw, tc.WatchType)
	}
	f.Add([]byte(`{"kind":"Event","apiVersion":"v1","reason":7,"involvedObject":{"kind":[],"name":{}}}`), "")
	f.Add([]byte(`{"type":"ADDED","object":{"kind":"Event","apiVersion":"events.k8s.io/v1","reason":"X","regarding":{"kind":"Pod","name":"p"},"series":{"count":"nine"},"eventTime":"not a time"}}`), "")
	h := newHarness(f, defaultConfig())
	f.Fuzz(func(t *testing.T, raw []byte, watchType string) {
		var body map[string]any
		if json.Unmarshal(raw, &body) != nil || body == nil {
			return
		}
		body = integralNumbersAsInts(body).(map[string]any)
		for _, rec := range h.consumeLogs(t, k8sObjectsLogs(body, watchType)) {
			attrs := unifiedevent.Of(rec.Attributes())
			if id := attrs.EventID(); id == "" {
				continue // passed on unchanged: not an event
			}
			if _, err := attrs.Validate(); err != nil {
				t.Fatalf("emitted an invalid event: %v", err)
			}
			if len(rec.Body().Str()) > unifiedevent.DefaultMaxNarrativeBytes {
				t.Fatalf("narrative of %d bytes", len(rec.Body().Str()))
			}
		}
	})
}
