package impactexporter

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/yairfalse/tapio/pkg/impactapi"
	ue "github.com/yairfalse/tapio/pkg/unifiedevent"
)

// invalidReason says why a tapio.correlation record could not be read.
type invalidReason int

const (
	invalidNoID invalidReason = iota
	invalidNoVersion
	invalidChain
	invalidTime
	invalidReasonCount
)

var invalidReasonNames = [invalidReasonCount]string{
	invalidNoID:      "missing_id",
	invalidNoVersion: "missing_version",
	invalidChain:     "bad_chain",
	invalidTime:      "bad_time",
}

type recordError struct {
	reason invalidReason
	err    error
}

func (e *recordError) Error() string { return e.err.Error() }

func invalid(reason invalidReason, format string, args ...any) error {
	return &recordError{reason: reason, err: fmt.Errorf(format, args...)}
}

// isCorrelation reports whether a log record is a correlation record.
func isCorrelation(rec plog.LogRecord) bool {
	v, ok := rec.Attributes().Get(ue.KeyEventName)
	return ok && v.Type() == pcommon.ValueTypeStr && v.Str() == string(ue.CorrelationName)
}

// readCorrelation reads the facts of a correlation record (design section 4) into an unscored
// incident. observed is the record's observed time, zero when it has none.
func readCorrelation(rec plog.LogRecord) (inc impactapi.Incident, observed time.Time, err error) {
	attrs := rec.Attributes()
	inc.ID = str(attrs, ue.KeyCorrelationID)
	if inc.ID == "" {
		return inc, observed, invalid(invalidNoID, "%s is missing", ue.KeyCorrelationID)
	}
	version, ok := attrs.Get(ue.KeyCorrelationVersion)
	if !ok || version.Type() != pcommon.ValueTypeInt || version.Int() < 1 {
		return inc, observed, invalid(invalidNoVersion, "%s is missing or not a positive integer", ue.KeyCorrelationVersion)
	}
	inc.Version = version.Int()
	inc.Summary = rec.Body().AsString()
	if c, ok := float(attrs, ue.KeyCorrelationConfidence); ok {
		inc.Confidence = &c
	}
	inc.RootCause = impactapi.RootCause{
		EventID:   str(attrs, ue.KeyRootCauseEventID),
		EventName: str(attrs, ue.KeyRootCauseEventName),
		EntityID:  str(attrs, ue.KeyRootCauseEntityID),
		Narrative: str(attrs, ue.KeyRootCauseNarrative),
	}
	if v, ok := attrs.Get(ue.KeyCorrelationEventCount); ok && v.Type() == pcommon.ValueTypeInt {
		inc.EventCount = v.Int()
	}
	inc.TraceIDs = strs(attrs, ue.KeyCorrelationTraceIDs)
	inc.Services = strs(attrs, ue.KeyCorrelationServices)
	inc.MergedIDs = strs(attrs, ue.KeyCorrelationMergedIDs)

	if v, ok := attrs.Get(ue.KeyCorrelationChain); ok {
		if v.Type() != pcommon.ValueTypeSlice {
			return inc, observed, invalid(invalidChain, "%s is a %s, not a slice", ue.KeyCorrelationChain, v.Type())
		}
		chain := v.Slice()
		inc.Chain = make([]impactapi.ChainEntry, 0, chain.Len())
		for i := 0; i < chain.Len(); i++ {
			m := chain.At(i)
			if m.Type() != pcommon.ValueTypeMap {
				return inc, observed, invalid(invalidChain, "%s[%d] is a %s, not a map", ue.KeyCorrelationChain, i, m.Type())
			}
			entry, err := readChainEntry(m.Map())
			if err != nil {
				return inc, observed, invalid(invalidChain, "%s[%d]: %v", ue.KeyCorrelationChain, i, err)
			}
			inc.Chain = append(inc.Chain, entry)
		}
	}
	if v, ok := attrs.Get(ue.KeyRecommendations); ok && v.Type() == pcommon.ValueTypeSlice {
		recs := v.Slice()
		for i := 0; i < recs.Len(); i++ {
			if recs.At(i).Type() != pcommon.ValueTypeMap {
				continue
			}
			m := recs.At(i).Map()
			r := impactapi.Recommendation{Horizon: str(m, ue.RecommendationKeyHorizon), Action: str(m, ue.RecommendationKeyAction)}
			if r.Action != "" {
				inc.Recommendations = append(inc.Recommendations, r)
			}
		}
	}

	// first_seen / last_seen, else the chain's extremes, else the record timestamp.
	inc.FirstSeen, err = timeAttr(attrs, ue.KeyCorrelationFirstSeen)
	if err != nil {
		return inc, observed, err
	}
	inc.LastSeen, err = timeAttr(attrs, ue.KeyCorrelationLastSeen)
	if err != nil {
		return inc, observed, err
	}
	for _, e := range inc.Chain {
		if e.Time.IsZero() {
			continue
		}
		if inc.FirstSeen.IsZero() || e.Time.Before(inc.FirstSeen) {
			inc.FirstSeen = e.Time
		}
		if e.Time.After(inc.LastSeen) {
			inc.LastSeen = e.Time
		}
	}
	if inc.FirstSeen.IsZero() && rec.Timestamp() != 0 {
		inc.FirstSeen = rec.Timestamp().AsTime().UTC()
	}
	if inc.LastSeen.IsZero() {
		inc.LastSeen = inc.FirstSeen
	}
	if inc.FirstSeen.IsZero() {
		return inc, observed, invalid(invalidTime, "the record has no time: no %s, no chain times, no timestamp", ue.KeyCorrelationFirstSeen)
	}
	if rec.ObservedTimestamp() != 0 {
		observed = rec.ObservedTimestamp().AsTime().UTC()
	}
	// Lists are [] in the API, never null.
	inc.TraceIDs = nonNil(inc.TraceIDs)
	inc.Services = nonNil(inc.Services)
	inc.Chain = nonNil(inc.Chain)
	inc.Recommendations = nonNil(inc.Recommendations)
	if len(inc.TraceIDs) == 0 {
		// An older connector may put the primary trace only on the record.
		if id := rec.TraceID(); !id.IsEmpty() {
			inc.TraceIDs = []string{id.String()}
		}
	}
	return inc, observed, nil
}

