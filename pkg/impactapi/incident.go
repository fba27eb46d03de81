// Package impactapi is the JSON contract of the impact exporter's HTTP API (docs/API.md) and a
// small client for it. The exporter serves these types and tapio-cli reads them, so the two
// cannot drift.
package impactapi

import "time"

// Incident is one scored correlation, as stored and served.
type Incident struct {
	// ID is the correlation id (tapio.correlation.id).
	ID string `json:"id"`
	// Version is the correlation version this incident was scored from.
	Version int64 `json:"version"`
	// Summary is the correlation record's one-sentence body.
	Summary  string   `json:"summary"`
	Severity Severity `json:"severity"`
	Score    float64  `json:"score"`
	// Confidence of the correlation (its weakest link), when the record carries one.
	Confidence *float64 `json:"confidence,omitempty"`
	// FirstSeen and LastSeen are the times of the earliest and latest event.
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// DetectedAt is when the correlation was first reported (the first version's observed time).
	DetectedAt time.Time `json:"detected_at"`
	// UpdatedAt is when the latest version was reported.
	UpdatedAt time.Time `json:"updated_at"`
	// TimeToDetectionSeconds is DetectedAt − FirstSeen.
	TimeToDetectionSeconds float64          `json:"time_to_detection_seconds"`
	RootCause              RootCause        `json:"root_cause"`
	Impact                 Impact           `json:"impact"`
	TraceIDs               []string         `json:"trace_ids"`
	Services               []string         `json:"services"`
	EventCount             int64            `json:"event_count"`
	Chain                  []ChainEntry     `json:"chain"`
	Recommendations        []Recommendation `json:"recommendations"`
	// MergedIDs are correlations this one absorbed; their incidents were removed.
	MergedIDs []string `json:"merged_ids,omitempty"`
}

// RootCause is the event that explains the rest of the chain.
type RootCause struct {
	EventID   string `json:"event_id"`
	EventName string `json:"event_name"`
	EntityID  string `json:"entity_id"`
	Narrative string `json:"narrative"`
}

// ChainEntry is one event of the chain, cause → effect. Empty fields were absent on the record.
type ChainEntry struct {
	Time           time.Time `json:"time"`
	Layer          string    `json:"layer"`
	EventName      string    `json:"event_name"`
	EntityID       string    `json:"entity_id,omitempty"`
	Narrative      string    `json:"narrative"`
	EventID        string    `json:"event_id,omitempty"`
	TraceID        string    `json:"trace_id,omitempty"`
	SpanID         string    `json:"span_id,omitempty"`
	ParentSpanID   string    `json:"parent_span_id,omitempty"`
	SpanKind       string    `json:"span_kind,omitempty"`
	Service        string    `json:"service,omitempty"`
	HTTPRoute      string    `json:"http_route,omitempty"`
	HTTPStatusCode int64     `json:"http_status_code,omitempty"`
	EndUserID      string    `json:"enduser_id,omitempty"`
	UserID         string    `json:"user_id,omitempty"`
	SessionID      string    `json:"session_id,omitempty"`
	Peer           string    `json:"peer,omitempty"`
	// Count is how many events the entry stands for when more than one: repeats of one event
	// merged into one record (log_count). Absent: one.
	Count int64 `json:"count,omitempty"`
	Link  Link  `json:"link"`
}

// Link says why an event joined the chain.
type Link struct {
	Reason       string   `json:"reason"`
	Confidence   *float64 `json:"confidence,omitempty"`
	Detail       string   `json:"detail,omitempty"`
	CauseEventID string   `json:"cause_event_id,omitempty"`
}

// Recommendation horizons.
const (
	HorizonImmediate = "immediate"
	HorizonShortTerm = "short_term"
	HorizonLongTerm  = "long_term"
)

// Recommendation is one recommended action.
type Recommendation struct {
	Horizon string `json:"horizon"`
	Action  string `json:"action"`
}

