package ebpfreceiver

import (
	"net/netip"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
	"github.com/yairfalse/tapio/receiver/ebpfreceiver/internal/kernel"
	"github.com/yairfalse/tapio/receiver/ebpfreceiver/internal/metadata"
)

const sourceEBPF = "ebpf"

// logBuilder accumulates kernel events into one plog.Logs with one resource per process (in its
// cgroup) and batch: the resource says who an event is about — the host, the container, pod or
// service, the process — and is written once for all of that process's events in the batch,
// rather than a dozen attributes per event. A storm comes from few processes, so a batch holds
// few resources; each record carries only what differs per event.
type logBuilder struct {
	host    string
	version string
	logs    plog.Logs
	// groups holds the batch's groups, reused from batch to batch; byKey indexes them.
	groups    []resourceGroup
	byKey     map[groupKey]int
	last      int // the group of the previous event, -1 for none: a storm repeats one
	lastKey   groupKey
	count     int
	observed  pcommon.Timestamp
	cgroups   *cgroupCache
	ids       unifiedevent.EventIDs
	comms     map[[16]byte]string
	addresses map[addressKey]string
	entities  map[uint32]string // host/pid entity ids
	// The last connection's addresses and their strings: a storm repeats one pair.
	lastPair                    addressPair
	lastSource, lastDestination string
	// ownNetns is the collector's network namespace: sockets in another one say which.
	ownNetns uint32
	// ioThreshold is reported on io_latency events.
	ioThreshold time.Duration

	// mergeRepeats turns repeats of a connection failure within the batch into one record
	// (merge_repeats); repeats and byRepeat hold the batch's mergeable records, lastRepeat the
	// previous one: a storm repeats one.
	mergeRepeats  bool
	repeats       []repeat
	byRepeat      map[repeatKey]int
	lastRepeat    int
	lastRepeatKey repeatKey
	// merged counts, by kind, the events merged into an earlier record instead of a record of
	// their own, until the receiver takes them into self-telemetry (takeMerged).
	merged [kernel.KindCount]int64
}

// internLimit bounds the caches; when one is full it starts over.
const internLimit = 4096

// groupKey is everything the resource of a group says: two events with equal keys are about the
// same process in the same cgroup.
type groupKey struct {
	cgroupID        uint64
	tgid, ppid, uid uint32
	workloadTGID    uint32
	comm            [16]byte
}

func groupKeyOf(id *kernel.Identity) groupKey {
	if !id.Known() {
		return groupKey{}
	}
	return groupKey{cgroupID: id.CgroupID, tgid: id.TGID, ppid: id.PPID, uid: id.UID, workloadTGID: id.WorkloadTGID, comm: id.Comm}
}

type resourceGroup struct {
	records plog.LogRecordSlice
	// entityID is the workload the group's process belongs to, by the entity-id rule.
	entityID string
	comm     string
	// The last connection narrative written, and what it said: a storm of failing connects
	// from one process goes to one peer, and its sentence need not be built per event.
	narrativeKey connectionNarrativeKey
	narrative    string
}

type connectionNarrativeKey struct {
	kind   kernel.Kind
	remote addressKey
	err    int32
}

func newLogBuilder(host, version string, cgroups *cgroupCache) *logBuilder {
	return &logBuilder{host: host, version: version, logs: plog.NewLogs(), byKey: map[groupKey]int{}, last: -1,
		cgroups: cgroups, comms: map[[16]byte]string{}, addresses: map[addressKey]string{}, entities: map[uint32]string{},
		mergeRepeats: true, byRepeat: map[repeatKey]int{}, lastRepeat: -1}
}

// take hands over the accumulated logs and starts a new batch.
func (b *logBuilder) take() plog.Logs {
	b.closeRepeats()
	out := b.logs
	b.logs = plog.NewLogs()
	clear(b.groups) // nothing of this batch's pdata stays reachable from the builder
	b.groups = b.groups[:0]
	clear(b.byKey)
	b.last = -1
	b.count = 0
	return out
}

