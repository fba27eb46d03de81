package unifiedevent_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	ue "github.com/yairfalse/tapio/pkg/unifiedevent"
)

var (
	t0     = time.Date(2026, 11, 25, 3, 0, 10, 0, time.UTC)
	traceA = pcommon.TraceID{0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11}
)

// fullRecord sets every field the codec knows, so that a round trip covers all of them.
func fullRecord() ue.CorrelationRecord {
	return ue.CorrelationRecord{
		ID: "c-1", Version: 3, Confidence: 0.8, HasConfidence: true,
		RootCause: ue.RootCause{
			EventID: "000000000000000000000000000a0001", EventName: string(ue.OOMKill),
			EntityID: "pod-ledger-db-0", Narrative: "Kernel OOM killer killed postgres (pid 4242)",
		},
		EventCount: 4,
		FirstSeen:  t0,
		LastSeen:   t0.Add(640 * time.Millisecond),
		Chain: []ue.ChainEntry{
			{
				Time: t0, Layer: "kernel", EventName: string(ue.OOMKill), EntityID: "pod-ledger-db-0",
				Narrative: "Kernel OOM killer killed postgres (pid 4242)", EventID: "000000000000000000000000000a0001",
				Service: "ledger-db", Link: ue.ChainLink{Reason: "root"},
			},
			{
				Time: t0.Add(500 * time.Millisecond), Layer: "network", EventName: string(ue.ConnectionRefused),
				EntityID: "pod-payment-1", Narrative: "payment could not connect to 10.0.0.7:5432",
				EventID: "000000000000000000000000000a0002", Service: "payment", Peer: "10.0.0.7:5432", Count: 452,
				Link: ue.ChainLink{Reason: "peer", Confidence: 0.8, HasConfidence: true, Detail: "10.0.0.7:5432 is served by pod-ledger-db-0",
					CauseEventID: "000000000000000000000000000a0001"},
			},
			{
				Time: t0.Add(550 * time.Millisecond), Layer: "application", EventName: string(ue.MetricThresholdBreach),
				EntityID: "pod-payment-1", Narrative: "queue depth 900 > 500",
				Link:   ue.ChainLink{Reason: "entity", Confidence: 0.9, HasConfidence: true, Detail: "same entity pod-payment-1"},
				Metric: ue.MetricBreach{Rule: "queue-depth", Metric: "queue.depth", Value: 900},
			},
			{
				Time: t0.Add(640 * time.Millisecond), Layer: "trace", EventName: string(ue.ServerError),
				EntityID: "pod-checkout-1", Narrative: "checkout: SERVER span POST /api/checkout failed with HTTP 500",
				EventID: "000000000000000000000000000a0011", TraceID: traceA.String(), SpanID: "1111111111110001", ParentSpanID: "1111111111110000",
				SpanKind: "SERVER", Service: "checkout", HTTPRoute: "/api/checkout", HTTPStatusCode: 500,
				EndUserID: "user-17", UserID: "u-17", SessionID: "sess-9",
				Link: ue.ChainLink{Reason: "trace.parent", Confidence: 1, HasConfidence: true, Detail: "propagated up the trace",
					CauseEventID: "000000000000000000000000000a0002"},
			},
		},
		TraceIDs:  []string{traceA.String()},
		Services:  []string{"ledger-db", "payment", "checkout"},
		MergedIDs: []string{"c-0"},
		Recommendations: []ue.Recommendation{
			{Horizon: ue.HorizonImmediate, Action: "Raise the memory limit of ledger-db.",
				Kind: "kubernetes.set_memory_limit", Target: "shop/statefulset/ledger-db",
				Parameters: []ue.RecommendationParameter{{Name: "container", Value: "postgres"}, {Name: "limit", Value: "128Mi"}}},
			{Horizon: ue.HorizonLongTerm, Action: "Alert on memory utilisation before the limit."},
		},
		Summary:        "Kernel OOM killer killed postgres; root cause of 3 related events",
		PrimaryTraceID: traceA,
		Time:           t0,
		ObservedTime:   t0.Add(5 * time.Second),
	}
}

func written(r ue.CorrelationRecord) plog.LogRecord {
	rec := plog.NewLogRecord()
	ue.WriteCorrelationRecord(rec, &r)
	return rec
}

