package impactexporter

import (
	"errors"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/yairfalse/tapio/pkg/impactapi"
	ue "github.com/yairfalse/tapio/pkg/unifiedevent"
)

// invalidReasonOf says why a record could not be read, as self-telemetry counts it.
func invalidReasonOf(err error) ue.InvalidCorrelationReason {
	var re *ue.CorrelationRecordError
	if errors.As(err, &re) {
		return re.Reason
	}
	// The codec's errors all carry a reason; were one not to, the record is still counted, not lost.
	return ue.InvalidCorrelationBadChain
}

// correlationRecords are the codec's records that readCorrelation reads into and converts at
// once: pooled, so that reading a batch allocates no chain beside the incidents' own.
var correlationRecords = sync.Pool{New: func() any { return new(ue.CorrelationRecord) }}

// readCorrelation reads a correlation record (design section 4) with the schema's codec into an
// unscored incident. observed is the record's observed time, zero when it has none.
func readCorrelation(rec plog.LogRecord) (inc impactapi.Incident, observed time.Time, err error) {
	r := correlationRecords.Get().(*ue.CorrelationRecord)
	defer func() {
		// The incident took the string lists; the chain and recommendation arrays are kept, cleared
		// so that a pooled record does not keep the batch's strings alive.
		clear(r.Chain)
		clear(r.Recommendations)
		*r = ue.CorrelationRecord{Chain: r.Chain[:0], Recommendations: r.Recommendations[:0]}
		correlationRecords.Put(r)
	}()
	if err := ue.ReadCorrelationRecordInto(rec, r); err != nil {
		return inc, observed, err
	}
	return incidentOf(r), r.ObservedTime, nil
}

// incidentOf is the unscored incident of a correlation record. It takes r's string lists and copies
// the chain and recommendations. Its lists are [] in the API, never null.
func incidentOf(r *ue.CorrelationRecord) impactapi.Incident {
	inc := impactapi.Incident{
		ID:      r.ID,
		Version: r.Version,
		Summary: r.Summary,
		RootCause: impactapi.RootCause{
			EventID:   r.RootCause.EventID,
			EventName: r.RootCause.EventName,
			EntityID:  r.RootCause.EntityID,
			Narrative: r.RootCause.Narrative,
		},
		EventCount:      r.EventCount,
		FirstSeen:       r.FirstSeen,
		LastSeen:        r.LastSeen,
		TraceIDs:        nonNil(r.TraceIDs),
		Services:        nonNil(r.Services),
		MergedIDs:       r.MergedIDs,
		Chain:           make([]impactapi.ChainEntry, len(r.Chain)),
		Recommendations: make([]impactapi.Recommendation, 0, len(r.Recommendations)),
	}
	if r.HasConfidence {
		c := r.Confidence
		inc.Confidence = &c
	}
	for i := range r.Chain {
		e := &r.Chain[i]
		inc.Chain[i] = impactapi.ChainEntry{
			Time:           e.Time,
			Layer:          e.Layer,
			EventName:      e.EventName,
			EntityID:       e.EntityID,
			Narrative:      e.Narrative,
			EventID:        e.EventID,
			TraceID:        e.TraceID,
			SpanID:         e.SpanID,
			ParentSpanID:   e.ParentSpanID,
			SpanKind:       e.SpanKind,
			Service:        e.Service,
			HTTPRoute:      e.HTTPRoute,
			HTTPStatusCode: e.HTTPStatusCode,
			EndUserID:      e.EndUserID,
			UserID:         e.UserID,
			SessionID:      e.SessionID,
			Peer:           e.Peer,
			Link: impactapi.Link{
				Reason:       e.Link.Reason,
				Detail:       e.Link.Detail,
				CauseEventID: e.Link.CauseEventID,
			},
		}
		if e.Link.HasConfidence {
			c := e.Link.Confidence
			inc.Chain[i].Link.Confidence = &c
		}
		if e.Count > 1 {
			inc.Chain[i].Count = e.Count
		}
	}
	for _, rec := range r.Recommendations {
		inc.Recommendations = append(inc.Recommendations, impactapi.Recommendation{Horizon: rec.Horizon, Action: rec.Action})
	}
	return inc
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// invalidReasonNames are the codec's reasons by index, as self-telemetry labels them.
func invalidReasonNames() []string {
	names := make([]string, ue.InvalidCorrelationReasonCount)
	for r := range ue.InvalidCorrelationReasonCount {
		names[r] = r.String()
	}
	return names
}