func (b *logBuilder) cgroupOf(id *kernel.Identity) *cgroupInfo {
	if !id.Known() {
		return unknownCgroup
	}
	return b.cgroups.info(id.CgroupID)
}

func (b *logBuilder) group(id *kernel.Identity) *resourceGroup {
	key := groupKeyOf(id)
	if b.last >= 0 && key == b.lastKey {
		return &b.groups[b.last]
	}
	i, ok := b.byKey[key]
	if !ok {
		i = len(b.groups)
		b.groups = append(b.groups, b.newGroup(id))
		b.byKey[key] = i
	}
	b.last, b.lastKey = i, key
	return &b.groups[i]
}

func (b *logBuilder) newGroup(id *kernel.Identity) resourceGroup {
	rl := b.logs.ResourceLogs().AppendEmpty()
	res := rl.Resource().Attributes()
	res.EnsureCapacity(10)
	res.PutStr(unifiedevent.KeyHostName, b.host)
	info := b.cgroupOf(id)
	if info.containerID != "" {
		res.PutStr(unifiedevent.KeyContainerID, info.containerID)
	}
	if info.podUID != "" {
		res.PutStr(unifiedevent.KeyK8sPodUID, info.podUID)
	}
	if info.workload != "" {
		res.PutStr(unifiedevent.KeyWorkloadCgroup, info.workload)
	}
	g := resourceGroup{entityID: b.entityOf(id, info.entityID)}
	if id.Known() {
		g.comm = b.comm(id)
		res.PutInt(unifiedevent.KeyProcessPID, int64(id.TGID))
		res.PutInt(unifiedevent.KeyProcessParentPID, int64(id.PPID))
		res.PutStr(unifiedevent.KeyProcessExecutableName, g.comm)
		res.PutInt(unifiedevent.KeyProcessUserID, int64(id.UID))
		if id.WorkloadTGID != 0 {
			res.PutInt(unifiedevent.KeyWorkloadPID, int64(id.WorkloadTGID))
		}
		if info.path != "" {
			res.PutStr(unifiedevent.KeyKernelCgroupPath, info.path)
		}
	}
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(metadata.ScopeName)
	sl.Scope().SetVersion(b.version)
	unifiedevent.MarkScope(sl.Scope())
	g.records = sl.LogRecords()
	return g
}

func (b *logBuilder) comm(id *kernel.Identity) string {
	if s, ok := b.comms[id.Comm]; ok {
		return s
	}
	if len(b.comms) >= internLimit {
		clear(b.comms)
	}
	s := string(kernel.CString(id.Comm[:]))
	b.comms[id.Comm] = s
	return s
}

// pidEntity is the entity id of a process of this host.
func (b *logBuilder) pidEntity(tgid uint32) string {
	if s, ok := b.entities[tgid]; ok {
		return s
	}
	if len(b.entities) >= internLimit {
		clear(b.entities)
	}
	s := unifiedevent.HostPIDEntityID(b.host, int64(tgid))
	b.entities[tgid] = s
	return s
}

// entityOf applies the entity-id rule to a process: the workload its cgroup names (cgroupEntity),
// else the listening process whose tree it serves in, else the process itself.
func (b *logBuilder) entityOf(id *kernel.Identity, cgroupEntity string) string {
	switch {
	case cgroupEntity != "":
		return cgroupEntity
	case id.WorkloadTGID != 0:
		return b.pidEntity(id.WorkloadTGID)
	case id.Known():
		return b.pidEntity(id.TGID)
	}
	return b.host
}

// Attributes each kind of record carries beyond the core ones and thread.id, at most: what its
// map is sized for.
var extraAttributes = [kernel.KindCount]int{
	kernel.KindProcessExec:       1,
	kernel.KindProcessExit:       7,
	kernel.KindOOMKill:           4,
	kernel.KindFatalSignal:       5,
	kernel.KindConnectionRefused: 8,
	kernel.KindConnectionTimeout: 8,
	kernel.KindConnectionReset:   9,
	kernel.KindListen:            5,
	kernel.KindIOError:           7,
	kernel.KindIOLatency:         8,
}

