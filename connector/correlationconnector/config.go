package correlationconnector

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

// Config configures the correlation connector.
type Config struct {
	// Window bounds every link that is not a trace: two events join by entity, peer or service
	// only when they are at most this far apart. It is also how long span structure is kept, and
	// an event older than now - Window is late: dropped and counted.
	Window time.Duration `mapstructure:"window"`
	// DecisionWait is the quiet period after the last new evidence before an incident is emitted
	// (and again before each re-emission with a higher version).
	DecisionWait time.Duration `mapstructure:"decision_wait"`
	// MaxDecisionDelay bounds how long an incident that keeps receiving evidence (and so is never
	// quiet for DecisionWait) waits before it is emitted, first and again with a higher version:
	// an incident is served while the outage goes on. 0 (the default) means DecisionWait, so the
	// first version leaves at most DecisionWait after the first consequence.
	MaxDecisionDelay time.Duration `mapstructure:"max_decision_delay"`
	// MaxUpdateInterval bounds how far apart the versions of an incident that keeps receiving
	// evidence are: each version after the first waits twice as long as the one before, from
	// max_decision_delay up to this. A version carries the whole chain, and its scoring and
	// storing cost grows with it; an outage of an hour need not be rebuilt every few seconds.
	// Once the evidence stops, the last version still leaves after decision_wait. 0 keeps every
	// version at max_decision_delay.
	MaxUpdateInterval time.Duration `mapstructure:"max_update_interval"`
	// IncidentTimeout closes an incident that has had no new evidence for this long.
	IncidentTimeout time.Duration `mapstructure:"incident_timeout"`
	// ClockSkew is how far apart two events may be and still count as simultaneous, in which case
	// the lower layer is taken as the cause (Kubernetes reports an OOM kill with second precision,
	// after the kernel did).
	ClockSkew time.Duration `mapstructure:"clock_skew"`
	// FlushInterval is how often incidents are checked for emission and state for expiry.
	FlushInterval time.Duration `mapstructure:"flush_interval"`

	// MaxEvents caps the span-structure store and, separately, the problem events held by open
	// incidents. Reaching it evicts the oldest state and counts it.
	MaxEvents int `mapstructure:"max_events"`
	// MaxEventsPerIncident caps the chain kept for one incident; further events are counted in
	// its event_count but not kept.
	MaxEventsPerIncident int `mapstructure:"max_events_per_incident"`
	// MaxIncidents caps open incidents; reaching it closes (and emits) the least recently updated.
	MaxIncidents int `mapstructure:"max_incidents"`
	// MaxPeers caps the address → entity directory learnt from listen events, pod IPs and spans.
	MaxPeers int `mapstructure:"max_peers"`
	// PeerTTL forgets an address → entity mapping not seen again for this long. Listen events are
	// rare (a server listens once, at start), so this is much longer than Window.
	PeerTTL time.Duration `mapstructure:"peer_ttl"`
	// MaxMetricSeries caps the series tracked by threshold rules.
	MaxMetricSeries int `mapstructure:"max_metric_series"`
	// Shards splits the span-structure store so that concurrent Consume calls rarely contend.
	Shards int `mapstructure:"shards"`

	// WriteAheadLog keeps the open correlation state — the problem events of incidents not yet
	// closed — through a crash of the collector: each Consume call that takes problem events
	// writes them before it returns, and they are restored at start. Without a directory the
	// state is held in memory only and a crash (SIGKILL, OOM kill) loses the evidence of every
	// incident still open.
	WriteAheadLog WriteAheadLogConfig `mapstructure:"write_ahead_log"`
	// Storage is refused: the state was written through a storage extension before the connector
	// kept a log of its own (a key-value transaction per Consume call cost more than the rest of
	// the call on healthy traffic).
	Storage *component.ID `mapstructure:"storage"`

	// Incidents decides which groups of linked events are incidents, and when evidence stops
	// explaining later failures.
	Incidents IncidentPolicy `mapstructure:"incidents"`

	// Links sets the confidence of each kind of evidence link.
	Links LinkConfidences `mapstructure:"links"`
	// Thresholds turn metric data points into events.
	Thresholds []ThresholdRule `mapstructure:"thresholds"`
	// Recommendations add to (or replace, for the same event_name / metric_rule) the built-in table.
	Recommendations []RecommendationRule `mapstructure:"recommendations"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// WriteAheadLogConfig configures the connector's write-ahead log.
type WriteAheadLogConfig struct {
	// Directory holds the log, in a subdirectory per connector (named by its component id):
	// segment files of framed entries, HEAD (the oldest entry still needed) and LOCK. Empty keeps
	// the state in memory only.
	Directory string `mapstructure:"directory"`
	// FSync flushes each entry to the disk before the Consume call returns, so that it survives a
	// crash of the host, not only of the collector; it costs a disk flush per call.
	FSync bool `mapstructure:"fsync"`
}

// IncidentPolicy decides which groups of linked events are emitted as incidents. A group becomes
// an incident once it holds an observed consequence (an event of a consequence layer, or a metric
// threshold breach) or an event serious on its own; until then — and for ever, if no consequence
// comes — its events stay events: they flow on in the normalised log stream and are counted in
// otelcol_connector_correlation_events_without_consequence by event name, but nothing is paged.
type IncidentPolicy struct {
	// ConsequenceLayers are the layers whose events are observed consequences: failed or slow
	// requests (trace), application errors (application), warnings about a workload (kubernetes).
	ConsequenceLayers []string `mapstructure:"consequence_layers"`
	// SeriousAlone are the event names that are an incident on their own, e.g. an OOM kill.
	SeriousAlone []string `mapstructure:"serious_alone"`
	// ServingCrashSignals are the signals that, ending a process of a serving workload (one known
	// to listen), make an incident on their own: a crash of a server, not of a short-lived tool.
	ServingCrashSignals []string `mapstructure:"serving_crash_signals"`
	// RecoveryDelay: when healthy traffic reaches a peer address, workload or service at least
	// this long after the last evidence bound through it, that evidence has recovered and cannot
	// be the cause of a later failure there — the later failure opens an incident of its own.
	// It is also how long calls made outside any request (CLIENT or PRODUCER spans without a
	// parent: a pool's redial) must keep failing before they are a consequence: a dependency's
	// clean restart makes a pool redial once, refused, and nobody's request failed.
	// 0 turns both rules off.
	RecoveryDelay time.Duration `mapstructure:"recovery_delay"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// LinkConfidences is the confidence of each evidence link, 0 < c ≤ 1.
type LinkConfidences struct {
	Trace      float64 `mapstructure:"trace"`
	Kubernetes float64 `mapstructure:"kubernetes"`
	Entity     float64 `mapstructure:"entity"`
	Peer       float64 `mapstructure:"peer"`
	Service    float64 `mapstructure:"service"`
	// Host links a process crash to an I/O error on the same host at most clock_skew earlier.
	Host float64 `mapstructure:"host"`
}

// Comparison is how a threshold rule compares a value with its threshold.
type Comparison string

const (
	GreaterThan      Comparison = "gt"
	GreaterOrEqual   Comparison = "gte"
	LessThan         Comparison = "lt"
	LessOrEqual      Comparison = "lte"
	comparisonPhrase            = "gt, gte, lt, lte"
)

// ThresholdRule turns a metric breach into an event, e.g. memory utilisation over 0.9 for 30s.
type ThresholdRule struct {
	// Name identifies the rule in narratives, self-telemetry and recommendations.
	Name string `mapstructure:"name"`
	// Metric is the metric name. Gauges and sums (int or double data points) are evaluated.
	Metric string `mapstructure:"metric"`
	// Attributes must all be present on a data point with these values (compared as strings).
	Attributes map[string]string `mapstructure:"attributes"`
	Comparison Comparison        `mapstructure:"comparison"`
	Value      float64           `mapstructure:"value"`
	// For is how long the breach must last before it becomes an event; 0 fires at once.
	For time.Duration `mapstructure:"for"`
	// Layer is the layer the event is placed in for root-cause preference: kernel, container, …
	Layer string `mapstructure:"layer"`
}

// RecommendationRule gives the actions for incidents whose root cause is EventName (or a breach
// of the threshold rule MetricRule).
type RecommendationRule struct {
	EventName  string `mapstructure:"event_name"`
	MetricRule string `mapstructure:"metric_rule"`
	Immediate  string `mapstructure:"immediate"`
	ShortTerm  string `mapstructure:"short_term"`
	LongTerm   string `mapstructure:"long_term"`
}

// Validate checks the configuration.
func (cfg *Config) Validate() error {
	var errs []error
	positive := func(field string, d time.Duration) {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %s", field, d))
		}
	}
	if cfg.Storage != nil {
		errs = append(errs, fmt.Errorf("storage (%s): the connector no longer writes its state through a storage extension; set write_ahead_log.directory instead (a directory of its own, e.g. beside file_storage's)", cfg.Storage))
	}
	positive("window", cfg.Window)
	positive("decision_wait", cfg.DecisionWait)
	positive("incident_timeout", cfg.IncidentTimeout)
	if cfg.MaxDecisionDelay != 0 && cfg.MaxDecisionDelay < cfg.DecisionWait {
		errs = append(errs, fmt.Errorf("max_decision_delay (%s) must be 0 (decision_wait) or at least decision_wait (%s)", cfg.MaxDecisionDelay, cfg.DecisionWait))
	}
	if cfg.MaxUpdateInterval < 0 {
		errs = append(errs, fmt.Errorf("max_update_interval must not be negative, got %s", cfg.MaxUpdateInterval))
	}
	errs = append(errs, cfg.Incidents.validate()...)
	positive("flush_interval", cfg.FlushInterval)
	positive("peer_ttl", cfg.PeerTTL)
	if cfg.ClockSkew < 0 {
		errs = append(errs, fmt.Errorf("clock_skew must not be negative, got %s", cfg.ClockSkew))
	}
	if cfg.DecisionWait > 0 && cfg.IncidentTimeout > 0 && cfg.IncidentTimeout <= cfg.DecisionWait {
		errs = append(errs, fmt.Errorf("incident_timeout (%s) must be longer than decision_wait (%s)", cfg.IncidentTimeout, cfg.DecisionWait))
	}
	capAtLeast := func(field string, n, min int) {
		if n < min {
			errs = append(errs, fmt.Errorf("%s must be at least %d, got %d", field, min, n))
		}
	}
	capAtLeast("max_events", cfg.MaxEvents, 1)
	capAtLeast("max_events_per_incident", cfg.MaxEventsPerIncident, 1)
	capAtLeast("max_incidents", cfg.MaxIncidents, 1)
	capAtLeast("max_peers", cfg.MaxPeers, 1)
	capAtLeast("max_metric_series", cfg.MaxMetricSeries, 1)
	capAtLeast("shards", cfg.Shards, 1)
	if cfg.Shards > maxShards {
		errs = append(errs, fmt.Errorf("shards must be at most %d, got %d", maxShards, cfg.Shards))
	}
	for _, l := range []struct {
		name string
		c    float64
	}{{"trace", cfg.Links.Trace}, {"kubernetes", cfg.Links.Kubernetes}, {"entity", cfg.Links.Entity}, {"peer", cfg.Links.Peer}, {"service", cfg.Links.Service}, {"host", cfg.Links.Host}} {
		if !(l.c > 0 && l.c <= 1) {
			errs = append(errs, fmt.Errorf("links.%s must be in (0, 1], got %v", l.name, l.c))
		}
	}
	ruleNames := map[string]bool{}
	for i, r := range cfg.Thresholds {
		field := fmt.Sprintf("thresholds[%d]", i)
		if r.Name == "" {
			errs = append(errs, fmt.Errorf("%s: name is required", field))
		} else if ruleNames[r.Name] {
			errs = append(errs, fmt.Errorf("%s: name %q is used twice", field, r.Name))
		}
		ruleNames[r.Name] = true
		if r.Metric == "" {
			errs = append(errs, fmt.Errorf("%s: metric is required", field))
		}
		switch r.Comparison {
		case GreaterThan, GreaterOrEqual, LessThan, LessOrEqual:
		default:
			errs = append(errs, fmt.Errorf("%s: comparison must be one of %s, got %q", field, comparisonPhrase, r.Comparison))
		}
		if r.For < 0 {
			errs = append(errs, fmt.Errorf("%s: for must not be negative, got %s", field, r.For))
		}
		if _, ok := unifiedevent.ParseLayer(r.Layer); !ok {
			errs = append(errs, fmt.Errorf("%s: layer must name a layer (kernel, container, kubernetes, network, storage, application, trace), got %q", field, r.Layer))
		}
	}
	seen := map[string]bool{}
	for i, r := range cfg.Recommendations {
		field := fmt.Sprintf("recommendations[%d]", i)
		switch {
		case r.EventName != "" && r.MetricRule != "":
			errs = append(errs, fmt.Errorf("%s: set event_name or metric_rule, not both", field))
		case r.EventName != "":
			if def, ok := unifiedevent.Lookup(r.EventName); !ok || !def.Problem {
				errs = append(errs, fmt.Errorf("%s: event_name %q is not a problem event of the UnifiedEvent catalogue", field, r.EventName))
			}
		case r.MetricRule != "":
			if !ruleNames[r.MetricRule] {
				errs = append(errs, fmt.Errorf("%s: metric_rule %q names no threshold rule", field, r.MetricRule))
			}
		default:
			errs = append(errs, fmt.Errorf("%s: set event_name or metric_rule", field))
		}
		key := r.EventName + "\x00" + r.MetricRule
		if seen[key] {
			errs = append(errs, fmt.Errorf("%s: %s%s is listed twice", field, r.EventName, r.MetricRule))
		}
		seen[key] = true
		if r.Immediate == "" && r.ShortTerm == "" && r.LongTerm == "" {
			errs = append(errs, fmt.Errorf("%s: give at least one of immediate, short_term, long_term", field))
		}
	}
	return errors.Join(errs...)
}

