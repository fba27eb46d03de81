package unifiedeventprocessor

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

// Disposition says what happens to a record that a rule does not turn into an event.
type Disposition string

const (
	Pass Disposition = "pass"
	Drop Disposition = "drop"
	Keep Disposition = "keep"
)

// SpanAnnotation says which UnifiedEvent keys an annotated span gets.
type SpanAnnotation string

const (
	// AnnotateFull writes every core key: event.name, tapio.event.id, tapio.layer,
	// tapio.category, tapio.source and tapio.entity.id.
	AnnotateFull SpanAnnotation = "full"
	// AnnotateMinimal writes only what nothing else implies: event.name. A span's layer is always
	// trace and its category follows from its name (pkg/unifiedevent reads them from the
	// catalogue); its event id follows from its trace and span ids (unifiedevent.SpanEventID), its
	// entity from its resource and attributes (unifiedevent.EntityID); its source is what received
	// it. One write instead of six, for pipelines whose spans go to the correlation connector only.
	AnnotateMinimal SpanAnnotation = "minimal"
)

// Config configures the unifiedevent processor.
type Config struct {
	// Include keeps only these event names (full names, e.g. tapio.kernel.oom_kill); empty keeps all.
	Include []string `mapstructure:"include"`
	// Exclude drops these event names. For spans, an excluded name means the span is not annotated;
	// spans are never dropped.
	Exclude []string `mapstructure:"exclude"`
	// OnInvalid is what happens to a record that claims to be an event but cannot be read as one
	// (an unknown tapio.* name, a Kubernetes Event without reason or involved object): pass or drop.
	// It is counted either way.
	OnInvalid Disposition `mapstructure:"on_invalid"`
	// MaxNarrativeBytes bounds the body sentence written for an event.
	MaxNarrativeBytes int `mapstructure:"max_narrative_bytes"`

	Kubernetes KubernetesConfig `mapstructure:"kubernetes"`
	Logs       LogsConfig       `mapstructure:"logs"`
	Spans      SpansConfig      `mapstructure:"spans"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// KubernetesConfig configures the mapping of Kubernetes Events from the k8sobjects receiver.
type KubernetesConfig struct {
	// NormalEvents is keep or drop. Dropped Normal events are counted.
	NormalEvents Disposition `mapstructure:"normal_events"`
}

// LogsConfig configures application logs.
type LogsConfig struct {
	// Unmatched is what happens to a log record that is none of the events: pass (unchanged) or drop.
	Unmatched Disposition `mapstructure:"unmatched"`
}

// SpansConfig configures span annotation.
type SpansConfig struct {
	// SlowThreshold marks a span slow_span when no rule below matches it; 0 turns the default off.
	SlowThreshold time.Duration `mapstructure:"slow_threshold"`
	// SlowThresholds are per service and route; the most specific matching rule wins
	// (service and route, then route, then service).
	SlowThresholds []SlowThreshold `mapstructure:"slow_thresholds"`
	// Annotation is full (every core key, the default) or minimal (event.name: the rest follows
	// from the catalogue, the span's ids and its resource; see docs/UNIFIED_EVENT.md).
	Annotation SpanAnnotation `mapstructure:"annotation"`
}

// SlowThreshold is a latency threshold for one service, one route (http.route), or both.
type SlowThreshold struct {
	Service   string        `mapstructure:"service"`
	Route     string        `mapstructure:"route"`
	Threshold time.Duration `mapstructure:"threshold"`
}

// Validate checks the configuration.
func (cfg *Config) Validate() error {
	var errs []error
	if err := oneOf("on_invalid", cfg.OnInvalid, Pass, Drop); err != nil {
		errs = append(errs, err)
	}
	if err := oneOf("kubernetes.normal_events", cfg.Kubernetes.NormalEvents, Keep, Drop); err != nil {
		errs = append(errs, err)
	}
	if err := oneOf("logs.unmatched", cfg.Logs.Unmatched, Pass, Drop); err != nil {
		errs = append(errs, err)
	}
	if cfg.MaxNarrativeBytes < 16 {
		errs = append(errs, fmt.Errorf("max_narrative_bytes must be at least 16, got %d", cfg.MaxNarrativeBytes))
	}
	if cfg.Spans.Annotation != AnnotateFull && cfg.Spans.Annotation != AnnotateMinimal {
		errs = append(errs, fmt.Errorf("spans.annotation must be one of %s, %s, got %q", AnnotateFull, AnnotateMinimal, cfg.Spans.Annotation))
	}
	if cfg.Spans.SlowThreshold < 0 {
		errs = append(errs, fmt.Errorf("spans.slow_threshold must not be negative, got %s", cfg.Spans.SlowThreshold))
	}
	seen := map[[2]string]bool{}
	for i, rule := range cfg.Spans.SlowThresholds {
		if rule.Service == "" && rule.Route == "" {
			errs = append(errs, fmt.Errorf("spans.slow_thresholds[%d]: set service, route or both", i))
		}
		if rule.Threshold <= 0 {
			errs = append(errs, fmt.Errorf("spans.slow_thresholds[%d]: threshold must be positive, got %s", i, rule.Threshold))
		}
		key := [2]string{rule.Service, rule.Route}
		if seen[key] {
			errs = append(errs, fmt.Errorf("spans.slow_thresholds[%d]: service %q route %q is listed twice", i, rule.Service, rule.Route))
		}
		seen[key] = true
	}
	errs = append(errs, checkNames("include", cfg.Include)...)
	errs = append(errs, checkNames("exclude", cfg.Exclude)...)
	for _, in := range cfg.Include {
		for _, ex := range cfg.Exclude {
			if in == ex {
				errs = append(errs, fmt.Errorf("%s is both included and excluded", in))
			}
		}
	}
	return errors.Join(errs...)
}

func oneOf(field string, got Disposition, allowed ...Disposition) error {
	for _, a := range allowed {
		if got == a {
			return nil
		}
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	return fmt.Errorf("%s must be one of %s, got %q", field, strings.Join(names, ", "), got)
}

func checkNames(field string, names []string) []error {
	var errs []error
	for _, name := range names {
		if _, ok := unifiedevent.Lookup(name); !ok {
			errs = append(errs, fmt.Errorf("%s: %q is not an event name of the UnifiedEvent catalogue (known: %s)", field, name, knownNames()))
		}
	}
	return errs
}

func knownNames() string {
	var names []string
	for _, d := range unifiedevent.Catalogue() {
		names = append(names, string(d.Name))
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
