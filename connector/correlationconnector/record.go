package correlationconnector

import (
	"encoding/hex"
	"net"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/yairfalse/tapio/connector/correlationconnector/internal/metadata"
	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

// The scenario goldens, and the correlation records in the top-level testdata/ that the impact
// exporter's tests read, are what this file writes: `make generate` rewrites them.
//go:generate go test -run TestScenarios -update .

// buildRecord appends the correlation record of one snapshot to out. It runs under rb.mu, not
// the book's lock: the snapshot's events are never written again.
func (rb *recordBuilder) buildRecord(snap *snapshot, out plog.Logs, t *tally) {
	ev := snap.events
	if len(ev) == 0 {
		return
	}
	s := &rb.scratch
	s.reset(len(ev))
	rb.findAncestors(ev, s)
	told, eventCount := snap.told, snap.eventCount
	if folded := foldNestedCalls(ev, s, &told); folded > 0 {
		// The failed CLIENT span that encloses a failed CLIENT span of the same service is one
		// logical call with it (a pool's connect around the driver's connect): the chain keeps
		// the inner, most specific failure once, and the trace structure above it.
		ev, eventCount = s.unnested, eventCount-folded
		s.reset(len(ev))
		rb.findAncestors(ev, s)
	}
	rb.orderChain(ev, s)
	rb.linkChain(ev, s)

	root := &ev[s.order[0]]
	t.emitted[snap.trigger]++
	for i := told; i < len(ev); i++ {
		if r := s.links[i].reason; r != linkNone {
			t.links[r]++
		}
	}
	confidence := 1.0
	for _, i := range s.order[1:] {
		confidence = min(confidence, s.links[i].confidence)
	}

	// The record is refilled in place, so that its slices keep their arrays from build to build.
	r := &s.record
	*r = unifiedevent.CorrelationRecord{
		ID:            snap.id,
		Version:       snap.version,
		Confidence:    roundConfidence(confidence),
		HasConfidence: true,
		RootCause: unifiedevent.RootCause{
			EventID:   root.eventIDString(),
			EventName: string(root.name),
			EntityID:  root.entity,
			Narrative: narrativeOf(root),
		},
		EventCount:      int64(eventCount),
		Chain:           r.Chain[:0],
		TraceIDs:        r.TraceIDs[:0],
		Services:        r.Services[:0],
		MergedIDs:       snap.mergedIDs,
		Recommendations: r.Recommendations[:0],
		Time:            time.Unix(0, root.time),
		ObservedTime:    rb.clock.Now(),
	}
	first, last := root.time, root.time
	addTrace := func(id pcommon.TraceID) {
		if id.IsEmpty() {
			return
		}
		if _, seen := s.seenTrace[id]; seen {
			return
		}
		s.seenTrace[id] = struct{}{}
		r.TraceIDs = append(r.TraceIDs, hex.EncodeToString(id[:]))
		if r.PrimaryTraceID.IsEmpty() {
			r.PrimaryTraceID = id
		}
	}
	for _, i := range s.order {
		e := &ev[i]
		first, last = min(first, e.time), max(last, e.time)
		addTrace(e.trace)
		if e.breach != nil {
			for _, x := range e.breach.exemplars {
				addTrace(x)
			}
		}
		if e.service != "" {
			if _, seen := s.seenSvc[e.service]; !seen {
				s.seenSvc[e.service] = struct{}{}
				r.Services = append(r.Services, e.service)
			}
		}
		r.Chain = append(r.Chain, rb.chainEntry(ev, e, s.links[i]))
	}
	r.FirstSeen, r.LastSeen = time.Unix(0, first), time.Unix(0, last)
	r.Chain[0].Link.Detail = incidentBasis(ev, s.order)
	for _, a := range rb.advice.lookup(root) {
		r.Recommendations = append(r.Recommendations, unifiedevent.Recommendation{Horizon: a.horizon, Action: a.action})
	}
	r.Summary = summarize(r.RootCause.Narrative, eventCount, r.Services, confidence)

	rls := out.ResourceLogs()
	if rls.Len() == 0 {
		sl := rls.AppendEmpty().ScopeLogs().AppendEmpty()
		sl.Scope().SetName(metadata.ScopeName)
		unifiedevent.MarkScope(sl.Scope())
	}
	unifiedevent.WriteCorrelationRecord(rls.At(0).ScopeLogs().At(0).LogRecords().AppendEmpty(), r)
	// The scratch must not keep this incident's strings alive until the next build.
	clear(r.Chain)
	clear(r.TraceIDs)
	clear(r.Services)
	clear(s.unnested)
	r.MergedIDs = nil
}

// chainEntry describes one event of the chain and the link that brought it in.
func (rb *recordBuilder) chainEntry(ev []problemEvent, e *problemEvent, l chainLink) unifiedevent.ChainEntry {
	d := e.facts()
	entry := unifiedevent.ChainEntry{
		Time:      time.Unix(0, e.time),
		Layer:     e.layer.String(),
		EventName: string(e.name),
		EntityID:  e.entity,
		Narrative: narrativeOf(e),
		EventID:   e.eventIDString(),
		Link:      unifiedevent.ChainLink{Reason: l.reason.String()},
		// Facts an impact exporter needs about the affected services; only what the event carried.
		Service:   e.service,
		HTTPRoute: d.route,
		EndUserID: d.endUser,
		UserID:    d.user,
		SessionID: d.session,
	}
	if n := e.events(); n > 1 {
		entry.Count = int64(n)
	}
	if !e.trace.IsEmpty() {
		entry.TraceID = hex.EncodeToString(e.trace[:])
	}
	if !e.span.IsEmpty() {
		entry.SpanID = hex.EncodeToString(e.span[:])
		if e.isSpan && !e.parent.IsEmpty() {
			entry.ParentSpanID = hex.EncodeToString(e.parent[:])
		}
	}
	if l.reason != linkNone {
		entry.Link.Confidence, entry.Link.HasConfidence = l.confidence, true
		entry.Link.Detail = rb.linkDetail(ev, e, l)
		if l.cause >= 0 {
			entry.Link.CauseEventID = ev[l.cause].eventIDString()
		}
	}
	if e.isSpan {
		entry.SpanKind = spanKindName(d.kind)
		entry.HTTPStatusCode = int64(d.httpStatus)
	}
	if e.peerAddr != "" {
		entry.Peer = peerAddress(e.peerAddr, e.peerPort)
	}
	if e.breach != nil {
		rule := &rb.cfg.Thresholds[e.breach.rule]
		entry.Metric = unifiedevent.MetricBreach{Rule: rule.Name, Metric: rule.Metric, Value: e.breach.value}
	}
	return entry
}

// foldNestedCalls leaves in s.unnested the events that are not the enclosing span of a nested
// failed call — a dependency_error span whose nearest failed descendant is a dependency_error
// span of the same service — and returns how many it left out. told, the count of events already
// reported, is moved to the same indices. It needs s.ancestor.
func foldNestedCalls(ev []problemEvent, s *chainScratch, told *int) int {
	enclosing := func(i int) bool {
		return ev[i].isSpan && ev[i].name == unifiedevent.DependencyError
	}
	for i := range ev {
		s.bestChild[i] = -1
	}
	folded := 0
	for j := range ev {
		if a := s.ancestor[j]; a >= 0 && enclosing(int(a)) && enclosing(j) && ev[a].service == ev[j].service && s.bestChild[a] != -2 {
			s.bestChild[a] = -2 // marks a as folded; bestChild is recomputed by linkChain
			folded++
		}
	}
	if folded == 0 {
		return 0
	}
	s.unnested = s.unnested[:0]
	newTold := 0
	for i := range ev {
		if s.bestChild[i] == -2 {
			continue
		}
		if i < *told {
			newTold++
		}
		s.unnested = append(s.unnested, ev[i])
	}
	*told = newTold
	return folded
}

// incidentBasis says, on the root entry, which rule of the incident policy made the group an
// incident, and whether earlier evidence was set aside because it had recovered.
func incidentBasis(ev []problemEvent, order []int32) string {
	basis := ""
	for _, i := range order {
		e := &ev[i]
		switch {
		case e.class&classConsequence != 0:
			basis = "an incident: it has an observed consequence (" + string(e.name) + ")"
		case e.class&classOutsideRequest != 0 && basis == "":
			basis = "an incident: calls made outside any request kept failing for incidents.recovery_delay or longer (" + string(e.name) + ")"
		case e.class&classSeriousAlone != 0 && basis == "":
			basis = "an incident on its own: " + string(e.name) + " is in incidents.serious_alone"
		case e.class&(classCrash|classServing) == classCrash|classServing && basis == "":
			basis = "an incident on its own: a serving workload crashed (incidents.serving_crash_signals)"
		default:
			continue
		}
		if e.class&classConsequence != 0 {
			break
		}
	}
	if ev[order[0]].class&classAfterRecovery != 0 {
		basis += "; earlier failures there had recovered (healthy traffic since, incidents.recovery_delay) and are not taken as its cause"
	}
	return basis
}

// linkDetail says in words why e is linked to its cause.
func (rb *recordBuilder) linkDetail(ev []problemEvent, e *problemEvent, l chainLink) string {
	if l.cause < 0 {
		if l.forward {
			return "no earlier event explains it; a later event links to it by " + l.reason.String()
		}
		return "no earlier event explains it; it joined by its " + l.reason.String() + " key"
	}
	cause := &ev[l.cause]
	switch l.reason {
	case linkTraceParent:
		if !cause.isSpan {
			return "error logged in descendant span " + shortSpan(cause.span) + " of trace " + hex.EncodeToString(e.trace[:])
		}
		return "the failure of descendant span " + shortSpan(cause.span) + " propagated up trace " + hex.EncodeToString(e.trace[:])
	case linkTrace:
		return "same trace " + hex.EncodeToString(e.trace[:])
	case linkExemplar:
		return "a metric exemplar points to a trace of " + string(cause.name)
	case linkKubernetes:
		if cause.entity == e.entity {
			return "Kubernetes event about the pod " + e.entity + " of a " + lowerLayerOf(e, cause).String() + " event"
		}
		return "Kubernetes event about pod " + e.pod + " of a " + lowerLayerOf(e, cause).String() + " event"
	case linkEntity:
		if sender := e.facts().sender; sender != "" && cause.entity == sender && cause.entity != e.entity {
			return "the signal was sent by a process of " + sender
		}
		if cause.entity != e.entity {
			return "same pod " + e.pod
		}
		return "same entity " + e.entity
	case linkPeer:
		peer := peerAddress(e.peerAddr, e.peerPort)
		switch {
		case e.peerTarget != "" && cause.entity == e.peerTarget:
			return peer + " is served by " + e.peerTarget + " (known from " + peerSourceWords[e.peerVia] + ")"
		case cause.peerAddr == e.peerAddr && cause.peerPort == e.peerPort:
			return "another failure to reach " + peer
		case cause.service != "" && firstLabel(e.peerAddr) == cause.service:
			return peer + " names the service " + cause.service
		}
		return "failure to reach " + peer
	case linkService:
		return "same service " + e.service
	case linkHost:
		return "an I/O error on its host " + time.Duration(e.time-cause.time).Round(time.Millisecond).String() + " before it: " + narrativeOf(cause)
	}
	return ""
}

func lowerLayerOf(a, b *problemEvent) unifiedevent.Layer {
	if a.layer != unifiedevent.LayerKubernetes {
		return a.layer
	}
	return b.layer
}

// narrativeOf returns the event's sentence: its body, or for spans one written from its facts.
func narrativeOf(e *problemEvent) string {
	if e.narrative != "" {
		return e.narrative
	}
	if e.isSpan {
		d := e.facts()
		failure := d.errorType
		if d.httpStatus != 0 {
			failure = "HTTP " + strconv.Itoa(int(d.httpStatus))
		}
		target := d.dbSystem
		if e.peerAddr != "" {
			if target != "" {
				target += " at "
			}
			target += peerAddress(e.peerAddr, e.peerPort)
		}
		return unifiedevent.SpanNarrative(e.name, e.service, spanKindName(d.kind), d.spanName, target, failure, time.Duration(d.duration))
	}
	return string(e.name) + " on " + e.entity
}

func summarize(rootNarrative string, count int, services []string, confidence float64) string {
	if count <= 1 {
		return rootNarrative
	}
	var b strings.Builder
	b.WriteString(strings.TrimRight(rootNarrative, ". "))
	b.WriteString("; root cause of ")
	b.WriteString(strconv.Itoa(count - 1))
	if count == 2 {
		b.WriteString(" related event")
	} else {
		b.WriteString(" related events")
	}
	if len(services) > 0 {
		b.WriteString(" in ")
		for i, svc := range services {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(svc)
		}
	}
	b.WriteString(" (confidence ")
	b.WriteString(strconv.FormatFloat(roundConfidence(confidence), 'f', 2, 64))
	b.WriteString(")")
	return b.String()
}

func roundConfidence(c float64) float64 {
	return float64(int64(c*1000+0.5)) / 1000
}

func shortSpan(s pcommon.SpanID) string { return hex.EncodeToString(s[:]) }

// peerAddress writes a peer as host:port; port 0 means the event named no port.
func peerAddress(addr string, port int32) string {
	if port == 0 {
		return addr
	}
	return net.JoinHostPort(addr, strconv.Itoa(int(port)))
}

func spanKindName(k ptrace.SpanKind) string {
	switch k {
	case ptrace.SpanKindServer:
		return "SERVER"
	case ptrace.SpanKindClient:
		return "CLIENT"
	case ptrace.SpanKindProducer:
		return "PRODUCER"
	case ptrace.SpanKindConsumer:
		return "CONSUMER"
	case ptrace.SpanKindInternal:
		return "INTERNAL"
	}
	return "UNSPECIFIED"
}
