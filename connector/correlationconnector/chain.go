package correlationconnector

import (
	"bytes"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/yairfalse/tapio/connector/correlationconnector/internal/metadata"
	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

// maxAncestorSteps bounds the walk from a span to its failed ancestor (and any cycle in bad data).
const maxAncestorSteps = 256

type spanRef struct {
	trace pcommon.TraceID
	span  pcommon.SpanID
}

type podRef struct{ namespace, name string }

// chainLink is the best incoming link of one chain entry.
type chainLink struct {
	reason     linkReason
	cause      int32 // index of the causing event, -1 for none
	confidence float64
	forward    bool // no cause: the link is to a later event
}

// chainScratch is reused by every build, under c.mu, so that building a chain allocates only
// what the output record needs.
type chainScratch struct {
	order     []int32
	pos       []int32
	ancestor  []int32
	bestChild []int32
	byTrace   []int32 // indices with trace context, grouped by trace
	links     []chainLink
	forward   []chainLink // each event's strongest link to a later event
	at        []timeLayer
	shape     traceShape
	bySpan    map[spanRef]int32
	byLogSpan map[spanRef]int32
	lastTrace map[pcommon.TraceID]int32
	lastExemp map[pcommon.TraceID]int32 // traces reached through metric exemplars
	lastEnt   map[string]int32
	lastPod   map[string]int32
	lastSvc   map[string]int32
	lastDest  map[peerKey]int32
	seenTrace map[pcommon.TraceID]struct{}
	seenSvc   map[string]struct{}
}

func newChainScratch() chainScratch {
	return chainScratch{
		shape:     traceShape{},
		bySpan:    map[spanRef]int32{},
		byLogSpan: map[spanRef]int32{},
		lastTrace: map[pcommon.TraceID]int32{},
		lastExemp: map[pcommon.TraceID]int32{},
		lastEnt:   map[string]int32{},
		lastPod:   map[string]int32{},
		lastSvc:   map[string]int32{},
		lastDest:  map[peerKey]int32{},
		seenTrace: map[pcommon.TraceID]struct{}{},
		seenSvc:   map[string]struct{}{},
	}
}

func (s *chainScratch) reset(n int) {
	grow := func(v []int32) []int32 {
		if cap(v) < n {
			return make([]int32, n)
		}
		return v[:n]
	}
	s.order, s.pos, s.ancestor, s.bestChild = grow(s.order), grow(s.pos), grow(s.ancestor), grow(s.bestChild)
	s.byTrace = s.byTrace[:0]
	if cap(s.links) < n {
		s.links = make([]chainLink, n)
		s.forward = make([]chainLink, n)
		s.at = make([]timeLayer, n)
	}
	s.links, s.forward, s.at = s.links[:n], s.forward[:n], s.at[:n]
	clear(s.bySpan)
	clear(s.byLogSpan)
	clear(s.lastTrace)
	clear(s.lastExemp)
	clear(s.lastEnt)
	clear(s.lastPod)
	clear(s.lastSvc)
	clear(s.lastDest)
	clear(s.seenTrace)
	clear(s.seenSvc)
}

// orderChain puts events cause → effect: by time, except that an event of a lower layer moves
// ahead of higher-layer events at most clock_skew earlier than it — the kernel's OOM kill comes
// before Kubernetes' report of it even when Kubernetes' second-precision timestamp is earlier —
// and, within a layer, an event of lower causal precedence moves ahead the same way (the OOM kill
// before the SIGKILL the kernel sent its victim a moment earlier) — but never ahead of an event
// its trace says caused it.
func (c *correlator) orderChain(ev []problemEvent, s *chainScratch) {
	order, at := s.order, s.at
	for i := range ev {
		order[i] = int32(i)
		at[i] = timeLayer{ev[i].time, causalRank(&ev[i])}
	}
	slices.SortStableFunc(order, func(a, b int32) int {
		ea, eb := at[a], at[b]
		switch {
		case ea.time != eb.time:
			if ea.time < eb.time {
				return -1
			}
			return 1
		case ea.rank != eb.rank:
			return int(ea.rank) - int(eb.rank)
		}
		return 0
	})
	for i := 1; i < len(order); i++ {
		for j := i; j > 0; j-- {
			before, cur := at[order[j-1]], at[order[j]]
			if cur.rank >= before.rank || cur.time-before.time > c.skew || causes(s.ancestor, order[j-1], order[j]) {
				break
			}
			order[j-1], order[j] = order[j], order[j-1]
		}
	}
}

// timeLayer is the ordering key of an event, kept apart from the events for cache locality.
type timeLayer struct {
	time int64
	rank uint16
}

// causalRank orders events that are simultaneous within clock skew: by layer, then by causal
// precedence inside the layer.
func causalRank(e *problemEvent) uint16 {
	return uint16(e.layer)<<8 | uint16(unifiedevent.CausalPrecedence(e.name))
}

// causes reports whether a is below b in a trace: b is reached from a by ancestor steps.
func causes(ancestor []int32, a, b int32) bool {
	for step := 0; step < maxAncestorSteps && a >= 0; step++ {
		a = ancestor[a]
		if a == b {
			return true
		}
	}
	return false
}

// findAncestors sets, for every event with span context, the nearest event up its trace that its
// failure propagated to: a log written in an ancestor span, or a failed ancestor span. A log starts
// from the span it was written in. Unremarkable spans in between are walked through the span store.
func (c *correlator) findAncestors(ev []problemEvent, s *chainScratch) {
	for i := range ev {
		s.ancestor[i] = -1
		e := &ev[i]
		if e.trace.IsEmpty() || e.span.IsEmpty() {
			continue
		}
		if e.isSpan {
			s.bySpan[spanRef{e.trace, e.span}] = int32(i)
		} else {
			s.byLogSpan[spanRef{e.trace, e.span}] = int32(i)
		}
		s.byTrace = append(s.byTrace, int32(i))
	}
	slices.SortFunc(s.byTrace, func(a, b int32) int { return bytes.Compare(ev[a].trace[:], ev[b].trace[:]) })
	for start := 0; start < len(s.byTrace); {
		t := ev[s.byTrace[start]].trace
		end := start + 1
		for end < len(s.byTrace) && ev[s.byTrace[end]].trace == t {
			end++
		}
		clear(s.shape)
		c.store.shapeOf(t, s.shape)
		for _, i := range s.byTrace[start:end] {
			e := &ev[i]
			cur := e.span
			if e.isSpan {
				cur = e.parent
			}
			for step := 0; step < maxAncestorSteps && !cur.IsEmpty(); step++ {
				ref := spanRef{t, cur}
				// A log written in an ancestor span is an effect of this failure, and comes before
				// that span's own failure; a log does not look at the logs of its own span.
				if e.isSpan || step > 0 {
					if j, ok := s.byLogSpan[ref]; ok && j != i {
						s.ancestor[i] = j
						break
					}
				}
				if j, ok := s.bySpan[ref]; ok && j != i {
					s.ancestor[i] = j
					break
				}
				node, ok := s.shape[cur]
				if !ok {
					break
				}
				cur = node.parent
			}
		}
		start = end
	}
}

// linkChain picks each event's best incoming link from an event earlier in the chain.
func (c *correlator) linkChain(ev []problemEvent, s *chainScratch) {
	n := len(ev)
	for p, i := range s.order {
		s.pos[i] = int32(p)
		s.bestChild[i] = -1
	}
	for i := 0; i < n; i++ {
		if a := s.ancestor[i]; a >= 0 && s.pos[i] < s.pos[a] {
			if b := s.bestChild[a]; b < 0 || s.pos[i] > s.pos[b] {
				s.bestChild[a] = int32(i)
			}
		}
	}
	links := c.cfg.Links
	for _, i := range s.order {
		e := &ev[i]
		best := chainLink{cause: -1}
		consider := func(j int32, ok bool, r linkReason) {
			if !ok || j == i {
				return
			}
			conf := links.of(r)
			switch {
			case best.cause < 0, conf > best.confidence,
				conf == best.confidence && r < best.reason,
				conf == best.confidence && r == best.reason && s.pos[j] > s.pos[best.cause]:
				best = chainLink{reason: r, cause: j, confidence: conf}
			}
		}
		within := func(j int32, ok bool) bool { return ok && absDiff(e.time, ev[j].time) <= c.window }
		if b := s.bestChild[i]; b >= 0 {
			consider(b, true, linkTraceParent)
		}
		if !e.trace.IsEmpty() {
			j, ok := s.lastTrace[e.trace]
			consider(j, ok, linkTrace)
			j, ok = s.lastExemp[e.trace]
			consider(j, ok, linkExemplar)
		}
		if e.breach != nil {
			for _, t := range e.breach.exemplars {
				j, ok := s.lastTrace[t]
				consider(j, ok, linkExemplar)
			}
		}
		if e.entity != "" {
			j, ok := s.lastEnt[e.entity]
			if within(j, ok) {
				r := linkEntity
				if isKubernetesPair(e.layer, ev[j].layer) {
					r = linkKubernetes
				}
				consider(j, true, r)
			}
		}
		if e.pod != "" {
			j, ok := s.lastPod[e.pod]
			if within(j, ok) {
				r := linkEntity
				if isKubernetesPair(e.layer, ev[j].layer) {
					r = linkKubernetes
				}
				consider(j, true, r)
			}
		}
		if e.peerAddr != "" {
			if e.peerTarget != "" {
				j, ok := s.lastEnt[e.peerTarget]
				consider(j, within(j, ok), linkPeer)
			} else if !looksLikeIP(e.peerAddr) {
				j, ok := s.lastSvc[firstLabel(e.peerAddr)]
				consider(j, within(j, ok), linkPeer)
			}
			j, ok := s.lastDest[peerKey{e.peerAddr, int64(e.peerPort)}]
			consider(j, within(j, ok), linkPeer)
		}
		if e.service != "" {
			j, ok := s.lastSvc[e.service]
			consider(j, within(j, ok), linkService)
		}
		if best.cause < 0 {
			best.reason, best.confidence = linkNone, 0
		}
		s.links[i] = best

		if !e.trace.IsEmpty() {
			s.lastTrace[e.trace] = i
		}
		if e.breach != nil {
			for _, t := range e.breach.exemplars {
				s.lastExemp[t] = i
			}
		}
		if e.entity != "" {
			s.lastEnt[e.entity] = i
		}
		if e.pod != "" {
			s.lastPod[e.pod] = i
		}
		if e.service != "" {
			s.lastSvc[e.service] = i
		}
		if e.peerAddr != "" {
			s.lastDest[peerKey{e.peerAddr, int64(e.peerPort)}] = i
		}
	}

	// An event after the first with no link from an earlier one is explained by no event before
	// it: it is in the incident because a later event links to it. It carries that later link
	// (without a cause), or else the key it joined by.
	for i := range s.forward {
		s.forward[i] = chainLink{cause: -1}
	}
	for _, i := range s.order {
		l := s.links[i]
		if l.cause < 0 {
			continue
		}
		if f := &s.forward[l.cause]; f.reason == linkNone || l.confidence > f.confidence {
			*f = chainLink{reason: l.reason, cause: -1, confidence: l.confidence, forward: true}
		}
	}
	for p, i := range s.order {
		if p == 0 || s.links[i].cause >= 0 {
			continue
		}
		switch {
		case s.forward[i].reason != linkNone:
			s.links[i] = s.forward[i]
		case ev[i].joinReason != linkNone:
			s.links[i] = chainLink{reason: ev[i].joinReason, cause: -1, confidence: links.of(ev[i].joinReason)}
		default:
			s.links[i] = chainLink{reason: linkService, cause: -1, confidence: links.Service}
		}
	}
}

// buildRecord appends the correlation record of one snapshot to out. It runs under c.buildMu,
// not c.mu: the snapshot's events are never written again.
func (c *correlator) buildRecord(snap *snapshot, out plog.Logs, t *tally) {
	ev := snap.events
	if len(ev) == 0 {
		return
	}
	s := &c.scratch
	s.reset(len(ev))
	c.findAncestors(ev, s)
	c.orderChain(ev, s)
	c.linkChain(ev, s)

	rls := out.ResourceLogs()
	if rls.Len() == 0 {
		sl := rls.AppendEmpty().ScopeLogs().AppendEmpty()
		sl.Scope().SetName(metadata.ScopeName)
		unifiedevent.MarkScope(sl.Scope())
	}
	rec := rls.At(0).ScopeLogs().At(0).LogRecords().AppendEmpty()

	root := &ev[s.order[0]]
	t.emitted[snap.trigger]++
	for i := snap.told; i < len(ev); i++ {
		if r := s.links[i].reason; r != linkNone {
			t.links[r]++
		}
	}

	confidence := 1.0
	for _, i := range s.order[1:] {
		confidence = min(confidence, s.links[i].confidence)
	}

	attrs := rec.Attributes()
	attrs.EnsureCapacity(20)
	attrs.PutStr(unifiedevent.KeyEventName, string(unifiedevent.CorrelationName))
	attrs.PutStr(unifiedevent.KeyCorrelationID, snap.id)
	attrs.PutInt(unifiedevent.KeyCorrelationVersion, snap.version)
	attrs.PutDouble(unifiedevent.KeyCorrelationConfidence, roundConfidence(confidence))
	attrs.PutStr(unifiedevent.KeyRootCauseEventID, root.eventIDString())
	attrs.PutStr(unifiedevent.KeyRootCauseEventName, string(root.name))
	attrs.PutStr(unifiedevent.KeyRootCauseEntityID, root.entity)
	rootNarrative := narrativeOf(root)
	attrs.PutStr(unifiedevent.KeyRootCauseNarrative, rootNarrative)
	attrs.PutInt(unifiedevent.KeyCorrelationEventCount, int64(snap.eventCount))

	first, last := root.time, root.time
	chain := attrs.PutEmptySlice(unifiedevent.KeyCorrelationChain)
	chain.EnsureCapacity(len(ev))
	traces := attrs.PutEmptySlice(unifiedevent.KeyCorrelationTraceIDs)
	services := attrs.PutEmptySlice(unifiedevent.KeyCorrelationServices)
	var primary pcommon.TraceID
	addTrace := func(id pcommon.TraceID) {
		if id.IsEmpty() {
			return
		}
		if _, seen := s.seenTrace[id]; seen {
			return
		}
		s.seenTrace[id] = struct{}{}
		traces.AppendEmpty().SetStr(hex.EncodeToString(id[:]))
		if primary.IsEmpty() {
			primary = id
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
				services.AppendEmpty().SetStr(e.service)
			}
		}
		c.putChainEntry(chain.AppendEmpty().SetEmptyMap(), ev, e, s.links[i])
	}
	attrs.PutStr(unifiedevent.KeyCorrelationFirstSeen, formatTime(first))
	attrs.PutStr(unifiedevent.KeyCorrelationLastSeen, formatTime(last))
	if len(snap.mergedIDs) > 0 {
		merged := attrs.PutEmptySlice(unifiedevent.KeyCorrelationMergedIDs)
		for _, id := range snap.mergedIDs {
			merged.AppendEmpty().SetStr(id)
		}
	}
	recs := attrs.PutEmptySlice(unifiedevent.KeyRecommendations)
	for _, r := range c.advice.lookup(root) {
		m := recs.AppendEmpty().SetEmptyMap()
		m.PutStr(unifiedevent.RecommendationKeyHorizon, r.horizon)
		m.PutStr(unifiedevent.RecommendationKeyAction, r.action)
	}

	rec.SetTimestamp(pcommon.Timestamp(root.time))
	rec.SetObservedTimestamp(pcommon.Timestamp(c.clock.Now().UnixNano()))
	unifiedevent.SetSeverity(rec, plog.SeverityNumberError)
	if !primary.IsEmpty() {
		rec.SetTraceID(primary)
	}
	rec.Body().SetStr(summarize(rootNarrative, snap.eventCount, services, confidence))
}

