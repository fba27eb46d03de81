package correlationconnector

import (
	"context"
	"net/url"
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

// ignoreReason says why a log record was not taken into state.
type ignoreReason uint8

const (
	ignoreNotUnifiedEvent ignoreReason = iota
	ignoreUnknownName
	ignoreContextEvent
	ignoreReasonCount
)

var ignoreReasonNames = [ignoreReasonCount]string{
	ignoreNotUnifiedEvent: "not_unified_event",
	ignoreUnknownName:     "unknown_event_name",
	ignoreContextEvent:    "context_event",
}

// acceptKind says what was taken into state.
type acceptKind uint8

const (
	acceptSpan acceptKind = iota
	acceptProblem
	acceptListen
	acceptBreach
	acceptKindCount
)

var acceptKindNames = [acceptKindCount]string{
	acceptSpan:    "span",
	acceptProblem: "problem_event",
	acceptListen:  "listen",
	acceptBreach:  "threshold_breach",
}

// batch is the scratch space of one Consume call, pooled so that the hot path reuses it.
type batch struct {
	nodes    [][]spanNode // per shard
	problems []pendingEvent
	tally    tally
	// ops records what the call changed in the incident book, for the write-ahead log.
	ops walOps
	// lastPeer avoids re-registering the same SERVER address for every span of a batch.
	lastPeer       peerKey
	lastPeerEntity string
	// healthy holds what succeeded in this batch, for the health ledger; lastHealthy* skip
	// repeats of the same key within the batch.
	healthy           []healthObservation
	lastHealthyServer *resourceFacts
	lastHealthyClient peerKey
	// names remembers the catalogue entries of the last event names read: a batch's events carry a
	// few names (a storm's CLIENT and SERVER spans alternate two), most often the very strings the
	// processor wrote on each of them.
	names nameCache
}

// nameCache is a memo of unifiedevent.Lookup for a few names; when full, the oldest gives way.
type nameCache struct {
	entries [4]nameEntry
	next    int
}

type nameEntry struct {
	name  string
	def   unifiedevent.Definition
	known bool
}

func (n *nameCache) lookup(name string) (unifiedevent.Definition, bool) {
	for i := range n.entries {
		if e := &n.entries[i]; e.name == name && name != "" {
			return e.def, e.known
		}
	}
	e := &n.entries[n.next]
	n.next = (n.next + 1) % len(n.entries)
	e.def, e.known = unifiedevent.Lookup(name)
	e.name = name
	return e.def, e.known
}

// tally counts one Consume call so that instruments are updated once per batch.
type tally struct {
	accepted  [acceptKindCount]int64
	ignored   [ignoreReasonCount]int64
	late      int64
	evicted   [evictReasonCount]int64
	spansHeld int64
	problems  int64
	openDelta int64
	emitted   [emitTriggerCount]int64
	links     [linkReasonCount]int64
	breaches  map[int]int64
	// withoutConsequence counts, by event name, the events of groups closed without becoming an
	// incident; allocated on first use (closing such a group is rare next to ingest).
	withoutConsequence map[unifiedevent.Name]int64
}

func (c *correlator) getBatch() *batch {
	b := c.batches.Get().(*batch)
	if len(b.nodes) != len(c.store.shards) {
		b.nodes = make([][]spanNode, len(c.store.shards))
	}
	return b
}

func (c *correlator) putBatch(b *batch) {
	for i := range b.nodes {
		b.nodes[i] = b.nodes[i][:0]
	}
	clear(b.problems)
	b.problems = b.problems[:0]
	b.ops.reset()
	breaches := b.tally.breaches
	clear(breaches)
	b.tally = tally{breaches: breaches}
	b.lastPeer, b.lastPeerEntity = peerKey{}, ""
	clear(b.healthy)
	b.healthy = b.healthy[:0]
	b.lastHealthyServer, b.lastHealthyClient = nil, peerKey{}
	b.names = nameCache{}
	c.batches.Put(b)
}

// resourceFacts is what a resource says about every event under it.
type resourceFacts struct {
	attrs        pcommon.Map
	host         string
	service      string
	podUID       string
	podIP        string
	podNamespace string
	podName      string
	entity       string // tapio.entity.id on the resource (metrics), else computed on demand
	entityDone   bool
	// rule is the entity rule's answer for the resource alone (ResourceEntityID), computed on
	// demand: the entity of every event under it that names none of its own.
	rule     string
	ruleDone bool
}

// readResource reads a resource once. localHost stands in for a missing host.name: telemetry
// that does not say where it comes from is taken as from the collector's own host, which is what
// a loopback address in it can only mean in a one-host deployment.
func readResource(res pcommon.Map, localHost string) resourceFacts {
	f := resourceFacts{attrs: res, host: localHost}
	res.Range(func(k string, v pcommon.Value) bool {
		if v.Type() != pcommon.ValueTypeStr {
			return true
		}
		switch k {
		case unifiedevent.KeyServiceName:
			f.service = v.Str()
		case unifiedevent.KeyHostName:
			f.host = v.Str()
		case unifiedevent.KeyK8sPodUID:
			f.podUID = v.Str()
		case unifiedevent.KeyK8sPodIP:
			f.podIP = v.Str()
		case unifiedevent.KeyK8sNamespaceName:
			f.podNamespace = v.Str()
		case unifiedevent.KeyK8sPodName:
			f.podName = v.Str()
		case unifiedevent.KeyEntityID:
			f.entity, f.entityDone = v.Str(), true
		}
		return true
	})
	return f
}

// resourceEntity is the entity of the resource alone: who serves a pod IP or a listen socket.
func (f *resourceFacts) resourceEntity() string {
	if !f.entityDone {
		f.entity, f.entityDone = f.ruleEntity(), true
	}
	return f.entity
}

// ruleEntity is the entity rule's answer for the resource alone, whatever tapio.entity.id the
// resource carries.
func (f *resourceFacts) ruleEntity() string {
	if !f.ruleDone {
		f.rule, f.ruleDone = unifiedevent.ResourceEntityID(f.attrs), true
	}
	return f.rule
}

func (c *correlator) registerPodIP(t *tally, f *resourceFacts, now int64) {
	if f.podIP == "" {
		return
	}
	t.evicted[evictPeers] += int64(c.peers.register(peerKey{addr: f.podIP}, f.resourceEntity(), peerFromPodIP, now))
}

func (c *correlator) consumeTraces(ctx context.Context, td ptrace.Traces) error {
	now := c.clock.Now().UnixNano()
	oldest := now - c.window
	b := c.getBatch()
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		res := readResource(rs.Resource().Attributes(), c.localHost)
		c.registerPodIP(&b.tally, &res, now)
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				c.readSpan(b, &res, spans.At(k), now, oldest)
			}
		}
	}
	return c.commit(ctx, b, now)
}