// coreAttributes are the UnifiedEvent core keys: event.name, tapio.event.id, tapio.layer,
// tapio.category, tapio.source, tapio.entity.id.
const coreAttributes = 6

// newRecord starts a record about subject, stamped as a def event at wall-clock time when, with
// room for extra attributes beyond the core ones.
func (b *logBuilder) newRecord(def *unifiedevent.Definition, subject *kernel.Identity, when time.Time, extra int) (plog.LogRecord, *resourceGroup) {
	g := b.group(subject)
	rec := g.records.AppendEmpty()
	b.count++
	rec.SetTimestamp(pcommon.NewTimestampFromTime(when))
	rec.SetObservedTimestamp(b.observed)
	unifiedevent.SetSeverity(rec, def.Severity)
	attrs := rec.Attributes()
	thread := subject.Known() && subject.PID != subject.TGID
	if thread {
		extra++
	}
	attrs.EnsureCapacity(coreAttributes + extra)
	ue := unifiedevent.Of(attrs)
	ue.StampWithID(*def, sourceEBPF, b.ids.Next())
	ue.SetEntityID(g.entityID)
	if thread {
		attrs.PutInt(unifiedevent.KeyThreadID, int64(subject.PID))
	}
	return rec, g
}

// putSender writes who sent a signal, and the workload that sender belongs to.
func (b *logBuilder) putSender(attrs pcommon.Map, sender *kernel.Identity) {
	attrs.PutInt(unifiedevent.KeyKernelSignalSenderPID, int64(sender.TGID))
	attrs.PutStr(unifiedevent.KeyKernelSignalSenderName, b.comm(sender))
	if sender.Known() {
		attrs.PutStr(unifiedevent.KeyKernelSignalSenderEntityID, b.entityOf(sender, b.cgroupOf(sender).entityID))
	}
}

// putNetns writes the socket's network namespace when it is not the collector's.
func (b *logBuilder) putNetns(attrs pcommon.Map, netns uint32) {
	if netns != 0 && netns != b.ownNetns {
		attrs.PutInt(unifiedevent.KeyNetworkNamespace, int64(netns))
	}
}

func putSide(attrs pcommon.Map, role kernel.Role) {
	switch role {
	case kernel.RoleClient:
		attrs.PutStr(unifiedevent.KeyNetworkSide, "client")
	case kernel.RoleServer:
		attrs.PutStr(unifiedevent.KeyNetworkSide, "server")
	}
}

// kindDefinitions is each record kind's catalogue entry.
var kindDefinitions = func() (defs [kernel.KindCount]unifiedevent.Definition) {
	for kind, name := range kindNames {
		if name != "" {
			defs[kind], _ = unifiedevent.Lookup(string(name))
		}
	}
	return defs
}()

var (
	retransmitDefinition, _ = unifiedevent.Lookup(string(unifiedevent.TCPRetransmit))
	listenDefinition, _     = unifiedevent.Lookup(string(unifiedevent.Listen))
)