// Impact is the business impact of an incident. Every figure is a pointer or a slice: a figure
// with no configuration or no data behind it is absent (and listed in Unavailable with the
// reason), never zero-filled.
type Impact struct {
	// ScoreFactors add up to the score (before it is capped at 1), each with its reason.
	ScoreFactors       []ScoreFactor       `json:"score_factors"`
	CustomerFacing     *CustomerFacing     `json:"customer_facing,omitempty"`
	FailedRequests     *FailedRequests     `json:"failed_requests,omitempty"`
	FailedTransactions *FailedTransactions `json:"failed_transactions,omitempty"`
	RevenueAtRisk      *Money              `json:"revenue_at_risk,omitempty"`
	AffectedUsers      *AffectedUsers      `json:"affected_users,omitempty"`
	SLOBurn            []SLOBurn           `json:"slo_burn,omitempty"`
	Cascade            *Cascade            `json:"cascade,omitempty"`
	Unavailable        []Unavailable       `json:"unavailable,omitempty"`
}

// ScoreFactor is one contribution to the score.
type ScoreFactor struct {
	Factor       string  `json:"factor"`
	Contribution float64 `json:"contribution"`
	Reason       string  `json:"reason"`
}

// CustomerFacing says whether the incident touched a configured customer-facing service or route.
type CustomerFacing struct {
	Value    bool     `json:"value"`
	Services []string `json:"services,omitempty"`
	Routes   []string `json:"routes,omitempty"`
	Source   string   `json:"source"`
}

// FailedRequests counts the requests that failed where they entered the system: distinct failed
// SERVER spans that are root spans or belong to a configured customer-facing service. It needs no
// configuration: it is counted from the data whenever the chain has spans.
type FailedRequests struct {
	Count int64 `json:"count"`
	// Routes are the routes of the failed requests (service and route), most failures first.
	Routes []string `json:"routes,omitempty"`
	Source string   `json:"source"`
}

// FailedTransactions counts distinct error spans on configured transaction routes.
type FailedTransactions struct {
	Count  int64    `json:"count"`
	Routes []string `json:"routes,omitempty"`
	Source string   `json:"source"`
}

// Money is an amount in a currency.
type Money struct {
	Amount   float64 `json:"amount"`
	Currency string  `json:"currency"`
	Source   string  `json:"source"`
}

// AffectedUsers counts distinct user identities on the affected spans.
type AffectedUsers struct {
	Count int64 `json:"count"`
	// ByKey counts the identities by the attribute they came from (enduser.id, user.id, session.id).
	ByKey  map[string]int64 `json:"by_key"`
	Source string           `json:"source"`
}

// SLOBurn is what the incident cost one configured service level objective.
type SLOBurn struct {
	Service string `json:"service"`
	Route   string `json:"route,omitempty"`
	// Objective is availability or latency.
	Objective     string  `json:"objective"`
	Target        float64 `json:"target"`
	WindowSeconds float64 `json:"window_seconds"`
	BadEvents     int64   `json:"bad_events"`
	// BudgetEvents is the error budget of the window: (1 − target) × expected requests.
	BudgetEvents float64 `json:"budget_events"`
	// BudgetConsumed is BadEvents / BudgetEvents: 1 means the incident alone spent the window's
	// whole error budget.
	BudgetConsumed float64 `json:"budget_consumed"`
	Source         string  `json:"source"`
}

// Cascade is the risk of the failure spreading.
type Cascade struct {
	// Level is LOW, MEDIUM or HIGH.
	Level string `json:"level"`
	// Services are the services on the chain.
	Services []string `json:"services"`
	// DependentsAtRisk are services observed calling a chain service (directly or through others)
	// that are not on the chain yet.
	DependentsAtRisk []string `json:"dependents_at_risk,omitempty"`
	Source           string   `json:"source"`
}

// Unavailable names a figure that was not computed, and why.
type Unavailable struct {
	Figure string `json:"figure"`
	Reason string `json:"reason"`
}

// IncidentList is the body of GET /api/v1/incidents.
type IncidentList struct {
	Incidents []Incident `json:"incidents"`
	Count     int        `json:"count"`
}

// StreamEvent is the data of one server-sent event of GET /api/v1/stream.
type StreamEvent struct {
	// Type is created or updated.
	Type     string   `json:"type"`
	Incident Incident `json:"incident"`
}

// Stream and webhook event types.
const (
	EventCreated = "created"
	EventUpdated = "updated"
)

// Health is the body of GET /healthz.
type Health struct {
	Status    string `json:"status"`
	Incidents int64  `json:"incidents"`
}

// Error is the body of every 4xx and 5xx answer.
type Error struct {
	Error string `json:"error"`
}