func (c *correlator) readSpan(b *batch, res *resourceFacts, span ptrace.Span, now, oldest int64) {
	tid := span.TraceID()
	end := int64(span.EndTimestamp())
	if end == 0 {
		end = int64(span.StartTimestamp())
	}
	if end == 0 {
		end = now
	}
	if end < oldest {
		b.tally.late++
		return
	}
	attrs := span.Attributes()
	problem := false
	var def unifiedevent.Definition
	if v, ok := attrs.Get(unifiedevent.KeyEventName); ok && v.Type() == pcommon.ValueTypeStr {
		if d, known := b.names.lookup(v.Str()); known && d.Problem {
			def, problem = d, true
		}
	}
	if span.Kind() == ptrace.SpanKindServer {
		c.registerServerSpan(b, res, attrs, now)
	}
	if !problem && span.Status().Code() != ptrace.StatusCodeError {
		c.observeHealthy(b, res, span.Kind(), attrs, end)
	}
	if problem {
		e := c.appendProblem(b)
		e.time = end
		e.name, e.layer = def.Name, def.Layer
		e.trace, e.span, e.parent = tid, span.SpanID(), span.ParentSpanID()
		e.isSpan = true
		e.details.kind = span.Kind()
		e.details.spanName = span.Name()
		e.details.duration = int64(span.EndTimestamp()) - int64(span.StartTimestamp())
		if span.Status().Code() == ptrace.StatusCodeError && span.Status().Message() != "" {
			e.details.errorType = span.Status().Message()
		}
		c.policy.classifySpan(&e.problemEvent, span.Kind(), readEventAttributes(e, res, attrs).signal)
		if !e.hasEventID {
			// Minimal annotation leaves a span's event id to its trace and span ids.
			e.eventID, e.hasEventID = unifiedevent.SpanEventID(tid, e.span)
		}
		b.tally.accepted[acceptProblem]++
	}
	if tid.IsEmpty() {
		return
	}
	sh := c.store.shardOf(tid)
	b.nodes[sh] = append(b.nodes[sh], spanNode{trace: tid, span: span.SpanID(), parent: span.ParentSpanID(), problem: problem})
	b.tally.accepted[acceptSpan]++
}

