package unifiedevent

// Keys of the correlation connector's output records (design section 4).
const (
	KeyCorrelationID         = "tapio.correlation.id"
	KeyCorrelationVersion    = "tapio.correlation.version"
	KeyCorrelationConfidence = "tapio.correlation.confidence"
	KeyCorrelationChain      = "tapio.correlation.chain"
	KeyCorrelationTraceIDs   = "tapio.correlation.trace_ids"
	KeyCorrelationServices   = "tapio.correlation.services"
	KeyCorrelationEventCount = "tapio.correlation.event_count"
	KeyRootCauseEventID      = "tapio.root_cause.event_id"
	KeyRootCauseEventName    = "tapio.root_cause.event_name"
	KeyRootCauseEntityID     = "tapio.root_cause.entity_id"
	KeyRootCauseNarrative    = "tapio.root_cause.narrative"
	KeyRecommendations       = "tapio.recommendations"
)

var correlationKeySpecs = []KeySpec{
	{KeyCorrelationID, OnRecord, "correlation id"},
	{KeyCorrelationVersion, OnRecord, "bumped on every update of a correlation"},
	{KeyCorrelationConfidence, OnRecord, "confidence 0–1 derived from the chain's links"},
	{KeyCorrelationChain, OnRecord, "events cause → effect, as maps"},
	{KeyCorrelationTraceIDs, OnRecord, "every trace id in the correlation"},
	{KeyCorrelationServices, OnRecord, "every service in the correlation"},
	{KeyCorrelationEventCount, OnRecord, "number of events in the correlation"},
	{KeyRootCauseEventID, OnRecord, "event id of the root cause"},
	{KeyRootCauseEventName, OnRecord, "event name of the root cause"},
	{KeyRootCauseEntityID, OnRecord, "entity of the root cause"},
	{KeyRootCauseNarrative, OnRecord, "narrative of the root cause"},
	{KeyRecommendations, OnRecord, "recommended actions: immediate, short-term, long-term"},
}
