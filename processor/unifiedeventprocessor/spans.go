package unifiedeventprocessor

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

func (n *normalizer) processTraces(ctx context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	var t tally
	var ids unifiedevent.EventIDs
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		resource := rs.Resource().Attributes()
		res := spanResource{entity: resourceEntity{attrs: resource}, service: unifiedevent.StringAttribute(resource, unifiedevent.KeyServiceName), ids: &ids}
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			spans := ss.Spans()
			annotatedHere := false
			for k := 0; k < spans.Len(); k++ {
				if n.annotateSpan(&res, spans.At(k)) {
					t.normalized[unifiedevent.LayerTrace]++
					annotatedHere = true
				}
			}
			if annotatedHere {
				unifiedevent.MarkScope(ss.Scope())
			}
		}
	}
	n.report(ctx, &t)
	return td, nil
}

// spanResource is what the spans of one ResourceSpans share.
type spanResource struct {
	entity  resourceEntity
	service string
	// ids are the Consume call's event ids, made a block at a time.
	ids *unifiedevent.EventIDs
}

// spanFacts is what one pass over a span's attributes tells about its outcome.
type spanFacts struct {
	call         unifiedevent.CallFacts
	hasErrorType bool
	// hasTapioName: the span already carries a Tapio event name (a Tapio collector before us).
	hasTapioName bool
	// namesEntity: the span carries a key of the entity rule, so its entity is not its resource's.
	namesEntity bool
}

func readSpanFacts(attrs pcommon.Map) spanFacts {
	var f spanFacts
	attrs.Range(func(k string, v pcommon.Value) bool {
		switch {
		case f.call.Take(k, v):
		case k == unifiedevent.KeyErrorType:
			f.hasErrorType = true
		case k == unifiedevent.KeyEventName:
			f.hasTapioName = v.Type() == pcommon.ValueTypeStr && unifiedevent.IsTapioName(v.Str())
		}
		f.namesEntity = f.namesEntity || unifiedevent.IsEntityKey(k)
		return true
	})
	return f
}

// gRPC codes that mean the server failed (semantic conventions for gRPC server spans): UNKNOWN,
// DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS. Client-caused codes such as
// NOT_FOUND are not server errors.
func grpcServerError(code int64) bool {
	switch code {
	case 2, 4, 12, 13, 14, 15:
		return true
	}
	return false
}

// classifySpan returns the event a span is, or "" when it is neither failed nor slow.
func (n *normalizer) classifySpan(service string, span ptrace.Span, facts spanFacts) (unifiedevent.Name, time.Duration) {
	failed := span.Status().Code() == ptrace.StatusCodeError
	switch span.Kind() {
	case ptrace.SpanKindServer:
		if failed || facts.call.HTTPStatus >= 500 || (facts.call.Has(unifiedevent.FactGRPCStatus) && grpcServerError(facts.call.GRPCStatus)) {
			return unifiedevent.ServerError, 0
		}
	case ptrace.SpanKindClient:
		if failed || facts.call.HTTPStatus >= 500 || (facts.call.Has(unifiedevent.FactGRPCStatus) && facts.call.GRPCStatus != 0) || facts.hasErrorType {
			return unifiedevent.DependencyError, 0
		}
	}
	threshold := n.slow.threshold(service, facts.call.HTTPRoute)
	if threshold > 0 {
		start, end := span.StartTimestamp(), span.EndTimestamp()
		if end > start && time.Duration(end-start) > threshold {
			return unifiedevent.SlowSpan, threshold
		}
	}
	return "", 0
}

// annotateSpan writes the UnifiedEvent attributes onto a failed or slow span in place. A span
// that already carries a Tapio event name (a second Tapio collector in the path) is left alone.
func (n *normalizer) annotateSpan(res *spanResource, span ptrace.Span) bool {
	attrs := span.Attributes()
	facts := readSpanFacts(attrs)
	if facts.hasTapioName {
		return false
	}
	name, threshold := n.classifySpan(res.service, span, facts)
	if name == "" || !n.names.allows(name) {
		return false
	}
	def := spanDefinition(name)
	if n.cfg.Spans.Annotation == AnnotateMinimal {
		annotateMinimal(res, span, attrs, def, threshold)
	} else {
		annotateFull(res, span, attrs, def, threshold, facts.namesEntity)
	}
	return true
}