// registerServerSpan learns that the address clients used for this SERVER span is served by the
// span's entity.
func (c *correlator) registerServerSpan(b *batch, res *resourceFacts, attrs pcommon.Map, now int64) {
	addr, ok := attrs.Get(unifiedevent.KeyServerAddress)
	if !ok || addr.Type() != pcommon.ValueTypeStr {
		return
	}
	port, _ := unifiedevent.IntAttribute(attrs, unifiedevent.KeyServerPort)
	entity := res.resourceEntity()
	key := endpoint(addr.Str(), port, res.host)
	if key == b.lastPeer && entity == b.lastPeerEntity {
		return
	}
	b.lastPeer, b.lastPeerEntity = key, entity
	b.tally.evicted[evictPeers] += int64(c.peers.register(key, entity, peerFromSpan, now))
}

// observeHealthy notes that a request succeeded: a SERVER span for its service and workload, a
// CLIENT span for the address it called and the entity serving that address. Evidence bound
// through those keys long enough before is taken as recovered (IncidentPolicy.RecoveryDelay).
func (c *correlator) observeHealthy(b *batch, res *resourceFacts, kind ptrace.SpanKind, attrs pcommon.Map, at int64) {
	if c.book.recoveryDelay <= 0 {
		return
	}
	switch kind {
	case ptrace.SpanKindServer:
		if b.lastHealthyServer == res {
			return
		}
		b.lastHealthyServer = res
		if e := res.resourceEntity(); e != "" {
			b.healthy = append(b.healthy, healthObservation{linkKey{kind: keyEntity, name: e}, at})
		}
		if res.service != "" {
			b.healthy = append(b.healthy, healthObservation{linkKey{kind: keyService, name: res.service}, at})
		}
	case ptrace.SpanKindClient:
		addr, port := calledAddress(attrs)
		if addr == "" {
			return
		}
		key := endpoint(addr, port, res.host)
		if key == b.lastHealthyClient {
			return
		}
		b.lastHealthyClient = key
		b.healthy = append(b.healthy, healthObservation{linkKey{kind: keyDestination, name: key.addr, port: port, scope: key.scope}, at})
		if target, _, ok := c.peers.resolve(key); ok {
			b.healthy = append(b.healthy, healthObservation{linkKey{kind: keyEntity, name: target}, at})
		}
	}
}

// calledAddress is the address a CLIENT span called, by the semantic conventions old and new.
func calledAddress(attrs pcommon.Map) (string, int64) {
	f := unifiedevent.ReadCallFacts(attrs)
	return f.PeerAddress, f.PeerPort
}

func (c *correlator) appendProblem(b *batch) *pendingEvent {
	b.problems = append(b.problems, pendingEvent{})
	return &b.problems[len(b.problems)-1]
}

// eventExtras are facts of a problem event read with its attributes that are used at once, not
// kept: the signal for the incident policy, and the served endpoint of a server-side socket event.
// Strings point into the batch.
type eventExtras struct {
	signal  string
	server  bool
	srcAddr string
	srcPort int64
	netns   int64
	// connString is a database connection string, read for its host when no key names the peer.
	connString string
}