// add turns one kernel event into a UnifiedEvent record. It returns the event's name.
func (b *logBuilder) add(e *kernel.Event, when time.Time) unifiedevent.Name {
	def := &kindDefinitions[e.Kind]
	name := def.Name
	extra := extraAttributes[e.Kind]
	var s kernel.Socket
	var key repeatKey
	if mergeable(e.Kind) { // the connection failures
		s = e.Socket()
	}
	merging := b.mergeRepeats && mergeable(e.Kind)
	if merging {
		b.group(&e.Subject)
		key = repeatKeyOf(b.last, e, s)
		if b.repeatAgain(key, when) {
			return name
		}
	}
	if e.Kind == kernel.KindConnectionRefused || e.Kind == kernel.KindConnectionTimeout {
		// The hot kinds' maps are sized exactly: a storm's bytes are mostly these maps.
		extra = b.connectionAttributes(s.Connection) + 1
	}
	rec, g := b.newRecord(def, &e.Subject, when, extra)
	if merging {
		b.openRepeat(key, rec, when)
	}
	attrs := rec.Attributes()
	subject := &e.Subject
	switch e.Kind {
	case kernel.KindProcessExec:
		path := string(e.ExecFilename())
		attrs.PutStr(unifiedevent.KeyProcessExecutablePath, path)
		rec.Body().SetStr(unifiedevent.ExecNarrative(g.comm, subject.TGID, path))
	case kernel.KindProcessExit:
		b.putExit(rec, g, e.Exit(), subject)
	case kernel.KindOOMKill:
		oom := e.OOM()
		const pageSize = 4096
		if oom.MemcgLimitBytes > 0 && oom.MemcgLimitBytes < 1<<60 {
			attrs.PutInt(unifiedevent.KeyKernelOOMMemcgLimitBytes, int64(oom.MemcgLimitBytes))
		}
		attrs.PutInt(unifiedevent.KeyKernelOOMMemcgUsageBytes, int64(oom.MemcgUsageBytes))
		attrs.PutInt(unifiedevent.KeyKernelOOMTotalVMBytes, int64(oom.TotalVMPages*pageSize))
		attrs.PutInt(unifiedevent.KeyKernelOOMAnonRSSBytes, int64(oom.AnonRSSPages*pageSize))
		rec.Body().SetStr(unifiedevent.OOMKillNarrative(g.comm, subject.TGID, oom.MemcgLimitBytes, oom.MemcgUsageBytes))
	case kernel.KindFatalSignal:
		s := e.Signal()
		attrs.PutStr(unifiedevent.KeyKernelSignalName, signalName(s.Number))
		attrs.PutInt(unifiedevent.KeyKernelSignalNumber, int64(s.Number))
		b.putSender(attrs, &s.Sender)
		rec.Body().SetStr(unifiedevent.SignalNarrative(signalName(s.Number), g.comm, subject.TGID, b.comm(&s.Sender), s.Sender.TGID))
	case kernel.KindConnectionRefused, kernel.KindConnectionTimeout:
		b.putConnection(attrs, s.Connection)
		detail := ""
		if e.Kind == kernel.KindConnectionTimeout && s.Err == 0 {
			// The application closed the socket in SYN_SENT, no answer having come.
			attrs.PutStr(unifiedevent.KeyErrorType, connectAbandoned)
			detail = "the application gave up waiting for an answer"
		} else {
			detail = errnoName(s.Err)
			attrs.PutStr(unifiedevent.KeyErrorType, detail)
		}
		key := connectionNarrativeKey{kind: e.Kind, remote: addressKey{s.Family, s.DestinationPort, s.Destination}, err: s.Err}
		if g.narrative == "" || g.narrativeKey != key {
			remote := b.endpoint(s.Family, s.Destination, s.DestinationPort)
			g.narrativeKey, g.narrative = key, unifiedevent.ConnectionNarrative(name, g.comm, subject.TGID, "", remote, detail)
		}
		rec.Body().SetStr(g.narrative)
	case kernel.KindConnectionReset:
		b.putConnection(attrs, s.Connection)
		direction, what := "received", "reset received from the peer"
		if s.Direction == kernel.ResetSent {
			direction, what = "sent", "reset sent to the peer"
		}
		attrs.PutStr(unifiedevent.KeyNetworkResetDirection, direction)
		putSide(attrs, s.Role)
		local, remote := b.endpoints(s.Connection)
		rec.Body().SetStr(unifiedevent.ConnectionNarrative(name, g.comm, subject.TGID, local, remote, what))
	case kernel.KindIOError, kernel.KindIOLatency:
		io := e.BlockIO()
		op := blockOpName(io.Op)
		attrs.PutStr(unifiedevent.KeyDiskIODirection, op)
		attrs.PutStr(unifiedevent.KeyStorageDevice, string(io.Disk))
		attrs.PutStr(unifiedevent.KeyStorageDeviceID, strconv.FormatUint(uint64(io.Major), 10)+":"+strconv.FormatUint(uint64(io.Minor), 10))
		attrs.PutInt(unifiedevent.KeyStorageSector, int64(io.Sector))
		attrs.PutInt(unifiedevent.KeyStorageBytes, int64(io.Bytes))
		took := ""
		if io.LatencyNs > 0 {
			latency := time.Duration(io.LatencyNs)
			attrs.PutDouble(unifiedevent.KeyStorageLatencyMs, float64(io.LatencyNs)/1e6)
			took = latency.Round(time.Microsecond).String()
		}
		status := ""
		if e.Kind == kernel.KindIOError {
			status = blockStatusName(io.Error)
			attrs.PutStr(unifiedevent.KeyErrorType, status)
		} else if b.ioThreshold > 0 {
			attrs.PutInt(unifiedevent.KeyStorageThresholdMs, b.ioThreshold.Milliseconds())
		}
		rec.Body().SetStr(unifiedevent.IONarrative(name, string(io.Disk), op, uint64(io.Bytes), io.Sector, status, took, g.comm, subject.TGID))
	case kernel.KindListen:
		s := e.Socket()
		addr := b.endpoint(s.Family, s.Source, s.SourcePort)
		attrs.PutStr(unifiedevent.KeyNetworkTransport, "tcp")
		attrs.PutStr(unifiedevent.KeyNetworkType, networkType(s.Family))
		attrs.PutStr(unifiedevent.KeySourceAddress, b.address(s.Family, s.Source))
		attrs.PutInt(unifiedevent.KeySourcePort, int64(s.SourcePort))
		b.putNetns(attrs, s.Netns)
		rec.Body().SetStr(unifiedevent.ListenNarrative(g.comm, subject.TGID, addr))
	}
	return name
}

