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

// logBuilder accumulates kernel events into one plog.Logs, one resource per cgroup, because the
// resource is where an event says which container, pod or service it is about.
type logBuilder struct {
	host      string
	version   string
	logs      plog.Logs
	groups    map[uint64]*resourceGroup
	count     int
	observed  pcommon.Timestamp
	cgroups   *cgroupCache
	comms     map[[16]byte]string
	addresses map[addressKey]string
	entities  map[uint32]string // host/pid entity ids
	// ownNetns is the collector's network namespace: sockets in another one say which.
	ownNetns uint32
	// ioThreshold is reported on io_latency events.
	ioThreshold time.Duration
}

// internLimit bounds the caches; when one is full it starts over.
const internLimit = 4096

type resourceGroup struct {
	records plog.LogRecordSlice
	// entityID is the workload when the cgroup alone names it (a pod, a container, a service);
	// else each record's process decides.
	entityID   string
	cgroupPath string
}

func newLogBuilder(host, version string, cgroups *cgroupCache) *logBuilder {
	return &logBuilder{host: host, version: version, logs: plog.NewLogs(), groups: map[uint64]*resourceGroup{},
		cgroups: cgroups, comms: map[[16]byte]string{}, addresses: map[addressKey]string{}, entities: map[uint32]string{}}
}