func TestCorrelationRecordRoundTrip(t *testing.T) {
	want := fullRecord()
	rec := written(want)
	if !ue.IsCorrelationRecord(rec) {
		t.Fatal("a written record is not a correlation record")
	}
	if v, ok := rec.Attributes().Get(ue.KeyCorrelationCodecVersion); !ok || v.Int() != ue.CorrelationCodecVersion {
		t.Fatalf("%s = %v, want %d", ue.KeyCorrelationCodecVersion, v.AsRaw(), ue.CorrelationCodecVersion)
	}
	got, err := ue.ReadCorrelationRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("read back\n%+v\nwant\n%+v", got, want)
	}
}

// What is unset is absent from the record, not written as an empty or zero value.
func TestCorrelationRecordWritesOptionalFieldsOnlyWhenSet(t *testing.T) {
	r := fullRecord()
	r.MergedIDs = nil
	r.HasConfidence = false
	rec := written(r)
	attrs := rec.Attributes()
	for _, key := range []string{ue.KeyCorrelationMergedIDs, ue.KeyCorrelationConfidence} {
		if _, ok := attrs.Get(key); ok {
			t.Errorf("%s is written though unset", key)
		}
	}
	chain, _ := attrs.Get(ue.KeyCorrelationChain)
	root := chain.Slice().At(0).Map()
	for _, key := range []string{ue.ChainKeyLinkConfidence, ue.ChainKeyLinkDetail, ue.ChainKeyLinkCause, ue.ChainKeyTraceID,
		ue.ChainKeySpanKind, ue.KeyHTTPResponseStatusCode, ue.ChainKeyPeer, ue.ChainKeyMetricRule, ue.ChainKeyMetricValue} {
		if _, ok := root.Get(key); ok {
			t.Errorf("the root's chain entry has %s though it is unset", key)
		}
	}
	if _, ok := chain.Slice().At(2).Map().Get(ue.ChainKeyMetricValue); !ok {
		t.Errorf("the breach's chain entry has no %s", ue.ChainKeyMetricValue)
	}
	recs, _ := attrs.Get(ue.KeyRecommendations)
	plain := recs.Slice().At(1).Map()
	if plain.Len() != 2 {
		t.Errorf("a recommendation without remediation has %v, want only horizon and action", plain.AsRaw())
	}
	structured := recs.Slice().At(0).Map().AsRaw()
	wantParams := map[string]any{"container": "postgres", "limit": "128Mi"}
	if structured[ue.RecommendationKeyKind] != "kubernetes.set_memory_limit" || !reflect.DeepEqual(structured[ue.RecommendationKeyParameters], wantParams) {
		t.Errorf("structured recommendation = %v", structured)
	}
}

// mutate writes fullRecord, lets change edit the pdata, and reads the result.
func mutate(change func(attrs pcommon.Map, rec plog.LogRecord)) (ue.CorrelationRecord, error) {
	rec := written(fullRecord())
	change(rec.Attributes(), rec)
	return ue.ReadCorrelationRecord(rec)
}

func chainEntry(attrs pcommon.Map, i int) pcommon.Map {
	chain, _ := attrs.Get(ue.KeyCorrelationChain)
	return chain.Slice().At(i).Map()
}