// putExit writes a process_exit: its code, the signal that ended it, and — when that signal came
// from another process — who sent it.
func (b *logBuilder) putExit(rec plog.LogRecord, g *resourceGroup, x kernel.Exit, subject *kernel.Identity) {
	attrs := rec.Attributes()
	killedBy := uint32(x.Status & 0x7f)
	core := x.Status&0x80 != 0
	code := int((x.Status >> 8) & 0xff)
	ending := x.Signal
	sigName := ""
	switch {
	case killedBy != 0:
		sigName = signalName(killedBy)
		attrs.PutStr(unifiedevent.KeyKernelSignalName, sigName)
		attrs.PutInt(unifiedevent.KeyKernelSignalNumber, int64(killedBy))
		attrs.PutBool(unifiedevent.KeyKernelCoreDumped, core)
		// A shell reports death by signal as 128+n; so does Tapio, so both read the same.
		code = 128 + int(killedBy)
	case ending.Number != 0:
		// It handled the signal and exited: the signal still ended it.
		attrs.PutStr(unifiedevent.KeyKernelSignalName, signalName(ending.Number))
		attrs.PutInt(unifiedevent.KeyKernelSignalNumber, int64(ending.Number))
	}
	attrs.PutInt(unifiedevent.KeyProcessExitCode, int64(code))
	// The last ending signal names its sender only when it is the one that ended the process.
	if ending.Number != 0 && (killedBy == 0 || killedBy == ending.Number) {
		b.putSender(attrs, &ending.Sender)
		if ending.Sender.Known() && ending.Sender.TGID != subject.TGID {
			rec.Body().SetStr(unifiedevent.EndedBySignalNarrative(g.comm, subject.TGID, code, signalName(ending.Number),
				killedBy != 0, core, b.comm(&ending.Sender), ending.Sender.TGID))
			return
		}
	}
	rec.Body().SetStr(unifiedevent.ExitNarrative(g.comm, subject.TGID, code, sigName, core))
}