// take hands over the accumulated logs and starts a new batch.
func (b *logBuilder) take() plog.Logs {
	out := b.logs
	b.logs = plog.NewLogs()
	clear(b.groups)
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
	if g, ok := b.groups[id.CgroupID]; ok {
		return g
	}
	rl := b.logs.ResourceLogs().AppendEmpty()
	res := rl.Resource().Attributes()
	res.PutStr(unifiedevent.KeyHostName, b.host)
	g := &resourceGroup{}
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
	g.entityID, g.cgroupPath = info.entityID, info.path
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(metadata.ScopeName)
	sl.Scope().SetVersion(b.version)
	unifiedevent.MarkScope(sl.Scope())
	g.records = sl.LogRecords()
	b.groups[id.CgroupID] = g
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

// newRecord starts a record about subject, stamped as a def event at wall-clock time when.
func (b *logBuilder) newRecord(def unifiedevent.Definition, subject *kernel.Identity, when time.Time) (plog.LogRecord, *resourceGroup) {
	g := b.group(subject)
	rec := g.records.AppendEmpty()
	b.count++
	rec.SetTimestamp(pcommon.NewTimestampFromTime(when))
	rec.SetObservedTimestamp(b.observed)
	unifiedevent.SetSeverity(rec, def.Severity)
	attrs := rec.Attributes()
	attrs.EnsureCapacity(20)
	ue := unifiedevent.Of(attrs)
	ue.Stamp(def, sourceEBPF)
	if subject.Known() {
		b.putProcess(attrs, subject, g.cgroupPath)
	}
	ue.SetEntityID(b.entityOf(subject, g.entityID))
	return rec, g
}

func (b *logBuilder) putProcess(attrs pcommon.Map, id *kernel.Identity, cgroupPath string) {
	attrs.PutInt(unifiedevent.KeyProcessPID, int64(id.TGID))
	if id.PID != id.TGID {
		attrs.PutInt(unifiedevent.KeyThreadID, int64(id.PID))
	}
	attrs.PutInt(unifiedevent.KeyProcessParentPID, int64(id.PPID))
	attrs.PutStr(unifiedevent.KeyProcessExecutableName, b.comm(id))
	attrs.PutInt(unifiedevent.KeyProcessUserID, int64(id.UID))
	if id.WorkloadTGID != 0 {
		attrs.PutInt(unifiedevent.KeyWorkloadPID, int64(id.WorkloadTGID))
	}
	if cgroupPath != "" {
		attrs.PutStr(unifiedevent.KeyKernelCgroupPath, cgroupPath)
	}
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

// add turns one kernel event into a UnifiedEvent record. It returns the event's name.
func (b *logBuilder) add(e *kernel.Event, when time.Time) unifiedevent.Name {
	name := eventName(e)
	def, _ := unifiedevent.Lookup(string(name))
	rec, _ := b.newRecord(def, &e.Subject, when)
	attrs := rec.Attributes()
	subject := &e.Subject
	switch e.Kind {
	case kernel.KindProcessExec:
		path := string(e.ExecFilename())
		attrs.PutStr(unifiedevent.KeyProcessExecutablePath, path)
		rec.Body().SetStr(unifiedevent.ExecNarrative(b.comm(subject), subject.TGID, path))
	case kernel.KindProcessExit:
		b.putExit(rec, e.Exit(), subject)
	case kernel.KindOOMKill:
		oom := e.OOM()
		const pageSize = 4096
		if oom.MemcgLimitBytes > 0 && oom.MemcgLimitBytes < 1<<60 {
			attrs.PutInt(unifiedevent.KeyKernelOOMMemcgLimitBytes, int64(oom.MemcgLimitBytes))
		}
		attrs.PutInt(unifiedevent.KeyKernelOOMMemcgUsageBytes, int64(oom.MemcgUsageBytes))
		attrs.PutInt(unifiedevent.KeyKernelOOMTotalVMBytes, int64(oom.TotalVMPages*pageSize))
		attrs.PutInt(unifiedevent.KeyKernelOOMAnonRSSBytes, int64(oom.AnonRSSPages*pageSize))
		rec.Body().SetStr(unifiedevent.OOMKillNarrative(b.comm(subject), subject.TGID, oom.MemcgLimitBytes, oom.MemcgUsageBytes))
	case kernel.KindFatalSignal:
		s := e.Signal()
		attrs.PutStr(unifiedevent.KeyKernelSignalName, signalName(s.Number))
		attrs.PutInt(unifiedevent.KeyKernelSignalNumber, int64(s.Number))
		b.putSender(attrs, &s.Sender)
		rec.Body().SetStr(unifiedevent.SignalNarrative(signalName(s.Number), b.comm(subject), subject.TGID, b.comm(&s.Sender), s.Sender.TGID))
	case kernel.KindConnectionRefused, kernel.KindConnectionTimeout, kernel.KindConnectionReset:
		s := e.Socket()
		local, remote := b.putConnection(attrs, s.Connection)
		var detail string
		switch e.Kind {
		case kernel.KindConnectionReset:
			direction, what := "received", "reset received from the peer"
			if s.Direction == kernel.ResetSent {
				direction, what = "sent", "reset sent to the peer"
			}
			attrs.PutStr(unifiedevent.KeyNetworkResetDirection, direction)
			putSide(attrs, s.Role)
			detail = what
		case kernel.KindConnectionTimeout:
			if s.Err == 0 {
				// The application closed the socket in SYN_SENT, no answer having come.
				attrs.PutStr(unifiedevent.KeyErrorType, connectAbandoned)
				detail = "the application gave up waiting for an answer"
				break
			}
			fallthrough
		default:
			attrs.PutStr(unifiedevent.KeyErrorType, errnoName(s.Err))
			detail = errnoName(s.Err)
		}
		rec.Body().SetStr(unifiedevent.ConnectionNarrative(name, b.comm(subject), subject.TGID, local, remote, detail))
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
		rec.Body().SetStr(unifiedevent.IONarrative(name, string(io.Disk), op, uint64(io.Bytes), io.Sector, status, took, b.comm(subject), subject.TGID))
	case kernel.KindListen:
		s := e.Socket()
		addr := b.endpoint(s.Family, s.Source, s.SourcePort)
		attrs.PutStr(unifiedevent.KeyNetworkTransport, "tcp")
		attrs.PutStr(unifiedevent.KeyNetworkType, networkType(s.Family))
		attrs.PutStr(unifiedevent.KeySourceAddress, b.address(s.Family, s.Source))
		attrs.PutInt(unifiedevent.KeySourcePort, int64(s.SourcePort))
		b.putNetns(attrs, s.Netns)
		rec.Body().SetStr(unifiedevent.ListenNarrative(b.comm(subject), subject.TGID, addr))
	}
	return name
}

// putExit writes a process_exit: its code, the signal that ended it, and — when that signal came
// from another process — who sent it.
func (b *logBuilder) putExit(rec plog.LogRecord, x kernel.Exit, subject *kernel.Identity) {
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
			rec.Body().SetStr(unifiedevent.EndedBySignalNarrative(b.comm(subject), subject.TGID, code, signalName(ending.Number),
				killedBy != 0, core, b.comm(&ending.Sender), ending.Sender.TGID))
			return
		}
	}
	rec.Body().SetStr(unifiedevent.ExitNarrative(b.comm(subject), subject.TGID, code, sigName, core))
}