func readChainEntry(m pcommon.Map) (impactapi.ChainEntry, error) {
	e := impactapi.ChainEntry{
		Layer:     str(m, ue.KeyLayer),
		EventName: str(m, ue.KeyEventName),
		EntityID:  str(m, ue.KeyEntityID),
		Narrative: str(m, ue.ChainKeyNarrative),
		EventID:   str(m, ue.KeyEventID),
		TraceID:   str(m, ue.ChainKeyTraceID),
		SpanID:    str(m, ue.ChainKeySpanID),
		SpanKind:  str(m, ue.ChainKeySpanKind),
		Service:   str(m, ue.KeyServiceName),
		HTTPRoute: str(m, ue.KeyHTTPRoute),
		EndUserID: str(m, ue.KeyEndUserID),
		UserID:    str(m, ue.KeyUserID),
		SessionID: str(m, ue.KeySessionID),
		Peer:      str(m, ue.ChainKeyPeer),
		Link: impactapi.Link{
			Reason:       str(m, ue.ChainKeyLinkReason),
			Detail:       str(m, ue.ChainKeyLinkDetail),
			CauseEventID: str(m, ue.ChainKeyLinkCause),
		},
	}
	if e.EventName == "" {
		return e, errors.New(ue.KeyEventName + " is missing")
	}
	t, err := timeAttr(m, ue.ChainKeyTime)
	if err != nil {
		return e, err
	}
	e.Time = t
	if c, ok := float(m, ue.ChainKeyLinkConfidence); ok {
		e.Link.Confidence = &c
	}
	if v, ok := m.Get(ue.KeyHTTPResponseStatusCode); ok && v.Type() == pcommon.ValueTypeInt {
		e.HTTPStatusCode = v.Int()
	}
	return e, nil
}

func str(m pcommon.Map, key string) string {
	if v, ok := m.Get(key); ok && v.Type() == pcommon.ValueTypeStr {
		return v.Str()
	}
	return ""
}

func float(m pcommon.Map, key string) (float64, bool) {
	v, ok := m.Get(key)
	if !ok {
		return 0, false
	}
	switch v.Type() {
	case pcommon.ValueTypeDouble:
		return v.Double(), true
	case pcommon.ValueTypeInt:
		return float64(v.Int()), true
	}
	return 0, false
}

func strs(m pcommon.Map, key string) []string {
	v, ok := m.Get(key)
	if !ok || v.Type() != pcommon.ValueTypeSlice {
		return nil
	}
	s := v.Slice()
	out := make([]string, 0, s.Len())
	for i := 0; i < s.Len(); i++ {
		if x := s.At(i); x.Type() == pcommon.ValueTypeStr && x.Str() != "" {
			out = append(out, x.Str())
		}
	}
	return out
}

func timeAttr(m pcommon.Map, key string) (time.Time, error) {
	s := str(m, key)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, invalid(invalidTime, "%s = %q is not RFC 3339", key, s)
	}
	return t.UTC(), nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
