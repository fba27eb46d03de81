package correlationconnector

import (
	"bytes"
	"slices"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

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

// chainScratch is reused by every build, under the builder's lock, so that building a chain allocates only
// what the output record needs.
type chainScratch struct {
	order      []int32
	pos        []int32
	ancestor   []int32
	bestChild  []int32
	byTrace    []int32 // indices with trace context, grouped by trace
	links      []chainLink
	forward    []chainLink // each event's strongest link to a later event
	at         []timeLayer
	shape      traceShape
	bySpan     map[spanRef]int32
	byLogSpan  map[spanRef]int32
	lastTrace  map[pcommon.TraceID]int32
	lastExemp  map[pcommon.TraceID]int32 // traces reached through metric exemplars
	lastEnt    map[string]int32
	lastPod    map[string]int32
	lastSvc    map[string]int32
	lastDest   map[peerKey]int32
	lastOnHost map[peerKey]int32 // loopback failures of kernel events in other namespaces, by host
	lastIOErr  map[string]int32  // I/O errors, by host
	seenTrace  map[pcommon.TraceID]struct{}
	seenSvc    map[string]struct{}
	// stalled marks, with stallGen, the events the memory stall before the OOM kill stallKill
	// explains (explainedByStall); a new kill or build takes a new generation.
	stalled   []uint32
	stallGen  uint32
	stallKill int32
	record    unifiedevent.CorrelationRecord // the record being built, refilled by every build
	unnested  []problemEvent                 // the events left when nested calls are folded
}

func newChainScratch() chainScratch {
	return chainScratch{
		shape:      traceShape{},
		bySpan:     map[spanRef]int32{},
		byLogSpan:  map[spanRef]int32{},
		lastTrace:  map[pcommon.TraceID]int32{},
		lastExemp:  map[pcommon.TraceID]int32{},
		lastEnt:    map[string]int32{},
		lastPod:    map[string]int32{},
		lastSvc:    map[string]int32{},
		lastDest:   map[peerKey]int32{},
		lastOnHost: map[peerKey]int32{},
		lastIOErr:  map[string]int32{},
		seenTrace:  map[pcommon.TraceID]struct{}{},
		seenSvc:    map[string]struct{}{},
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
	if cap(s.stalled) < n {
		s.stalled = make([]uint32, n)
	}
	s.stalled, s.stallKill = s.stalled[:n], -1
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
	clear(s.lastOnHost)
	clear(s.lastIOErr)
	clear(s.seenTrace)
	clear(s.seenSvc)
}

// orderChain puts events cause → effect: by time, except that an event of a lower layer moves
// ahead of higher-layer events at most clock_skew earlier than it — the kernel's OOM kill comes
// before Kubernetes' report of it even when Kubernetes' second-precision timestamp is earlier —
// and, within a layer, an event of lower causal precedence moves ahead the same way (the OOM kill
// before the SIGKILL the kernel sent its victim a moment earlier); an OOM kill also moves ahead of
// the trouble at its victim that its memory stall caused (stallExplains) — but never ahead of an
// event its trace says caused it.
func (rb *recordBuilder) orderChain(ev []problemEvent, s *chainScratch) {
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
			if cur.rank >= before.rank {
				break
			}
			// Past the skew only an OOM kill's stall reaches further back; asked last, since most
			// pairs are settled by their ranks and times.
			if gap := cur.time - before.time; gap > rb.skew && (gap > int64(oomStallLead) || !s.explainedByStall(ev, order[j], order[j-1])) {
				break
			}
			if causes(s.ancestor, order[j-1], order[j]) {
				break
			}
			order[j-1], order[j] = order[j], order[j-1]
		}
	}
}

// oomStallLead is how long before an OOM kill the trouble it explains may come. A memory cgroup
// at its limit stalls in reclaim and drops what it cannot charge — its clients' segments are
// retransmitted, their calls slow down and fail — for seconds before the OOM killer picks a victim
// (the rca suite's redis-oom: a client's retransmit to Redis came first).
const oomStallLead = 30 * time.Second