// addExistingListener reports a socket that was listening before the receiver started, so that
// its address is known to be served by its workload.
func (b *logBuilder) addExistingListener(l *kernel.ExistingListener, when time.Time) {
	def, _ := unifiedevent.Lookup(string(unifiedevent.Listen))
	rec, _ := b.newRecord(def, &l.Owner, when)
	attrs := rec.Attributes()
	c := l.Conn
	attrs.PutStr(unifiedevent.KeyNetworkTransport, "tcp")
	attrs.PutStr(unifiedevent.KeyNetworkType, networkType(c.Family))
	attrs.PutStr(unifiedevent.KeySourceAddress, b.address(c.Family, c.Source))
	attrs.PutInt(unifiedevent.KeySourcePort, int64(c.SourcePort))
	b.putNetns(attrs, c.Netns)
	rec.Body().SetStr(unifiedevent.ExistingListenNarrative(b.comm(&l.Owner), l.Owner.TGID, endpoint(c.Family, c.Source, c.SourcePort)))
}

// addRetransmits records one connection's retransmits over an interval as one event.
func (b *logBuilder) addRetransmits(conn kernel.Connection, count uint64, interval time.Duration, owner *kernel.Identity, role kernel.Role, when time.Time) {
	def, _ := unifiedevent.Lookup(string(unifiedevent.TCPRetransmit))
	rec, _ := b.newRecord(def, owner, when)
	attrs := rec.Attributes()
	local, remote := b.putConnection(attrs, conn)
	putSide(attrs, role)
	attrs.PutInt(unifiedevent.KeyNetworkRetransmitCount, int64(count))
	attrs.PutInt(unifiedevent.KeyNetworkRetransmitInterval, interval.Milliseconds())
	detail := strconv.FormatUint(count, 10) + " segments in " + interval.String()
	rec.Body().SetStr(unifiedevent.ConnectionNarrative(unifiedevent.TCPRetransmit, b.comm(owner), owner.TGID, local, remote, detail))
}

func (b *logBuilder) putConnection(attrs pcommon.Map, c kernel.Connection) (local, remote string) {
	source := b.address(c.Family, c.Source)
	attrs.PutStr(unifiedevent.KeyNetworkTransport, "tcp")
	attrs.PutStr(unifiedevent.KeyNetworkType, networkType(c.Family))
	attrs.PutStr(unifiedevent.KeySourceAddress, source)
	local = source
	if c.SourcePort != 0 { // 0 once close() has released the port, before an active reset
		attrs.PutInt(unifiedevent.KeySourcePort, int64(c.SourcePort))
		local = endpoint(c.Family, c.Source, c.SourcePort) // an ephemeral port: not worth caching
	}
	attrs.PutStr(unifiedevent.KeyDestinationAddress, b.address(c.Family, c.Destination))
	attrs.PutInt(unifiedevent.KeyDestinationPort, int64(c.DestinationPort))
	b.putNetns(attrs, c.Netns)
	return local, b.endpoint(c.Family, c.Destination, c.DestinationPort)
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

func eventName(e *kernel.Event) unifiedevent.Name { return eventNameOfKind(e.Kind) }

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