func (p *IncidentPolicy) validate() []error {
	var errs []error
	for i, l := range p.ConsequenceLayers {
		if _, ok := unifiedevent.ParseLayer(l); !ok {
			errs = append(errs, fmt.Errorf("incidents.consequence_layers[%d]: %q is not a layer (kernel, container, kubernetes, network, storage, application, trace)", i, l))
		}
	}
	for i, n := range p.SeriousAlone {
		if def, ok := unifiedevent.Lookup(n); !ok || !def.Problem {
			errs = append(errs, fmt.Errorf("incidents.serious_alone[%d]: %q is not a problem event of the UnifiedEvent catalogue", i, n))
		}
	}
	for i, s := range p.ServingCrashSignals {
		if !isSignalName(s) {
			errs = append(errs, fmt.Errorf("incidents.serving_crash_signals[%d]: %q is not a signal name such as SIGSEGV", i, s))
		}
	}
	if p.RecoveryDelay < 0 {
		errs = append(errs, fmt.Errorf("incidents.recovery_delay must not be negative, got %s", p.RecoveryDelay))
	}
	return errs
}

// isSignalName accepts SIG followed by capital letters or digits, as the kernel names signals.
func isSignalName(s string) bool {
	if len(s) < 4 || s[:3] != "SIG" {
		return false
	}
	for _, c := range s[3:] {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// decisionDelay is max_decision_delay, or decision_wait when it is 0.
func (cfg *Config) decisionDelay() time.Duration {
	if cfg.MaxDecisionDelay == 0 {
		return cfg.DecisionWait
	}
	return cfg.MaxDecisionDelay
}

// updateDelay is how long an incident that keeps receiving evidence, emitted versions times so
// far, waits before its next version: the decision delay for the first, doubling with each
// version after it, up to max_update_interval (never below the decision delay itself).
func (cfg *Config) updateDelay(versions int64) time.Duration {
	d := cfg.decisionDelay()
	if cfg.MaxUpdateInterval <= d {
		return d
	}
	for i := int64(0); i < versions && d < cfg.MaxUpdateInterval; i++ {
		d *= 2
	}
	return min(d, cfg.MaxUpdateInterval)
}