// annotateFull writes every core key onto a span. Room for exactly what is written is made at
// once: a decoded span's attributes were appended one by one, so there is often room already, and
// asking for more than is written would copy them all for nothing.
func annotateFull(res *spanResource, span ptrace.Span, attrs pcommon.Map, def unifiedevent.Definition, threshold time.Duration, namesEntity bool) {
	entity := res.entity.of(attrs, namesEntity)
	written := unifiedevent.StampedKeys
	if entity != "" {
		written++
	}
	if threshold > 0 {
		written++
	}
	attrs.EnsureCapacity(attrs.Len() + written)
	ue := unifiedevent.Of(attrs)
	ue.StampWithID(def, sourceOTLP, spanEventID(res, span))
	ue.SetEntityID(entity)
	if threshold > 0 {
		attrs.PutInt(unifiedevent.KeyTraceLatencyThresholdMs, threshold.Milliseconds())
	}
}

// annotateMinimal writes only what nothing else implies (StampIdentity): for a span with a trace
// id, its name — and a slow span's threshold. Its entity follows from its resource and
// attributes, which a reader has too.
func annotateMinimal(res *spanResource, span ptrace.Span, attrs pcommon.Map, def unifiedevent.Definition, threshold time.Duration) {
	var id string
	if span.TraceID().IsEmpty() {
		id = res.ids.Next() // no trace id to derive one from
	}
	written := 1
	if id != "" {
		written++
	}
	if threshold > 0 {
		written++
	}
	attrs.EnsureCapacity(attrs.Len() + written)
	unifiedevent.Of(attrs).StampIdentity(def, id)
	if threshold > 0 {
		attrs.PutInt(unifiedevent.KeyTraceLatencyThresholdMs, threshold.Milliseconds())
	}
}

// spanEventID is a span's event id: derived from its trace and span ids, or fresh when it has no
// trace id.
func spanEventID(res *spanResource, span ptrace.Span) string {
	if id := unifiedevent.SpanEventIDString(span.TraceID(), span.SpanID()); id != "" {
		return id
	}
	return res.ids.Next()
}

// The catalogue entries of the events a span can be, looked up once: annotateSpan runs for every
// failed span of an error storm.
var (
	serverErrorDefinition     = mustDefinition(unifiedevent.ServerError)
	dependencyErrorDefinition = mustDefinition(unifiedevent.DependencyError)
	slowSpanDefinition        = mustDefinition(unifiedevent.SlowSpan)
)

func mustDefinition(name unifiedevent.Name) unifiedevent.Definition {
	def, ok := unifiedevent.Lookup(string(name))
	if !ok {
		panic("unifiedevent catalogue has no " + string(name))
	}
	return def
}

// spanDefinition is the catalogue entry of a name classifySpan returned.
func spanDefinition(name unifiedevent.Name) unifiedevent.Definition {
	switch name {
	case unifiedevent.ServerError:
		return serverErrorDefinition
	case unifiedevent.DependencyError:
		return dependencyErrorDefinition
	}
	return slowSpanDefinition
}

// slowThresholds resolves the latency threshold for a span: service and route, then route, then
// service, then the default.
type slowThresholds struct {
	byServiceRoute map[[2]string]time.Duration
	byRoute        map[string]time.Duration
	byService      map[string]time.Duration
	fallback       time.Duration
}

func newSlowThresholds(cfg SpansConfig) slowThresholds {
	s := slowThresholds{fallback: cfg.SlowThreshold}
	for _, rule := range cfg.SlowThresholds {
		switch {
		case rule.Service != "" && rule.Route != "":
			if s.byServiceRoute == nil {
				s.byServiceRoute = map[[2]string]time.Duration{}
			}
			s.byServiceRoute[[2]string{rule.Service, rule.Route}] = rule.Threshold
		case rule.Route != "":
			if s.byRoute == nil {
				s.byRoute = map[string]time.Duration{}
			}
			s.byRoute[rule.Route] = rule.Threshold
		default:
			if s.byService == nil {
				s.byService = map[string]time.Duration{}
			}
			s.byService[rule.Service] = rule.Threshold
		}
	}
	return s
}

func (s *slowThresholds) threshold(service, route string) time.Duration {
	if s.byServiceRoute != nil && route != "" {
		if d, ok := s.byServiceRoute[[2]string{service, route}]; ok {
			return d
		}
	}
	if s.byRoute != nil && route != "" {
		if d, ok := s.byRoute[route]; ok {
			return d
		}
	}
	if s.byService != nil {
		if d, ok := s.byService[service]; ok {
			return d
		}
	}
	return s.fallback
}