// stallExplains reports whether kill is an OOM kill and effect is trouble that a memory stall of
// its victim makes: segments to it retransmitted, connects to it timing out, connections to it
// reset, calls to it slow or failing — of the victim or addressed to it — and the victim's own
// error logs and exceptions. Not a refused connect (nothing listened: a stalled process still
// does), nor a report of the workload's state (Kubernetes' OOMKilled before the kernel's kill is
// of an earlier kill).
func stallExplains(kill, effect *problemEvent) bool {
	if kill.name != unifiedevent.OOMKill || kill.entity == "" {
		return false
	}
	switch effect.name {
	case unifiedevent.TCPRetransmit, unifiedevent.ConnectionTimeout, unifiedevent.ConnectionReset, unifiedevent.SlowSpan, unifiedevent.DependencyError:
		return effect.entity == kill.entity || effect.peerTarget == kill.entity
	case unifiedevent.ErrorLog, unifiedevent.Exception:
		return effect.entity == kill.entity
	}
	return false
}

// explainedByStall reports whether the memory stall before OOM kill explains event effect:
// trouble at the victim (stallExplains), or a failure such trouble propagated to up its trace —
// the request whose call to the stalled victim failed. The events are marked once per kill, only
// when a kill has trouble before it past the clock skew.
func (s *chainScratch) explainedByStall(ev []problemEvent, kill, effect int32) bool {
	k := &ev[kill]
	if k.name != unifiedevent.OOMKill || k.entity == "" {
		return false
	}
	if s.stallKill != kill {
		s.stallKill = kill
		s.stallGen++
		for i := range ev {
			if !stallExplains(k, &ev[i]) {
				continue
			}
			a := int32(i)
			for step := 0; step <= maxAncestorSteps && a >= 0 && s.stalled[a] != s.stallGen; step++ {
				s.stalled[a] = s.stallGen
				a = s.ancestor[a]
			}
		}
	}
	return s.stalled[effect] == s.stallGen
}

// timeLayer is the ordering key of an event, kept apart from the events for cache locality.
type timeLayer struct {
	time int64
	rank uint16
}

// causalRank orders events that are simultaneous within clock skew: by layer, then by causal
// precedence inside the layer.
func causalRank(e *problemEvent) uint16 {
	layer := e.layer
	if e.name == unifiedevent.IOError {
		// A failed disk write explains the crash of the process that wrote, which the kernel
		// reports a moment later as a kernel-layer signal: causally the I/O error ranks with
		// the kernel.
		layer = unifiedevent.LayerKernel
	}
	return uint16(layer)<<8 | uint16(unifiedevent.CausalPrecedence(e.name))
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
func (rb *recordBuilder) findAncestors(ev []problemEvent, s *chainScratch) {
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
		rb.store.shapeOf(t, s.shape)
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
func (rb *recordBuilder) linkChain(ev []problemEvent, s *chainScratch) {
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
	links := rb.cfg.Links
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
		within := func(j int32, ok bool) bool { return ok && absDiff(e.time, ev[j].time) <= rb.window }
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
		if host := e.facts().host; host != "" && e.name != unifiedevent.IOError {
			j, ok := s.lastIOErr[host]
			consider(j, ok && e.time >= ev[j].time && e.time-ev[j].time <= rb.skew, linkHost)
		}
		if sender := e.facts().sender; sender != "" {
			j, ok := s.lastEnt[sender]
			consider(j, within(j, ok), linkEntity)
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
			if host, use := onHost(e); use == useLookupOnly {
				j, ok := s.lastOnHost[peerKey{e.peerAddr, int64(e.peerPort), host}]
				consider(j, within(j, ok), linkPeer)
			}
			j, ok := s.lastDest[peerKey{e.peerAddr, int64(e.peerPort), e.facts().peerScope}]
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
		if host := e.facts().host; host != "" && e.name == unifiedevent.IOError {
			s.lastIOErr[host] = i
		}
		if e.service != "" {
			s.lastSvc[e.service] = i
		}
		if e.peerAddr != "" {
			s.lastDest[peerKey{e.peerAddr, int64(e.peerPort), e.facts().peerScope}] = i
			if host, use := onHost(e); use == useBindOnly {
				s.lastOnHost[peerKey{e.peerAddr, int64(e.peerPort), host}] = i
			}
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