func (c *correlator) putChainEntry(m pcommon.Map, ev []problemEvent, e *problemEvent, l chainLink) {
	m.EnsureCapacity(16)
	m.PutStr(unifiedevent.ChainKeyTime, formatTime(e.time))
	m.PutStr(unifiedevent.KeyLayer, e.layer.String())
	m.PutStr(unifiedevent.KeyEventName, string(e.name))
	m.PutStr(unifiedevent.KeyEntityID, e.entity)
	m.PutStr(unifiedevent.ChainKeyNarrative, narrativeOf(e))
	if e.hasEventID {
		m.PutStr(unifiedevent.KeyEventID, e.eventIDString())
	}
	if !e.trace.IsEmpty() {
		m.PutStr(unifiedevent.ChainKeyTraceID, hex.EncodeToString(e.trace[:]))
	}
	if !e.span.IsEmpty() {
		m.PutStr(unifiedevent.ChainKeySpanID, hex.EncodeToString(e.span[:]))
	}
	m.PutStr(unifiedevent.ChainKeyLinkReason, l.reason.String())
	if l.reason != linkNone {
		m.PutDouble(unifiedevent.ChainKeyLinkConfidence, l.confidence)
		m.PutStr(unifiedevent.ChainKeyLinkDetail, c.linkDetail(ev, e, l))
		if l.cause >= 0 && ev[l.cause].hasEventID {
			m.PutStr(unifiedevent.ChainKeyLinkCause, ev[l.cause].eventIDString())
		}
	}
	// Facts an impact exporter needs about the affected services; only what the event carried.
	if e.service != "" {
		m.PutStr(unifiedevent.KeyServiceName, e.service)
	}
	d := e.facts()
	if d.route != "" {
		m.PutStr(unifiedevent.KeyHTTPRoute, d.route)
	}
	if e.isSpan {
		m.PutStr(unifiedevent.ChainKeySpanKind, spanKindName(d.kind))
		if d.httpStatus != 0 {
			m.PutInt(unifiedevent.KeyHTTPResponseStatusCode, int64(d.httpStatus))
		}
	}
	if d.endUser != "" {
		m.PutStr(unifiedevent.KeyEndUserID, d.endUser)
	}
	if d.user != "" {
		m.PutStr(unifiedevent.KeyUserID, d.user)
	}
	if d.session != "" {
		m.PutStr(unifiedevent.KeySessionID, d.session)
	}
	if e.peerAddr != "" {
		m.PutStr(unifiedevent.ChainKeyPeer, joinHostPort(e.peerAddr, int64(e.peerPort)))
	}
	if e.breach != nil {
		rule := &c.cfg.Thresholds[e.breach.rule]
		m.PutStr(unifiedevent.ChainKeyMetricRule, rule.Name)
		m.PutStr(unifiedevent.ChainKeyMetricName, rule.Metric)
		m.PutDouble(unifiedevent.ChainKeyMetricValue, e.breach.value)
	}
}

// linkDetail says in words why e is linked to its cause.
func (c *correlator) linkDetail(ev []problemEvent, e *problemEvent, l chainLink) string {
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
		if cause.entity != e.entity {
			return "same pod " + e.pod
		}
		return "same entity " + e.entity
	case linkPeer:
		peer := joinHostPort(e.peerAddr, int64(e.peerPort))
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
		return unifiedevent.SpanNarrative(e.name, e.service, spanKindName(d.kind), d.spanName, failure, time.Duration(d.duration))
	}
	return string(e.name) + " on " + e.entity
}

func summarize(rootNarrative string, count int, services pcommon.Slice, confidence float64) string {
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
	if services.Len() > 0 {
		b.WriteString(" in ")
		for i := 0; i < services.Len(); i++ {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(services.At(i).Str())
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

func formatTime(ns int64) string {
	return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
}

func shortSpan(s pcommon.SpanID) string { return hex.EncodeToString(s[:]) }

func joinHostPort(addr string, port int64) string {
	if port == 0 {
		return addr
	}
	if strings.IndexByte(addr, ':') >= 0 {
		return "[" + addr + "]:" + strconv.FormatInt(port, 10)
	}
	return addr + ":" + strconv.FormatInt(port, 10)
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