func TestReadCorrelationRecordErrors(t *testing.T) {
	tests := []struct {
		name   string
		change func(attrs pcommon.Map, rec plog.LogRecord)
		reason ue.InvalidCorrelationReason
		text   string
	}{
		{"no id", func(a pcommon.Map, _ plog.LogRecord) { a.Remove(ue.KeyCorrelationID) },
			ue.InvalidCorrelationMissingID, "tapio.correlation.id is missing"},
		{"empty id", func(a pcommon.Map, _ plog.LogRecord) { a.PutStr(ue.KeyCorrelationID, "") },
			ue.InvalidCorrelationMissingID, "tapio.correlation.id is missing"},
		{"no version", func(a pcommon.Map, _ plog.LogRecord) { a.Remove(ue.KeyCorrelationVersion) },
			ue.InvalidCorrelationMissingVersion, "tapio.correlation.version is missing or not a positive integer"},
		{"version as a string", func(a pcommon.Map, _ plog.LogRecord) { a.PutStr(ue.KeyCorrelationVersion, "3") },
			ue.InvalidCorrelationMissingVersion, "not a positive integer"},
		{"version 0", func(a pcommon.Map, _ plog.LogRecord) { a.PutInt(ue.KeyCorrelationVersion, 0) },
			ue.InvalidCorrelationMissingVersion, "not a positive integer"},
		{"chain not a list", func(a pcommon.Map, _ plog.LogRecord) { a.PutStr(ue.KeyCorrelationChain, "oom → refused") },
			ue.InvalidCorrelationBadChain, "tapio.correlation.chain is a Str, not a slice"},
		{"chain entry not a map", func(a pcommon.Map, _ plog.LogRecord) {
			chain, _ := a.Get(ue.KeyCorrelationChain)
			chain.Slice().At(1).SetStr("refused")
		}, ue.InvalidCorrelationBadChain, "tapio.correlation.chain[1] is a Str, not a map"},
		{"chain entry without a name", func(a pcommon.Map, _ plog.LogRecord) { chainEntry(a, 2).Remove(ue.KeyEventName) },
			ue.InvalidCorrelationBadChain, "tapio.correlation.chain[2]: event.name is missing"},
		{"chain entry with a bad time", func(a pcommon.Map, _ plog.LogRecord) { chainEntry(a, 0).PutStr(ue.ChainKeyTime, "03:00") },
			ue.InvalidCorrelationBadChain, `tapio.correlation.chain[0]: time = "03:00" is not RFC 3339`},
		{"bad first_seen", func(a pcommon.Map, _ plog.LogRecord) { a.PutStr(ue.KeyCorrelationFirstSeen, "yesterday") },
			ue.InvalidCorrelationBadTime, `tapio.correlation.first_seen = "yesterday" is not RFC 3339`},
		{"bad last_seen", func(a pcommon.Map, _ plog.LogRecord) { a.PutStr(ue.KeyCorrelationLastSeen, "later") },
			ue.InvalidCorrelationBadTime, `tapio.correlation.last_seen = "later" is not RFC 3339`},
		{"no time at all", func(a pcommon.Map, rec plog.LogRecord) {
			a.Remove(ue.KeyCorrelationFirstSeen)
			a.Remove(ue.KeyCorrelationLastSeen)
			a.PutEmptySlice(ue.KeyCorrelationChain)
			rec.SetTimestamp(0)
		}, ue.InvalidCorrelationBadTime, "the record has no time"},
		{"newer codec", func(a pcommon.Map, _ plog.LogRecord) {
			a.PutInt(ue.KeyCorrelationCodecVersion, ue.CorrelationCodecVersion+1)
		},
			ue.InvalidCorrelationUnsupportedVersion,
			fmt.Sprintf("tapio.correlation.codec_version %d cannot be read: this reader reads codec versions 1 to %d", ue.CorrelationCodecVersion+1, ue.CorrelationCodecVersion)},
		{"codec version 0", func(a pcommon.Map, _ plog.LogRecord) { a.PutInt(ue.KeyCorrelationCodecVersion, 0) },
			ue.InvalidCorrelationUnsupportedVersion, "tapio.correlation.codec_version 0 cannot be read"},
		{"codec version as a string", func(a pcommon.Map, _ plog.LogRecord) { a.PutStr(ue.KeyCorrelationCodecVersion, "1") },
			ue.InvalidCorrelationUnsupportedVersion, "tapio.correlation.codec_version is a Str, not an integer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := mutate(tt.change)
			var re *ue.CorrelationRecordError
			if !errors.As(err, &re) {
				t.Fatalf("error %v (%T), want a *CorrelationRecordError", err, err)
			}
			if re.Reason != tt.reason || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("%s: %q, want %s: %q", re.Reason, err, tt.reason, tt.text)
			}
		})
	}
	// The reasons are what readers count invalid records by.
	var names []string
	for r := range ue.InvalidCorrelationReasonCount {
		names = append(names, r.String())
	}
	if got := strings.Join(names, " "); got != "missing_id missing_version bad_chain bad_time unsupported_version" {
		t.Fatalf("reasons %s", got)
	}
}