// readEventAttributes reads, in one pass, what a problem event's attributes say.
func readEventAttributes(e *pendingEvent, res *resourceFacts, attrs pcommon.Map) (x eventExtras) {
	var destAddr string
	var destPort int64
	var call unifiedevent.CallFacts
	namesEntity := false
	attrs.Range(func(k string, v pcommon.Value) bool {
		namesEntity = namesEntity || unifiedevent.IsEntityKey(k)
		if call.Take(k, v) {
			return true
		}
		switch k {
		case unifiedevent.KeyEventID:
			if v.Type() == pcommon.ValueTypeStr {
				e.hasEventID = parseEventID(v.Str(), &e.eventID)
			}
		case unifiedevent.KeyEntityID:
			e.entity = unifiedevent.StringValue(v)
		case unifiedevent.KeyDBConnectionStringLegacy:
			x.connString = unifiedevent.StringValue(v)
		case unifiedevent.KeyErrorType:
			e.details.errorType = unifiedevent.StringValue(v)
		case unifiedevent.KeyEndUserID:
			e.details.endUser = unifiedevent.StringValue(v)
		case unifiedevent.KeyUserID:
			e.details.user = unifiedevent.StringValue(v)
		case unifiedevent.KeySessionID:
			e.details.session = unifiedevent.StringValue(v)
		case unifiedevent.KeyDestinationAddress:
			destAddr = unifiedevent.StringValue(v)
		case unifiedevent.KeyDestinationPort:
			destPort, _ = unifiedevent.IntValue(v)
		case unifiedevent.KeyKernelSignalName:
			x.signal = unifiedevent.StringValue(v)
		case unifiedevent.KeyKernelSignalSenderEntityID:
			e.details.sender = unifiedevent.StringValue(v)
		case unifiedevent.KeyNetworkNamespace:
			x.netns, _ = unifiedevent.IntValue(v)
		case unifiedevent.KeyNetworkSide:
			x.server = unifiedevent.StringValue(v) == "server"
		case unifiedevent.KeySourceAddress:
			x.srcAddr = unifiedevent.StringValue(v)
		case unifiedevent.KeySourcePort:
			x.srcPort, _ = unifiedevent.IntValue(v)
		}
		return true
	})
	e.details.route = call.HTTPRoute
	e.details.dbSystem = call.DBSystem
	if call.PeerAddress == "" && x.connString != "" {
		call.PeerAddress, call.PeerPort = hostOfConnectionString(x.connString)
	}
	e.details.httpStatus = int32(call.HTTPStatus)
	// A client failure is about the address it called: destination.* for kernel events, the
	// called address of the conventions (server.*, net.peer.*, network.peer.*) for CLIENT spans
	// and logs.
	if isClientFailure(e.name) || (e.name == unifiedevent.SlowSpan && e.details.kind == ptrace.SpanKindClient) {
		switch {
		case destAddr != "":
			e.peerAddr, e.peerPort = destAddr, int32(destPort)
		case call.PeerAddress != "":
			e.peerAddr, e.peerPort = call.PeerAddress, int32(call.PeerPort)
		}
	}
	e.service = res.service
	e.podNamespace, e.podName = res.podNamespace, res.podName
	if e.entity == "" {
		// Not written (a span in minimal annotation): the entity rule's, which for an event that
		// names no entity key of its own is its resource's.
		if namesEntity {
			e.entity = unifiedevent.EntityID(res.attrs, attrs)
		} else {
			e.entity = res.ruleEntity()
		}
	}
	if e.details.sender == e.entity {
		e.details.sender = "" // a signal from within the workload adds no key
	}
	if e.peerAddr != "" {
		e.details.peerScope = endpoint(e.peerAddr, 0, localScope(res.host, x.netns)).scope
	}
	return x
}

func (c *correlator) consumeLogs(ctx context.Context, ld plog.Logs) error {
	now := c.clock.Now().UnixNano()
	oldest := now - c.window
	b := c.getBatch()
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		res := readResource(rl.Resource().Attributes(), c.localHost)
		c.registerPodIP(&b.tally, &res, now)
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			records := sls.At(j).LogRecords()
			for k := 0; k < records.Len(); k++ {
				c.readLogRecord(b, &res, records.At(k), now, oldest)
			}
		}
	}
	return c.commit(ctx, b, now)
}

