package impactapi

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// plainIncident has Incident's fields and tags but none of its methods, so encoding/json encodes
// it by reflection: the reference AppendJSON must match.
type plainIncident Incident

func fullIncident() *Incident {
	f := func(v float64) *float64 { return &v }
	t := time.Date(2026, 11, 25, 3, 0, 10, 123456789, time.UTC)
	return &Incident{
		ID: "c-1", Version: 7, Summary: "a \"quoted\" <b>&</b> \\ line\nwith\ttabs \u2028 \x01 \xff é 🙂",
		Severity: SeverityHigh, Score: 0.65, Confidence: f(0.8),
		FirstSeen: t, LastSeen: t.Add(time.Second), DetectedAt: t.Add(2 * time.Second), UpdatedAt: t.In(time.FixedZone("X", 3600)),
		TimeToDetectionSeconds: 2.000000001,
		RootCause:              RootCause{EventID: "e1", EventName: "tapio.kernel.oom_kill", EntityID: "pod", Narrative: "killed"},
		Impact: Impact{
			ScoreFactors:       []ScoreFactor{{"root_cause", 0.3, "why"}, {"x", 1e-7, "tiny"}, {"y", 1e21, "huge"}},
			CustomerFacing:     &CustomerFacing{Value: true, Services: []string{"a"}, Routes: []string{"/r"}, Source: "s"},
			FailedTransactions: &FailedTransactions{Count: 3, Routes: []string{"r"}, Source: "s"},
			RevenueAtRisk:      &Money{Amount: 127.5, Currency: "EUR", Source: "s"},
			AffectedUsers:      &AffectedUsers{Count: 2, ByKey: map[string]int64{"user.id": 1, "enduser.id": 1}, Source: "s"},
			SLOBurn:            []SLOBurn{{Service: "a", Route: "/r", Objective: "availability", Target: 0.999, WindowSeconds: 2592000, BadEvents: 2, BudgetEvents: 1000.0000000000009, BudgetConsumed: 0.002, Source: "s"}},
			Cascade:            &Cascade{Level: "HIGH", Services: []string{"a", "b"}, DependentsAtRisk: []string{"c"}, Source: "s"},
			Unavailable:        []Unavailable{{"slo_burn", "why"}},
		},
		TraceIDs: []string{"t1"}, Services: []string{"a"}, EventCount: 2,
		Chain: []ChainEntry{
			{Time: t, Layer: "kernel", EventName: "n", EntityID: "e", Narrative: "x", EventID: "i", TraceID: "t", SpanID: "s",
				SpanKind: "SERVER", Service: "svc", HTTPRoute: "/r", HTTPStatusCode: 500, EndUserID: "u", UserID: "u2",
				SessionID: "s1", Peer: "p:1", Link: Link{Reason: "peer", Confidence: f(1), Detail: "d", CauseEventID: "c"}},
			{Time: t, Layer: "trace", EventName: "n", Narrative: "minimal", Link: Link{Reason: "root"}},
		},
		Recommendations: []Recommendation{{HorizonImmediate, "do"}},
		MergedIDs:       []string{"old"},
	}
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	full := fullIncident()
	// Every field of the full incident is set, so a field added to Incident without being added
	// to AppendJSON is caught here.
	assertAllSet(t, reflect.ValueOf(*full), "Incident")
	empty := &Incident{}
	nilSlices := &Incident{Impact: Impact{AffectedUsers: &AffectedUsers{}, Cascade: &Cascade{}}}
	for name, inc := range map[string]*Incident{"full": full, "empty": empty, "nil slices": nilSlices} {
		want, err := json.Marshal((*plainIncident)(inc))
		if err != nil {
			t.Fatal(err)
		}
		got, err := AppendJSON(nil, inc)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\ngot  %s\nwant %s", name, got, want)
		}
	}
}

func assertAllSet(t *testing.T, v reflect.Value, path string) {
	t.Helper()
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				assertAllSet(t, v.Field(i), path+"."+v.Type().Field(i).Name)
			}
		}
	case reflect.Pointer:
		if v.IsNil() {
			t.Errorf("%s is not set in the full fixture", path)
			return
		}
		assertAllSet(t, v.Elem(), path)
	case reflect.Slice:
		if v.Len() == 0 {
			t.Errorf("%s is empty in the full fixture", path)
			return
		}
		assertAllSet(t, v.Index(0), path+"[0]")
	default:
		if v.IsZero() {
			t.Errorf("%s is zero in the full fixture", path)
		}
	}
}

func TestAppendJSONRefusesNonFinite(t *testing.T) {
	inc := fullIncident()
	zero := 0.0
	inc.Impact.SLOBurn[0].BudgetConsumed = 1 / zero
	if _, err := AppendJSON(nil, inc); err == nil {
		t.Fatal("an infinite figure was encoded")
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	inc := fullIncident()
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		buf, _ = AppendJSON(buf[:0], inc)
	}
}

func BenchmarkEncodingJSON(b *testing.B) {
	inc := (*plainIncident)(fullIncident())
	b.ReportAllocs()
	for b.Loop() {
		_, _ = json.Marshal(inc)
	}
}

func TestAppendStreamEventJSON(t *testing.T) {
	type plainEvent struct {
		Type     string         `json:"type"`
		Incident *plainIncident `json:"incident"`
	}
	ev := &StreamEvent{Type: EventCreated, Incident: *fullIncident()}
	want, err := json.Marshal(plainEvent{ev.Type, (*plainIncident)(&ev.Incident)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := AppendStreamEventJSON(nil, ev)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("err %v\ngot  %s\nwant %s", err, got, want)
	}
}