// A newer writer may add keys anywhere; this reader reads what it knows and ignores the rest, and
// ignores optional values of a type it does not expect.
func TestReadCorrelationRecordIgnoresUnknownKeys(t *testing.T) {
	got, err := mutate(func(a pcommon.Map, _ plog.LogRecord) {
		a.PutStr("tapio.correlation.blast_radius", "3 namespaces")
		a.PutEmptyMap("tapio.correlation.future").PutInt("x", 1)
		chainEntry(a, 1).PutStr("link.evidence", "SYN to a closed port")
		recs, _ := a.Get(ue.KeyRecommendations)
		recs.Slice().At(0).Map().PutBool("dry_run", true)
		recs.Slice().AppendEmpty().SetStr("not a map: skipped")
		recs.Slice().AppendEmpty().SetEmptyMap().PutStr(ue.RecommendationKeyHorizon, ue.HorizonShortTerm) // no action: skipped
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := fullRecord(); !reflect.DeepEqual(got, want) {
		t.Fatalf("read\n%+v\nwant\n%+v", got, want)
	}
	got, err = mutate(func(a pcommon.Map, _ plog.LogRecord) {
		a.PutStr(ue.KeyCorrelationEventCount, "four")
		a.PutStr(ue.KeyCorrelationConfidence, "high")
		chainEntry(a, 3).PutStr(ue.KeyHTTPResponseStatusCode, "500")
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.EventCount != 0 || got.HasConfidence || got.Chain[3].HTTPStatusCode != 0 {
		t.Fatalf("mistyped optional values read as %d, %v, %d", got.EventCount, got.HasConfidence, got.Chain[3].HTTPStatusCode)
	}
}

// Connectors older than the codec version key wrote layout 1 without it.
func TestReadCorrelationRecordWithoutCodecVersionIsVersionOne(t *testing.T) {
	got, err := mutate(func(a pcommon.Map, _ plog.LogRecord) { a.Remove(ue.KeyCorrelationCodecVersion) })
	if err != nil {
		t.Fatal(err)
	}
	if want := fullRecord(); !reflect.DeepEqual(got, want) {
		t.Fatalf("read\n%+v\nwant\n%+v", got, want)
	}
}

func TestReadCorrelationRecordFallbacks(t *testing.T) {
	t.Run("first and last seen widen to the chain", func(t *testing.T) {
		got, err := mutate(func(a pcommon.Map, _ plog.LogRecord) {
			a.PutStr(ue.KeyCorrelationFirstSeen, t0.Add(time.Second).Format(time.RFC3339Nano))
			a.Remove(ue.KeyCorrelationLastSeen)
		})
		if err != nil {
			t.Fatal(err)
		}
		if !got.FirstSeen.Equal(t0) || !got.LastSeen.Equal(t0.Add(640*time.Millisecond)) {
			t.Fatalf("first %s last %s, want the chain's extremes", got.FirstSeen, got.LastSeen)
		}
	})
	t.Run("else the timestamp", func(t *testing.T) {
		got, err := mutate(func(a pcommon.Map, rec plog.LogRecord) {
			a.Remove(ue.KeyCorrelationFirstSeen)
			a.Remove(ue.KeyCorrelationLastSeen)
			a.Remove(ue.KeyCorrelationChain)
			rec.SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Minute)))
		})
		if err != nil {
			t.Fatal(err)
		}
		if !got.FirstSeen.Equal(t0.Add(time.Minute)) || !got.LastSeen.Equal(got.FirstSeen) || got.Chain != nil {
			t.Fatalf("first %s last %s chain %v", got.FirstSeen, got.LastSeen, got.Chain)
		}
	})
	t.Run("trace ids from the record's trace id", func(t *testing.T) {
		got, err := mutate(func(a pcommon.Map, _ plog.LogRecord) { a.Remove(ue.KeyCorrelationTraceIDs) })
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.TraceIDs, []string{traceA.String()}) {
			t.Fatalf("trace ids %v", got.TraceIDs)
		}
	})
	t.Run("lists are nil when empty", func(t *testing.T) {
		got, err := mutate(func(a pcommon.Map, rec plog.LogRecord) {
			a.PutEmptySlice(ue.KeyCorrelationServices)
			a.PutEmptySlice(ue.KeyRecommendations)
			a.PutEmptySlice(ue.KeyCorrelationTraceIDs).AppendEmpty().SetStr("")
			rec.SetTraceID(pcommon.NewTraceIDEmpty())
		})
		if err != nil {
			t.Fatal(err)
		}
		if got.Services != nil || got.Recommendations != nil || got.TraceIDs != nil {
			t.Fatalf("services %#v recommendations %#v trace ids %#v", got.Services, got.Recommendations, got.TraceIDs)
		}
	})
}

const goldenRecords = "../../testdata/correlation-records"

// goldenLogs are the records the correlation connector emitted for its scenarios.
func goldenLogs(t testing.TB) map[string][]byte {
	paths, err := filepath.Glob(filepath.Join(filepath.FromSlash(goldenRecords), "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no golden correlation records in %s: %v", goldenRecords, err)
	}
	out := map[string][]byte{}
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = raw
	}
	return out
}