func (c *correlator) readLogRecord(b *batch, res *resourceFacts, rec plog.LogRecord, now, oldest int64) {
	attrs := rec.Attributes()
	v, ok := attrs.Get(unifiedevent.KeyEventName)
	if !ok || v.Type() != pcommon.ValueTypeStr || !unifiedevent.IsTapioName(v.Str()) {
		b.tally.ignored[ignoreNotUnifiedEvent]++
		return
	}
	def, known := b.names.lookup(v.Str())
	if !known {
		b.tally.ignored[ignoreUnknownName]++
		return
	}
	if def.Name == unifiedevent.Listen {
		c.registerListen(b, res, attrs, now)
		return
	}
	if !def.Problem {
		b.tally.ignored[ignoreContextEvent]++
		return
	}
	ts := int64(rec.Timestamp())
	if ts == 0 {
		ts = int64(rec.ObservedTimestamp())
	}
	if ts == 0 {
		ts = now
	}
	if ts < oldest {
		b.tally.late += unifiedevent.RepeatCount(attrs) // a merged record's events are all late
		return
	}
	e := c.appendProblem(b)
	e.time = ts
	e.name, e.layer = def.Name, def.Layer
	e.trace, e.span = rec.TraceID(), rec.SpanID()
	if rec.Body().Type() == pcommon.ValueTypeStr {
		e.narrative = rec.Body().Str()
	}
	x := readEventAttributes(e, res, attrs)
	// A record that merged repeats of one event (the ebpf receiver's, logdedup's) stands for
	// log_count events: the incident counts them all.
	e.repeats = uint32(unifiedevent.RepeatCount(attrs) - 1)
	c.policy.classify(&e.problemEvent, x.signal)
	if e.name == unifiedevent.IOError || e.class&classCrash != 0 {
		e.details.host = res.host
	}
	if x.server && x.srcAddr != "" && e.entity != "" {
		// The event's process accepted this connection: clients that failed to reach the
		// endpoint failed to reach its workload.
		key := endpoint(x.srcAddr, x.srcPort, localScope(res.host, x.netns))
		b.tally.evicted[evictPeers] += int64(c.peers.register(key, e.entity, peerFromAccepted, now))
	}
	b.tally.accepted[acceptProblem] += int64(e.events())
}

// registerListen learns that the listening socket's address is served by the event's entity: the
// address itself, or for a wildcard listen the pod IP; and the service name on that port, so that
// clients calling the server by its name resolve too.
func (c *correlator) registerListen(b *batch, res *resourceFacts, attrs pcommon.Map, now int64) {
	addr := unifiedevent.StringAttribute(attrs, unifiedevent.KeySourceAddress)
	port, _ := unifiedevent.IntAttribute(attrs, unifiedevent.KeySourcePort)
	netns, _ := unifiedevent.IntAttribute(attrs, unifiedevent.KeyNetworkNamespace)
	entity := unifiedevent.StringAttribute(attrs, unifiedevent.KeyEntityID)
	if entity == "" {
		entity = unifiedevent.EntityID(res.attrs, attrs)
	}
	// The address itself — a loopback or wildcard one within its host and namespace — and for a
	// wildcard listen in a pod, the pod IP.
	evicted := c.peers.register(endpoint(addr, port, localScope(res.host, netns)), entity, peerFromListen, now)
	if isWildcard(addr) && res.podIP != "" {
		evicted += c.peers.register(peerKey{addr: res.podIP, port: port}, entity, peerFromListen, now)
	}
	if res.service != "" {
		evicted += c.peers.register(peerKey{addr: res.service, port: port}, entity, peerFromListen, now)
	}
	b.tally.evicted[evictPeers] += int64(evicted)
	b.tally.accepted[acceptListen]++
}

// hostOfConnectionString reads the host and port of a URL-shaped connection string
// ("redis://127.0.0.1:6379/0", "postgres://user@db:5432/shop"); anything else names no host.
func hostOfConnectionString(s string) (string, int64) {
	u, err := url.Parse(s)
	if err != nil || u.Hostname() == "" {
		return "", 0
	}
	port, _ := strconv.ParseInt(u.Port(), 10, 64)
	return u.Hostname(), port
}
