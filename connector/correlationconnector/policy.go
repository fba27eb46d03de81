package correlationconnector

import (
	"slices"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

// eventClass is what the incident policy says of one problem event, decided when it is read.
type eventClass uint8

const (
	// classConsequence: an observed consequence — a failed or slow request, an application
	// error, a Kubernetes warning, a metric threshold breach.
	classConsequence eventClass = 1 << iota
	// classSeriousAlone: an incident on its own (an OOM kill, by default).
	classSeriousAlone
	// classCrash: a process ended by a crash signal; an incident on its own when its workload
	// serves (classServing).
	classCrash
	// classServing: the event's workload is known to listen.
	classServing
	// classAfterRecovery: evidence bound through one of the event's keys had recovered, so the
	// event did not join it.
	classAfterRecovery
	// classOutsideRequest: a failed or slow call made outside any request — a CLIENT or PRODUCER
	// span without a parent, as a connection pool's redial or a background refresh makes. It is
	// a consequence only once such failures in its group span recovery_delay: when a dependency
	// restarts cleanly a client's pool redials within milliseconds and one dial is refused, while
	// nobody's request failed.
	classOutsideRequest
)

// incidentPolicy is the compiled form of IncidentPolicy.
type incidentPolicy struct {
	consequenceLayers uint32 // bit per unifiedevent.Layer
	seriousAlone      []unifiedevent.Name
	crashSignals      []string
	recoveryDelay     int64
}

func newIncidentPolicy(p IncidentPolicy) incidentPolicy {
	out := incidentPolicy{crashSignals: slices.Clone(p.ServingCrashSignals), recoveryDelay: int64(p.RecoveryDelay)}
	for _, l := range p.ConsequenceLayers {
		if layer, ok := unifiedevent.ParseLayer(l); ok {
			out.consequenceLayers |= 1 << uint(layer)
		}
	}
	for _, n := range p.SeriousAlone {
		out.seriousAlone = append(out.seriousAlone, unifiedevent.Name(n))
	}
	return out
}

// classify sets what the policy says of an event from its own facts; signal is the signal that
// ended or was sent to the process, for kernel events.
func (p *incidentPolicy) classify(e *problemEvent, signal string) {
	if p.consequenceLayers&(1<<uint(e.layer)) != 0 || e.breach != nil {
		e.class |= classConsequence
	}
	if slices.Contains(p.seriousAlone, e.name) {
		e.class |= classSeriousAlone
	}
	if signal != "" && (e.name == unifiedevent.FatalSignal || e.name == unifiedevent.ProcessExit) && slices.Contains(p.crashSignals, signal) {
		e.class |= classCrash
	}
}

// makesIncident reports whether an event is enough, alone, to turn its group into an incident.
func (e *problemEvent) makesIncident() bool {
	return e.class&(classConsequence|classSeriousAlone) != 0 || e.class&(classCrash|classServing) == classCrash|classServing
}

// classifySpan is classify for a problem span of the given kind: a call made outside any request
// is not a consequence by itself (classOutsideRequest). With recovery_delay 0 it is one, as every
// failed span is.
func (p *incidentPolicy) classifySpan(e *problemEvent, kind ptrace.SpanKind, signal string) {
	p.classify(e, signal)
	if e.class&classConsequence != 0 && p.recoveryDelay > 0 && e.parent.IsEmpty() &&
		(kind == ptrace.SpanKindClient || kind == ptrace.SpanKindProducer) {
		e.class = e.class&^classConsequence | classOutsideRequest
	}
}