func eachRecord(ld plog.Logs, f func(plog.LogRecord)) {
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		sls := ld.ResourceLogs().At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			for k := 0; k < sls.At(j).LogRecords().Len(); k++ {
				f(sls.At(j).LogRecords().At(k))
			}
		}
	}
}

// Every record the connector produced reads, and writing what was read gives the same record.
func TestGoldenRecordsRead(t *testing.T) {
	for name, raw := range goldenLogs(t) {
		ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		n := 0
		eachRecord(ld, func(rec plog.LogRecord) {
			n++
			if !ue.IsCorrelationRecord(rec) {
				t.Errorf("%s: a record is not a correlation record", name)
			}
			r, err := ue.ReadCorrelationRecord(rec)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				return
			}
			if r.ID == "" || len(r.Chain) == 0 || r.Chain[0].EventName != r.RootCause.EventName || r.ObservedTime.IsZero() {
				t.Errorf("%s: %+v", name, r)
			}
			if want := written(r).Attributes().AsRaw(); !reflect.DeepEqual(rec.Attributes().AsRaw(), want) {
				t.Errorf("%s: rewriting what was read changes the record:\n%v\nwant\n%v", name, want, rec.Attributes().AsRaw())
			}
		})
		if n == 0 {
			t.Errorf("%s holds no records", name)
		}
	}
}

// A record read into one reused CorrelationRecord reads the same as into a new one, and once its
// arrays are large enough reading allocates nothing.
func TestReadCorrelationRecordIntoReuses(t *testing.T) {
	ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(goldenLogs(t)["oom_chain.json"])
	if err != nil {
		t.Fatal(err)
	}
	golden := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	var reused ue.CorrelationRecord
	for _, rec := range []plog.LogRecord{written(fullRecord()), golden, written(fullRecord())} {
		fresh, err := ue.ReadCorrelationRecord(rec)
		if err != nil {
			t.Fatal(err)
		}
		if err := ue.ReadCorrelationRecordInto(rec, &reused); err != nil {
			t.Fatal(err)
		}
		if got, want := written(reused).Attributes().AsRaw(), written(fresh).Attributes().AsRaw(); !reflect.DeepEqual(got, want) {
			t.Fatalf("read into a reused record\n%v\nwant\n%v", got, want)
		}
	}
	if n := testing.AllocsPerRun(10, func() { _ = ue.ReadCorrelationRecordInto(golden, &reused) }); n != 0 {
		t.Fatalf("reading into a reused record allocates %v times", n)
	}
}

// FuzzReadCorrelationRecord feeds arbitrary OTLP/JSON logs, or an arbitrary JSON object as the
// attributes of one record, to the reader: a malformed record is an error, never a panic, and a
// record that reads is read back the same once written.
func FuzzReadCorrelationRecord(f *testing.F) {
	for _, raw := range goldenLogs(f) {
		f.Add(raw)
	}
	attrs, err := json.Marshal(written(fullRecord()).Attributes().AsRaw())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(attrs)
	f.Add([]byte(`{"event.name":"tapio.correlation","tapio.correlation.id":"x","tapio.correlation.version":1,"tapio.correlation.chain":[{"event.name":"e","time":"bad"}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(raw)
		if err != nil {
			var m map[string]any
			if json.Unmarshal(raw, &m) != nil {
				return
			}
			ld = plog.NewLogs()
			rec := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
			if rec.Attributes().FromRaw(m) != nil {
				return
			}
		}
		eachRecord(ld, func(rec plog.LogRecord) {
			r, err := ue.ReadCorrelationRecord(rec)
			if err != nil {
				var re *ue.CorrelationRecordError
				if !errors.As(err, &re) || re.Reason >= ue.InvalidCorrelationReasonCount {
					t.Fatalf("error %v (%T) carries no reason", err, err)
				}
				return
			}
			again, err := ue.ReadCorrelationRecord(written(r))
			if err != nil {
				t.Fatalf("a record that read does not read once written: %v", err)
			}
			// %#v, not DeepEqual: a NaN confidence is the same NaN.
			if a, b := fmt.Sprintf("%#v", again), fmt.Sprintf("%#v", r); a != b {
				t.Fatalf("written and read again\n%s\nwant\n%s", a, b)
			}
		})
	})
}
