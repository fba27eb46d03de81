package unifiedevent

// Keys of the correlation connector's output records (design section 4).
const (
	KeyCorrelationCodecVersion = "tapio.correlation.codec_version"
	KeyCorrelationID           = "tapio.correlation.id"
	KeyCorrelationVersion      = "tapio.correlation.version"
	KeyCorrelationConfidence   = "tapio.correlation.confidence"
	KeyCorrelationChain        = "tapio.correlation.chain"
	KeyCorrelationTraceIDs     = "tapio.correlation.trace_ids"
	KeyCorrelationServices     = "tapio.correlation.services"
	KeyCorrelationEventCount   = "tapio.correlation.event_count"
	KeyCorrelationMergedIDs    = "tapio.correlation.merged_ids"
	KeyCorrelationFirstSeen    = "tapio.correlation.first_seen"
	KeyCorrelationLastSeen     = "tapio.correlation.last_seen"
	KeyRootCauseEventID        = "tapio.root_cause.event_id"
	KeyRootCauseEventName      = "tapio.root_cause.event_name"
	KeyRootCauseEntityID       = "tapio.root_cause.entity_id"
	KeyRootCauseNarrative      = "tapio.root_cause.narrative"
	KeyRecommendations         = "tapio.recommendations"

	// Inputs the connector reads to map a peer address to the entity serving it.
	KeyK8sPodIP           = "k8s.pod.ip"
	KeyNetworkPeerAddress = "network.peer.address"
	KeyNetworkPeerPort    = "network.peer.port"

	// Keys inside each map of tapio.correlation.chain. The event's own facts reuse the
	// UnifiedEvent names (event.name, tapio.event.id, tapio.layer, tapio.entity.id, service.name,
	// http.route, enduser.id, user.id, session.id); these name what has no UnifiedEvent key.
	ChainKeyTime           = "time"
	ChainKeyNarrative      = "narrative"
	ChainKeyTraceID        = "trace_id"
	ChainKeySpanID         = "span_id"
	ChainKeyParentSpanID   = "parent_span_id"
	ChainKeySpanKind       = "span.kind"
	ChainKeyPeer           = "peer"
	ChainKeyLinkReason     = "link.reason"
	ChainKeyLinkConfidence = "link.confidence"
	ChainKeyLinkDetail     = "link.detail"
	ChainKeyLinkCause      = "link.cause_event_id"
	ChainKeyMetricRule     = "tapio.metric.rule"
	ChainKeyMetricName     = "tapio.metric.name"
	ChainKeyMetricValue    = "tapio.metric.value"

	// Keys inside each map of tapio.recommendations.
	RecommendationKeyHorizon = "horizon"
	RecommendationKeyAction  = "action"
	// Structured remediation beside the sentence, for tools that act on it; written only when set.
	RecommendationKeyKind       = "kind"
	RecommendationKeyTarget     = "target"
	RecommendationKeyParameters = "parameters"
)

// Recommendation horizons, in the order tapio.recommendations lists them.
const (
	HorizonImmediate = "immediate"
	HorizonShortTerm = "short_term"
	HorizonLongTerm  = "long_term"
)

// Where the keys of correlation records' nested maps are written.
const (
	InChainEntry     Placement = "chain entry"
	InRecommendation Placement = "recommendation"
)

var correlationKeySpecs = []KeySpec{
	{KeyCorrelationCodecVersion, OnRecord, "layout version of the correlation record; absent means 1. A reader refuses a version newer than it knows"},
	{KeyCorrelationID, OnRecord, "correlation id"},
	{KeyCorrelationVersion, OnRecord, "bumped on every update of a correlation"},
	{KeyCorrelationConfidence, OnRecord, "confidence 0–1 derived from the chain's links (its weakest link)"},
	{KeyCorrelationChain, OnRecord, "events cause → effect, as maps"},
	{KeyCorrelationTraceIDs, OnRecord, "every trace id in the correlation"},
	{KeyCorrelationServices, OnRecord, "every service in the correlation"},
	{KeyCorrelationEventCount, OnRecord, "number of events in the correlation"},
	{KeyCorrelationMergedIDs, OnRecord, "ids of correlations this one absorbed when new evidence joined them; earlier records under those ids are superseded"},
	{KeyCorrelationFirstSeen, OnRecord, "time of the earliest event, RFC 3339"},
	{KeyCorrelationLastSeen, OnRecord, "time of the latest event, RFC 3339"},
	{KeyRootCauseEventID, OnRecord, "event id of the root cause"},
	{KeyRootCauseEventName, OnRecord, "event name of the root cause"},
	{KeyRootCauseEntityID, OnRecord, "entity of the root cause"},
	{KeyRootCauseNarrative, OnRecord, "narrative of the root cause"},
	{KeyRecommendations, OnRecord, "recommended actions as maps (horizon, action, and kind, target, parameters when set): immediate, short-term, long-term"},
	{KeyK8sPodIP, OnResource, "pod IP; maps a peer address to the pod serving it"},
	{KeyNetworkPeerAddress, OnRecordOrSpan, "remote address of a connection, when server.address is absent"},
	{KeyNetworkPeerPort, OnRecordOrSpan, "its port"},
	{ChainKeyTime, InChainEntry, "when the event happened, RFC 3339 with nanoseconds"},
	{ChainKeyNarrative, InChainEntry, "the event's one-sentence narrative"},
	{ChainKeyTraceID, InChainEntry, "trace id, when the event has real trace context"},
	{ChainKeySpanID, InChainEntry, "span id, when the event has real trace context"},
	{ChainKeyParentSpanID, InChainEntry, "parent span id of a span event; absent on a root span, which is where a request entered"},
	{ChainKeySpanKind, InChainEntry, "SERVER, CLIENT, … for span events"},
	{ChainKeyPeer, InChainEntry, "address:port a client failure was about"},
	{ChainKeyLinkReason, InChainEntry, "why the event joined: root, trace.parent, trace, kubernetes, entity, peer, service, exemplar"},
	{ChainKeyLinkConfidence, InChainEntry, "confidence of that link"},
	{ChainKeyLinkDetail, InChainEntry, "the link in words, e.g. which address a listen event mapped to which entity"},
	{ChainKeyLinkCause, InChainEntry, "event id of the earlier chain entry the link points to"},
	{ChainKeyMetricRule, InChainEntry, "threshold rule that turned a metric breach into an event"},
	{ChainKeyMetricName, InChainEntry, "metric of a threshold breach"},
	{ChainKeyMetricValue, InChainEntry, "value that breached the threshold"},
	{RecommendationKeyHorizon, InRecommendation, "immediate, short_term or long_term"},
	{RecommendationKeyAction, InRecommendation, "what to do"},
	{RecommendationKeyKind, InRecommendation, "kind of remediation the action is, for a tool that carries it out; only when set"},
	{RecommendationKeyTarget, InRecommendation, "what the remediation acts on; only when set"},
	{RecommendationKeyParameters, InRecommendation, "the remediation's parameters, a map of strings in order; only when set"},
}