// addExistingListener reports a socket that was listening before the receiver started, so that
// its address is known to be served by its workload.
func (b *logBuilder) addExistingListener(l *kernel.ExistingListener, when time.Time) {
	rec, g := b.newRecord(&listenDefinition, &l.Owner, when, extraAttributes[kernel.KindListen])
	attrs := rec.Attributes()
	c := l.Conn
	attrs.PutStr(unifiedevent.KeyNetworkTransport, "tcp")
	attrs.PutStr(unifiedevent.KeyNetworkType, networkType(c.Family))
	attrs.PutStr(unifiedevent.KeySourceAddress, b.address(c.Family, c.Source))
	attrs.PutInt(unifiedevent.KeySourcePort, int64(c.SourcePort))
	b.putNetns(attrs, c.Netns)
	rec.Body().SetStr(unifiedevent.ExistingListenNarrative(g.comm, l.Owner.TGID, endpoint(c.Family, c.Source, c.SourcePort)))
}

// addRetransmits records one connection's retransmits over an interval as one event.
func (b *logBuilder) addRetransmits(conn kernel.Connection, count uint64, interval time.Duration, owner *kernel.Identity, role kernel.Role, when time.Time) {
	rec, g := b.newRecord(&retransmitDefinition, owner, when, extraAttributes[kernel.KindConnectionReset]+1)
	attrs := rec.Attributes()
	b.putConnection(attrs, conn)
	local, remote := b.endpoints(conn)
	putSide(attrs, role)
	attrs.PutInt(unifiedevent.KeyNetworkRetransmitCount, int64(count))
	attrs.PutInt(unifiedevent.KeyNetworkRetransmitInterval, interval.Milliseconds())
	detail := strconv.FormatUint(count, 10) + " segments in " + interval.String()
	rec.Body().SetStr(unifiedevent.ConnectionNarrative(unifiedevent.TCPRetransmit, g.comm, owner.TGID, local, remote, detail))
}

func (b *logBuilder) putConnection(attrs pcommon.Map, c kernel.Connection) {
	pair := addressPair{c.Family, c.Source, c.Destination}
	if pair != b.lastPair || b.lastSource == "" {
		b.lastPair, b.lastSource, b.lastDestination = pair, b.address(c.Family, c.Source), b.address(c.Family, c.Destination)
	}
	attrs.PutStr(unifiedevent.KeyNetworkTransport, "tcp")
	attrs.PutStr(unifiedevent.KeyNetworkType, networkType(c.Family))
	attrs.PutStr(unifiedevent.KeySourceAddress, b.lastSource)
	if c.SourcePort != 0 { // 0 once close() has released the port, before an active reset
		attrs.PutInt(unifiedevent.KeySourcePort, int64(c.SourcePort))
	}
	attrs.PutStr(unifiedevent.KeyDestinationAddress, b.lastDestination)
	attrs.PutInt(unifiedevent.KeyDestinationPort, int64(c.DestinationPort))
	b.putNetns(attrs, c.Netns)
}

// connectionAttributes is how many attributes putConnection writes.
func (b *logBuilder) connectionAttributes(c kernel.Connection) int {
	n := 5
	if c.SourcePort != 0 {
		n++
	}
	if c.Netns != 0 && c.Netns != b.ownNetns {
		n++
	}
	return n
}

// endpoints names a connection's two ends as narratives do.
func (b *logBuilder) endpoints(c kernel.Connection) (local, remote string) {
	local = b.address(c.Family, c.Source)
	if c.SourcePort != 0 {
		local = endpoint(c.Family, c.Source, c.SourcePort) // an ephemeral port: not worth caching
	}
	return local, b.endpoint(c.Family, c.Destination, c.DestinationPort)
}

