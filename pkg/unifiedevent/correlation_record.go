package unifiedevent

import (
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// CorrelationCodecVersion is the layout of the tapio.correlation records this package writes, in
// tapio.correlation.codec_version. Records without that key come from connectors older than it and
// are in layout 1.
const CorrelationCodecVersion = 1

// CorrelationRecord is one tapio.correlation record (design section 4): the contract between the
// correlation connector, which writes it, and the impact exporter, which reads it. Both go through
// WriteCorrelationRecord and ReadCorrelationRecord, so that the layout is spelled once.
//
// A writer may keep one CorrelationRecord, and the backing arrays of its slices, for every record
// it writes: nothing in it is a pointer, and WriteCorrelationRecord keeps no reference to it.
// ReadCorrelationRecord returns nil, never empty, lists; ReadCorrelationRecordInto reuses a record
// the same way.
type CorrelationRecord struct {
	ID string
	// Version is bumped on every update of the correlation; at least 1.
	Version int64
	// Confidence (0–1, the chain's weakest link) is written when HasConfidence; the reader sets
	// HasConfidence when the record carries one.
	Confidence    float64
	HasConfidence bool
	RootCause     RootCause
	EventCount    int64
	// FirstSeen and LastSeen are the times of the earliest and latest event. The reader widens
	// them to the chain's extremes and falls back to Time when neither gives one.
	FirstSeen, LastSeen time.Time
	// Chain lists the events cause → effect.
	Chain []ChainEntry
	// TraceIDs are hex. The reader falls back to PrimaryTraceID when the record lists none, as
	// older connectors put the primary trace only on the record.
	TraceIDs  []string
	Services  []string
	MergedIDs []string
	// Recommendations are ordered immediate, short-term, long-term.
	Recommendations []Recommendation
	// Summary is the record's body: one sentence.
	Summary string
	// PrimaryTraceID is the record's own trace id: the correlation's first trace, if any.
	PrimaryTraceID pcommon.TraceID
	// Time is the record's timestamp (when the root cause happened) and ObservedTime when it was
	// emitted; a zero time is not written.
	Time, ObservedTime time.Time
}

// RootCause names the event that explains the rest of the chain.
type RootCause struct {
	EventID   string
	EventName string
	EntityID  string
	Narrative string
}

// ChainEntry is one event of the chain. Time, Layer, EventName, EntityID, Narrative and the link
// reason are always written; every other field only when set.
type ChainEntry struct {
	Time      time.Time
	Layer     string
	EventName string
	EntityID  string
	Narrative string
	EventID   string
	// TraceID and SpanID are hex, present only when the event had real trace context.
	TraceID string
	SpanID  string
	// ParentSpanID is set on span events that have a parent: a span event without one is a root
	// span, where a request entered the system.
	ParentSpanID string
	SpanKind     string
	// The facts an impact exporter needs about the affected services, as the event carried them.
	Service        string
	HTTPRoute      string
	HTTPStatusCode int64
	EndUserID      string
	UserID         string
	SessionID      string
	// Peer is the host:port a client failure was about.
	Peer string
	// Count is how many events the entry stands for when more than one: the log_count of a
	// record that merged repeats of one event. Written only when above 1; read as 1 when absent.
	Count  int64
	Link   ChainLink
	Metric MetricBreach
}

// ChainLink says why an event joined the chain.
type ChainLink struct {
	Reason string
	// Confidence is written when HasConfidence; the root carries none.
	Confidence    float64
	HasConfidence bool
	Detail        string
	CauseEventID  string
}

// MetricBreach is the threshold breach a chain entry was made from. It is written, and read, only
// when Rule is set: a breach is named by its rule.
type MetricBreach struct {
	Rule   string
	Metric string
	Value  float64
}

// Recommendation is one recommended action: a sentence for people and, when set, the structured
// remediation a tool can carry out (for example a Kubernetes command): what kind of action, on
// which target, with which parameters.
type Recommendation struct {
	Horizon    string
	Action     string
	Kind       string
	Target     string
	Parameters []RecommendationParameter
}

// RecommendationParameter is one named parameter of a structured remediation; their order is kept.
type RecommendationParameter struct {
	Name, Value string
}

// IsCorrelationRecord reports whether a log record is a tapio.correlation record.
func IsCorrelationRecord(rec plog.LogRecord) bool {
	return Of(rec.Attributes()).Name() == string(CorrelationName)
}

// correlationAttributes is how many attributes a record carries at most.
const correlationAttributes = 18

// WriteCorrelationRecord writes r onto rec, a new log record: its event name, codec version and
// attributes, body, timestamps, trace id and severity. It allocates only what pdata holds.
func WriteCorrelationRecord(rec plog.LogRecord, r *CorrelationRecord) {
	attrs := rec.Attributes()
	attrs.EnsureCapacity(correlationAttributes)
	attrs.PutStr(KeyEventName, string(CorrelationName))
	attrs.PutInt(KeyCorrelationCodecVersion, CorrelationCodecVersion)
	attrs.PutStr(KeyCorrelationID, r.ID)
	attrs.PutInt(KeyCorrelationVersion, r.Version)
	if r.HasConfidence {
		attrs.PutDouble(KeyCorrelationConfidence, r.Confidence)
	}
	attrs.PutStr(KeyRootCauseEventID, r.RootCause.EventID)
	attrs.PutStr(KeyRootCauseEventName, r.RootCause.EventName)
	attrs.PutStr(KeyRootCauseEntityID, r.RootCause.EntityID)
	attrs.PutStr(KeyRootCauseNarrative, r.RootCause.Narrative)
	attrs.PutInt(KeyCorrelationEventCount, r.EventCount)
	chain := attrs.PutEmptySlice(KeyCorrelationChain)
	chain.EnsureCapacity(len(r.Chain))
	for i := range r.Chain {
		writeChainEntry(chain.AppendEmpty().SetEmptyMap(), &r.Chain[i])
	}
	putStrs(attrs, KeyCorrelationTraceIDs, r.TraceIDs)
	putStrs(attrs, KeyCorrelationServices, r.Services)
	putTime(attrs, KeyCorrelationFirstSeen, r.FirstSeen)
	putTime(attrs, KeyCorrelationLastSeen, r.LastSeen)
	if len(r.MergedIDs) > 0 {
		putStrs(attrs, KeyCorrelationMergedIDs, r.MergedIDs)
	}
	recs := attrs.PutEmptySlice(KeyRecommendations)
	recs.EnsureCapacity(len(r.Recommendations))
	for i := range r.Recommendations {
		writeRecommendation(recs.AppendEmpty().SetEmptyMap(), &r.Recommendations[i])
	}

	if !r.Time.IsZero() {
		rec.SetTimestamp(pcommon.NewTimestampFromTime(r.Time))
	}
	if !r.ObservedTime.IsZero() {
		rec.SetObservedTimestamp(pcommon.NewTimestampFromTime(r.ObservedTime))
	}
	SetSeverity(rec, plog.SeverityNumberError)
	if !r.PrimaryTraceID.IsEmpty() {
		rec.SetTraceID(r.PrimaryTraceID)
	}
	rec.Body().SetStr(r.Summary)
}

// chainEntryAttributes is how many keys a chain entry carries at most, short of a threshold breach.
const chainEntryAttributes = 17

func writeChainEntry(m pcommon.Map, e *ChainEntry) {
	m.EnsureCapacity(chainEntryAttributes)
	putTime(m, ChainKeyTime, e.Time)
	m.PutStr(KeyLayer, e.Layer)
	m.PutStr(KeyEventName, e.EventName)
	m.PutStr(KeyEntityID, e.EntityID)
	m.PutStr(ChainKeyNarrative, e.Narrative)
	putStrIfSet(m, KeyEventID, e.EventID)
	putStrIfSet(m, ChainKeyTraceID, e.TraceID)
	putStrIfSet(m, ChainKeySpanID, e.SpanID)
	putStrIfSet(m, ChainKeyParentSpanID, e.ParentSpanID)
	m.PutStr(ChainKeyLinkReason, e.Link.Reason)
	if e.Link.HasConfidence {
		m.PutDouble(ChainKeyLinkConfidence, e.Link.Confidence)
	}
	putStrIfSet(m, ChainKeyLinkDetail, e.Link.Detail)
	putStrIfSet(m, ChainKeyLinkCause, e.Link.CauseEventID)
	putStrIfSet(m, KeyServiceName, e.Service)
	putStrIfSet(m, KeyHTTPRoute, e.HTTPRoute)
	putStrIfSet(m, ChainKeySpanKind, e.SpanKind)
	if e.HTTPStatusCode != 0 {
		m.PutInt(KeyHTTPResponseStatusCode, e.HTTPStatusCode)
	}
	putStrIfSet(m, KeyEndUserID, e.EndUserID)
	putStrIfSet(m, KeyUserID, e.UserID)
	putStrIfSet(m, KeySessionID, e.SessionID)
	putStrIfSet(m, ChainKeyPeer, e.Peer)
	if e.Count > 1 {
		m.PutInt(KeyLogCount, e.Count)
	}
	if e.Metric.Rule != "" {
		m.PutStr(ChainKeyMetricRule, e.Metric.Rule)
		m.PutStr(ChainKeyMetricName, e.Metric.Metric)
		m.PutDouble(ChainKeyMetricValue, e.Metric.Value)
	}
}

func writeRecommendation(m pcommon.Map, r *Recommendation) {
	m.PutStr(RecommendationKeyHorizon, r.Horizon)
	m.PutStr(RecommendationKeyAction, r.Action)
	putStrIfSet(m, RecommendationKeyKind, r.Kind)
	putStrIfSet(m, RecommendationKeyTarget, r.Target)
	if len(r.Parameters) > 0 {
		params := m.PutEmptyMap(RecommendationKeyParameters)
		params.EnsureCapacity(len(r.Parameters))
		for _, p := range r.Parameters {
			params.PutStr(p.Name, p.Value)
		}
	}
}

func putStrIfSet(m pcommon.Map, key, value string) {
	if value != "" {
		m.PutStr(key, value)
	}
}

func putStrs(m pcommon.Map, key string, values []string) {
	s := m.PutEmptySlice(key)
	s.EnsureCapacity(len(values))
	for _, v := range values {
		s.AppendEmpty().SetStr(v)
	}
}

func putTime(m pcommon.Map, key string, t time.Time) {
	if !t.IsZero() {
		m.PutStr(key, t.UTC().Format(time.RFC3339Nano))
	}
}

// InvalidCorrelationReason says why a tapio.correlation record could not be read. Its String is
// the reason readers count invalid records by.
type InvalidCorrelationReason uint8

const (
	InvalidCorrelationMissingID InvalidCorrelationReason = iota
	InvalidCorrelationMissingVersion
	InvalidCorrelationBadChain
	InvalidCorrelationBadTime
	InvalidCorrelationUnsupportedVersion
	InvalidCorrelationReasonCount
)

var invalidCorrelationReasonNames = [InvalidCorrelationReasonCount]string{
	InvalidCorrelationMissingID:          "missing_id",
	InvalidCorrelationMissingVersion:     "missing_version",
	InvalidCorrelationBadChain:           "bad_chain",
	InvalidCorrelationBadTime:            "bad_time",
	InvalidCorrelationUnsupportedVersion: "unsupported_version",
}

func (r InvalidCorrelationReason) String() string {
	if r < InvalidCorrelationReasonCount {
		return invalidCorrelationReasonNames[r]
	}
	return fmt.Sprintf("InvalidCorrelationReason(%d)", uint8(r))
}

// CorrelationRecordError is the error of ReadCorrelationRecord: why the record cannot be read, and
// what in it is wrong.
type CorrelationRecordError struct {
	Reason InvalidCorrelationReason
	err    error
}

func (e *CorrelationRecordError) Error() string { return e.err.Error() }

func (e *CorrelationRecordError) Unwrap() error { return e.err }

func invalidCorrelation(reason InvalidCorrelationReason, format string, args ...any) error {
	return &CorrelationRecordError{Reason: reason, err: fmt.Errorf(format, args...)}
}

// ReadCorrelationRecord reads a tapio.correlation record (see IsCorrelationRecord) written in any
// codec version up to CorrelationCodecVersion. Keys it does not know are ignored, and so are
// optional values of the wrong type. Its errors are *CorrelationRecordError; the record returned
// with one is incomplete. Its strings are those of rec.
func ReadCorrelationRecord(rec plog.LogRecord) (CorrelationRecord, error) {
	var r CorrelationRecord
	err := ReadCorrelationRecordInto(rec, &r)
	return r, err
}

// ReadCorrelationRecordInto is ReadCorrelationRecord into r: every field is overwritten, and the
// arrays of r's slices are reused, so that a reader that converts each record at once can keep
// one CorrelationRecord per worker instead of allocating a chain per record. Lists the record does
// not have are empty (nil only if they were nil in r).
func ReadCorrelationRecordInto(rec plog.LogRecord, r *CorrelationRecord) error {
	*r = CorrelationRecord{
		Chain:           r.Chain[:0],
		TraceIDs:        r.TraceIDs[:0],
		Services:        r.Services[:0],
		MergedIDs:       r.MergedIDs[:0],
		Recommendations: r.Recommendations[:0],
	}
	attrs := recordMap{rec.Attributes()}
	if err := checkCodecVersion(attrs); err != nil {
		return err
	}
	// Version 1 is the only layout so far; a later one branches here on the version.
	r.ID = attrs.str(KeyCorrelationID)
	if r.ID == "" {
		return invalidCorrelation(InvalidCorrelationMissingID, "%s is missing", KeyCorrelationID)
	}
	version, ok := attrs.m.Get(KeyCorrelationVersion)
	if !ok || version.Type() != pcommon.ValueTypeInt || version.Int() < 1 {
		return invalidCorrelation(InvalidCorrelationMissingVersion, "%s is missing or not a positive integer", KeyCorrelationVersion)
	}
	r.Version = version.Int()
	r.Summary = rec.Body().AsString()
	r.Confidence, r.HasConfidence = attrs.float(KeyCorrelationConfidence)
	r.RootCause = RootCause{
		EventID:   attrs.str(KeyRootCauseEventID),
		EventName: attrs.str(KeyRootCauseEventName),
		EntityID:  attrs.str(KeyRootCauseEntityID),
		Narrative: attrs.str(KeyRootCauseNarrative),
	}
	if v, ok := attrs.m.Get(KeyCorrelationEventCount); ok && v.Type() == pcommon.ValueTypeInt {
		r.EventCount = v.Int()
	}
	r.TraceIDs = attrs.appendStrs(r.TraceIDs, KeyCorrelationTraceIDs)
	r.Services = attrs.appendStrs(r.Services, KeyCorrelationServices)
	r.MergedIDs = attrs.appendStrs(r.MergedIDs, KeyCorrelationMergedIDs)
	r.PrimaryTraceID = rec.TraceID()
	if len(r.TraceIDs) == 0 && !r.PrimaryTraceID.IsEmpty() {
		r.TraceIDs = append(r.TraceIDs, hex.EncodeToString(r.PrimaryTraceID[:]))
	}
	if ts := rec.Timestamp(); ts != 0 {
		r.Time = ts.AsTime().UTC()
	}
	if ts := rec.ObservedTimestamp(); ts != 0 {
		r.ObservedTime = ts.AsTime().UTC()
	}

	if v, ok := attrs.m.Get(KeyCorrelationChain); ok {
		if v.Type() != pcommon.ValueTypeSlice {
			return invalidCorrelation(InvalidCorrelationBadChain, "%s is a %s, not a slice", KeyCorrelationChain, v.Type())
		}
		chain := v.Slice()
		r.Chain = slices.Grow(r.Chain, chain.Len())
		for i := 0; i < chain.Len(); i++ {
			m := chain.At(i)
			if m.Type() != pcommon.ValueTypeMap {
				return invalidCorrelation(InvalidCorrelationBadChain, "%s[%d] is a %s, not a map", KeyCorrelationChain, i, m.Type())
			}
			r.Chain = append(r.Chain, ChainEntry{})
			if err := readChainEntry(recordMap{m.Map()}, &r.Chain[i]); err != nil {
				return invalidCorrelation(InvalidCorrelationBadChain, "%s[%d]: %v", KeyCorrelationChain, i, err)
			}
		}
	}
	r.Recommendations = appendRecommendations(r.Recommendations, attrs)

	var err error
	if r.FirstSeen, err = attrs.parseTime(KeyCorrelationFirstSeen); err != nil {
		return invalidCorrelation(InvalidCorrelationBadTime, "%v", err)
	}
	if r.LastSeen, err = attrs.parseTime(KeyCorrelationLastSeen); err != nil {
		return invalidCorrelation(InvalidCorrelationBadTime, "%v", err)
	}
	for i := range r.Chain {
		t := r.Chain[i].Time
		if t.IsZero() {
			continue
		}
		if r.FirstSeen.IsZero() || t.Before(r.FirstSeen) {
			r.FirstSeen = t
		}
		if t.After(r.LastSeen) {
			r.LastSeen = t
		}
	}
	if r.FirstSeen.IsZero() {
		r.FirstSeen = r.Time
	}
	if r.LastSeen.IsZero() {
		r.LastSeen = r.FirstSeen
	}
	if r.FirstSeen.IsZero() {
		return invalidCorrelation(InvalidCorrelationBadTime, "the record has no time: no %s, no chain times, no timestamp", KeyCorrelationFirstSeen)
	}
	return nil
}

// checkCodecVersion refuses a record written in a layout this reader does not know, before
// anything of it is read by the wrong rules.
func checkCodecVersion(attrs recordMap) error {
	v, ok := attrs.m.Get(KeyCorrelationCodecVersion)
	if !ok {
		return nil // written before the key existed: layout 1
	}
	if v.Type() != pcommon.ValueTypeInt {
		return invalidCorrelation(InvalidCorrelationUnsupportedVersion, "%s is a %s, not an integer; this reader reads codec versions 1 to %d",
			KeyCorrelationCodecVersion, v.Type(), CorrelationCodecVersion)
	}
	if n := v.Int(); n < 1 || n > CorrelationCodecVersion {
		return invalidCorrelation(InvalidCorrelationUnsupportedVersion, "%s %d cannot be read: this reader reads codec versions 1 to %d (a newer connector needs a newer reader)",
			KeyCorrelationCodecVersion, n, CorrelationCodecVersion)
	}
	return nil
}

func readChainEntry(m recordMap, e *ChainEntry) error {
	*e = ChainEntry{
		Layer:        m.str(KeyLayer),
		EventName:    m.str(KeyEventName),
		EntityID:     m.str(KeyEntityID),
		Narrative:    m.str(ChainKeyNarrative),
		EventID:      m.str(KeyEventID),
		TraceID:      m.str(ChainKeyTraceID),
		SpanID:       m.str(ChainKeySpanID),
		ParentSpanID: m.str(ChainKeyParentSpanID),
		SpanKind:     m.str(ChainKeySpanKind),
		Service:      m.str(KeyServiceName),
		HTTPRoute:    m.str(KeyHTTPRoute),
		EndUserID:    m.str(KeyEndUserID),
		UserID:       m.str(KeyUserID),
		SessionID:    m.str(KeySessionID),
		Peer:         m.str(ChainKeyPeer),
		Link: ChainLink{
			Reason:       m.str(ChainKeyLinkReason),
			Detail:       m.str(ChainKeyLinkDetail),
			CauseEventID: m.str(ChainKeyLinkCause),
		},
	}
	if e.EventName == "" {
		return errors.New(KeyEventName + " is missing")
	}
	t, err := m.parseTime(ChainKeyTime)
	if err != nil {
		return err
	}
	e.Time = t
	if n := RepeatCount(m.m); n > 1 {
		e.Count = n
	}
	e.Link.Confidence, e.Link.HasConfidence = m.float(ChainKeyLinkConfidence)
	if v, ok := m.m.Get(KeyHTTPResponseStatusCode); ok && v.Type() == pcommon.ValueTypeInt {
		e.HTTPStatusCode = v.Int()
	}
	if rule := m.str(ChainKeyMetricRule); rule != "" {
		e.Metric.Rule = rule
		e.Metric.Metric = m.str(ChainKeyMetricName)
		e.Metric.Value, _ = m.float(ChainKeyMetricValue)
	}
	return nil
}

// appendRecommendations keeps the recommendations that say what to do; anything else in the list
// is skipped rather than failing the record, as a recommendation is advice, not evidence.
func appendRecommendations(out []Recommendation, attrs recordMap) []Recommendation {
	v, ok := attrs.m.Get(KeyRecommendations)
	if !ok || v.Type() != pcommon.ValueTypeSlice {
		return out
	}
	list := v.Slice()
	for i := 0; i < list.Len(); i++ {
		if list.At(i).Type() != pcommon.ValueTypeMap {
			continue
		}
		m := recordMap{list.At(i).Map()}
		r := Recommendation{
			Horizon: m.str(RecommendationKeyHorizon),
			Action:  m.str(RecommendationKeyAction),
			Kind:    m.str(RecommendationKeyKind),
			Target:  m.str(RecommendationKeyTarget),
		}
		if r.Action == "" {
			continue
		}
		if p, ok := m.m.Get(RecommendationKeyParameters); ok && p.Type() == pcommon.ValueTypeMap {
			r.Parameters = readParameters(p.Map())
		}
		out = append(out, r)
	}
	return out
}

// readParameters reads the parameters in order; a name given twice keeps its first value, as a
// map lookup would.
func readParameters(m pcommon.Map) []RecommendationParameter {
	var out []RecommendationParameter
	m.Range(func(name string, v pcommon.Value) bool {
		for _, p := range out {
			if p.Name == name {
				return true
			}
		}
		out = append(out, RecommendationParameter{Name: name, Value: v.AsString()})
		return true
	})
	return out
}

// recordMap reads the values of a correlation record or of one of its nested maps.
type recordMap struct{ m pcommon.Map }

func (r recordMap) str(key string) string {
	if v, ok := r.m.Get(key); ok && v.Type() == pcommon.ValueTypeStr {
		return v.Str()
	}
	return ""
}

// float reads a double, or an int as one.
func (r recordMap) float(key string) (float64, bool) {
	v, ok := r.m.Get(key)
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

// appendStrs appends a list of strings to out, skipping empty and non-string values.
func (r recordMap) appendStrs(out []string, key string) []string {
	v, ok := r.m.Get(key)
	if !ok || v.Type() != pcommon.ValueTypeSlice {
		return out
	}
	s := v.Slice()
	for i := 0; i < s.Len(); i++ {
		if x := s.At(i); x.Type() == pcommon.ValueTypeStr && x.Str() != "" {
			out = append(out, x.Str())
		}
	}
	return out
}

// parseTime reads an RFC 3339 time; an absent or empty value is the zero time.
func (r recordMap) parseTime(key string) (time.Time, error) {
	s := r.str(key)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s = %q is not RFC 3339", key, s)
	}
	return t.UTC(), nil
}