type addressPair struct {
	family              uint16
	source, destination [16]byte
}

// addressKey names an address (port 0) or an endpoint in the builder's cache: a storm of failing
// connections goes to few peers, and their strings need not be built per event.
type addressKey struct {
	family, port uint16
	addr         [16]byte
}

func (b *logBuilder) address(family uint16, raw [16]byte) string {
	return b.cachedAddress(addressKey{family: family, addr: raw}, func() string { return address(family, raw) })
}

func (b *logBuilder) endpoint(family uint16, raw [16]byte, port uint16) string {
	return b.cachedAddress(addressKey{family, port, raw}, func() string { return endpoint(family, raw, port) })
}

func (b *logBuilder) cachedAddress(key addressKey, build func() string) string {
	if s, ok := b.addresses[key]; ok {
		return s
	}
	if len(b.addresses) >= internLimit {
		clear(b.addresses)
	}
	s := build()
	b.addresses[key] = s
	return s
}

const (
	afInet  = 2
	afInet6 = 10
)

func networkType(family uint16) string {
	if family == afInet6 {
		return "ipv6"
	}
	return "ipv4"
}

func address(family uint16, raw [16]byte) string {
	if family == afInet {
		return netip.AddrFrom4([4]byte{raw[0], raw[1], raw[2], raw[3]}).String()
	}
	return netip.AddrFrom16(raw).Unmap().String()
}

func endpoint(family uint16, raw [16]byte, port uint16) string {
	if family == afInet {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{raw[0], raw[1], raw[2], raw[3]}), port).String()
	}
	return netip.AddrPortFrom(netip.AddrFrom16(raw).Unmap(), port).String()
}

var kindNames = [kernel.KindCount]unifiedevent.Name{
	kernel.KindProcessExec:       unifiedevent.ProcessExec,
	kernel.KindProcessExit:       unifiedevent.ProcessExit,
	kernel.KindOOMKill:           unifiedevent.OOMKill,
	kernel.KindFatalSignal:       unifiedevent.FatalSignal,
	kernel.KindConnectionRefused: unifiedevent.ConnectionRefused,
	kernel.KindConnectionTimeout: unifiedevent.ConnectionTimeout,
	kernel.KindConnectionReset:   unifiedevent.ConnectionReset,
	kernel.KindListen:            unifiedevent.Listen,
	kernel.KindIOError:           unifiedevent.IOError,
	kernel.KindIOLatency:         unifiedevent.IOLatency,
}

// eventNameOfKind maps a record kind to its catalogue name ("" for none; Decode rejects those).
func eventNameOfKind(kind kernel.Kind) unifiedevent.Name {
	if kind < kernel.KindCount {
		return kindNames[kind]
	}
	return ""
}

var blockOps = [...]string{0: "read", 1: "write", 2: "flush", 3: "discard", 5: "secure_erase", 9: "write_zeroes"}

func blockOpName(op uint32) string {
	if int(op) < len(blockOps) && blockOps[op] != "" {
		return blockOps[op]
	}
	return "op " + strconv.FormatUint(uint64(op), 10)
}

// blockStatusName names a blk_status_t as the kernel does (include/linux/blk_types.h).
var blockStatuses = [...]string{1: "BLK_STS_NOTSUPP", 2: "BLK_STS_TIMEOUT", 3: "BLK_STS_NOSPC", 4: "BLK_STS_TRANSPORT",
	5: "BLK_STS_TARGET", 6: "BLK_STS_RESV_CONFLICT", 7: "BLK_STS_MEDIUM", 8: "BLK_STS_PROTECTION", 9: "BLK_STS_RESOURCE",
	10: "BLK_STS_IOERR"}

func blockStatusName(status int32) string {
	if status > 0 && int(status) < len(blockStatuses) && blockStatuses[status] != "" {
		return blockStatuses[status]
	}
	return "blk_status " + strconv.Itoa(int(status))
}
