package kernel

import (
	"encoding/binary"
	"fmt"
)

// Kind is enum event_kind of bpf/tapio_event.h.
type Kind uint32

const (
	KindProcessExec       Kind = 1
	KindProcessExit       Kind = 2
	KindOOMKill           Kind = 3
	KindFatalSignal       Kind = 4
	KindConnectionRefused Kind = 5
	KindConnectionTimeout Kind = 6
	KindConnectionReset   Kind = 7
	KindListen            Kind = 8
	KindIOError           Kind = 9
	KindIOLatency         Kind = 10
	KindCount                  = 11
)

// Offsets into struct event (bpf/tapio_event.h). TestEventLayoutMatchesObject checks each one
// against the BTF of the compiled object, so the C and Go sides cannot drift apart.
const (
	offKTime   = 0
	offKind    = 8
	offSubject = 16
	offPayload = offSubject + identitySize
	EventSize  = offPayload + payloadSize

	identitySize  = 56
	payloadSize   = 72
	CgroupDepth   = 6
	CgroupNameLen = 128
	commLen       = 16

	// struct identity
	offIDPid          = 0
	offIDTgid         = 4
	offIDPpid         = 8
	offIDUid          = 12
	offIDCgroupID     = 16
	offIDStartNs      = 24
	offIDComm         = 32
	offIDWorkloadTgid = 48

	// struct exit_payload
	offExitCode       = 0
	offExitFlags      = 4
	offExitSigNo      = 8
	offExitSignalCode = 12
	offExitSender     = 16
	// struct exec_payload
	offExecFilename = 0
	execFilenameLen = 64
	// struct oom_payload
	offOOMLimit   = 0
	offOOMUsage   = 8
	offOOMTotalVM = 16
	offOOMAnonRSS = 24
	offOOMMemcgID = 32
	// struct signal_payload
	offSigNo     = 0
	offSigCode   = 4
	offSigResult = 8
	offSigSender = 16
	// struct io_payload
	offIOSector  = 0
	offIOLatency = 8
	offIOBytes   = 16
	offIOOp      = 20
	offIOError   = 24
	offIOMajor   = 28
	offIOMinor   = 32
	offIODisk    = 40
	ioDiskLen    = 32
	// struct sock_payload
	offSockFamily    = 0
	offSockSport     = 2
	offSockDport     = 4
	offSockDirection = 6
	offSockErr       = 8
	offSockNetns     = 12
	offSockSaddr     = 16
	offSockDaddr     = 32
	offSockRole      = 48
	offSockCPU       = 50
	offSockRun       = 52
	offSockRunEvents = 56
	offSockRunLastNs = 64
)

// Identity is who an event is about, as the kernel read it from the task at event time. The
// cgroup's path is in the kernel's cgroup_paths map under CgroupID (Programs.CgroupPath).
type Identity struct {
	PID, TGID, PPID, UID uint32
	CgroupID             uint64
	StartNs              uint64
	Comm                 [commLen]byte
	// WorkloadTGID is the process whose tree this one serves in: the nearest of itself and its
	// ancestors that listens on a TCP socket, across forks that kept their parent's program
	// (a pre-fork server's workers); 0 when there is none.
	WorkloadTGID uint32
}

// CgroupPath is the names of a cgroup and its ancestors, leaf first.
type CgroupPath [CgroupDepth][CgroupNameLen]byte

func (id *Identity) decode(b []byte) {
	le := binary.LittleEndian
	id.PID = le.Uint32(b[offIDPid:])
	id.TGID = le.Uint32(b[offIDTgid:])
	id.PPID = le.Uint32(b[offIDPpid:])
	id.UID = le.Uint32(b[offIDUid:])
	id.CgroupID = le.Uint64(b[offIDCgroupID:])
	id.StartNs = le.Uint64(b[offIDStartNs:])
	copy(id.Comm[:], b[offIDComm:offIDComm+commLen])
	id.WorkloadTGID = le.Uint32(b[offIDWorkloadTgid:])
}

func (id *Identity) fromGenerated(g *tapioIdentity) {
	id.PID, id.TGID, id.PPID, id.UID = g.Pid, g.Tgid, g.Ppid, g.Uid
	id.CgroupID, id.StartNs = g.CgroupId, g.StartNs
	for i, c := range g.Comm {
		id.Comm[i] = byte(c)
	}
	id.WorkloadTGID = g.WorkloadTgid
}

func (id *Identity) toGenerated() tapioIdentity {
	g := tapioIdentity{Pid: id.PID, Tgid: id.TGID, Ppid: id.PPID, Uid: id.UID, CgroupId: id.CgroupID, StartNs: id.StartNs,
		WorkloadTgid: id.WorkloadTGID}
	for i, c := range id.Comm {
		g.Comm[i] = int8(c)
	}
	return g
}

// Known reports whether the kernel could tell who the event is about.
func (id *Identity) Known() bool { return id.TGID != 0 || id.Comm[0] != 0 }

// CString returns the NUL-terminated prefix of b.
func CString(b []byte) []byte {
	for i, c := range b {
		if c == 0 {
			return b[:i]
		}
	}
	return b
}

// Event is one decoded ring-buffer record. Decode overwrites it in place, so one Event serves a
// whole reading loop without allocating.
type Event struct {
	KTimeNs uint64
	Kind    Kind
	Subject Identity
	payload [payloadSize]byte
}

// Decode reads a record; it rejects records of the wrong size or of an unknown kind.
func (e *Event) Decode(raw []byte) error {
	if len(raw) < EventSize {
		return fmt.Errorf("ring-buffer record of %d bytes, want %d", len(raw), EventSize)
	}
	le := binary.LittleEndian
	e.KTimeNs = le.Uint64(raw[offKTime:])
	e.Kind = Kind(le.Uint32(raw[offKind:]))
	if e.Kind == 0 || e.Kind >= KindCount {
		return fmt.Errorf("ring-buffer record of unknown kind %d", e.Kind)
	}
	e.Subject.decode(raw[offSubject:])
	copy(e.payload[:], raw[offPayload:offPayload+payloadSize])
	return nil
}

// ExitCode is the wait(2) status of a process_exit.
func (e *Event) ExitCode() int32 { return int32(binary.LittleEndian.Uint32(e.payload[offExitCode:])) }

// Exit is a process_exit: its status, and the last signal that could end it when one reached
// it shortly before (SIGTERM before a graceful exit 0, the SIGKILL that killed it).
type Exit struct {
	Status int32 // as wait(2) reports it
	// Listener: the process listened on a TCP socket, so its end is a server's end.
	Listener bool
	// Signal is the ending signal and its sender; Signal.Number is 0 when none was sent.
	Signal Signal
}

// Exit flags (enum exit_flags).
const (
	exitListener  = 1
	exitSignalled = 2
)

func (e *Event) Exit() Exit {
	le := binary.LittleEndian
	flags := le.Uint32(e.payload[offExitFlags:])
	x := Exit{Status: int32(le.Uint32(e.payload[offExitCode:])), Listener: flags&exitListener != 0}
	if flags&exitSignalled != 0 {
		x.Signal.Number = le.Uint32(e.payload[offExitSigNo:])
		x.Signal.Code = int32(le.Uint32(e.payload[offExitSignalCode:]))
		x.Signal.Sender.decode(e.payload[offExitSender:])
	}
	return x
}

// ExecFilename is the program a process_exec ran.
func (e *Event) ExecFilename() []byte {
	return CString(e.payload[offExecFilename : offExecFilename+execFilenameLen])
}

// OOM is what the kernel knew about an OOM victim's memory.
type OOM struct {
	MemcgLimitBytes, MemcgUsageBytes uint64
	TotalVMPages, AnonRSSPages       uint64
	MemcgID                          uint64
}

func (e *Event) OOM() OOM {
	le := binary.LittleEndian
	return OOM{
		MemcgLimitBytes: le.Uint64(e.payload[offOOMLimit:]),
		MemcgUsageBytes: le.Uint64(e.payload[offOOMUsage:]),
		TotalVMPages:    le.Uint64(e.payload[offOOMTotalVM:]),
		AnonRSSPages:    le.Uint64(e.payload[offOOMAnonRSS:]),
		MemcgID:         le.Uint64(e.payload[offOOMMemcgID:]),
	}
}

// Signal is a signal and who sent it: the task in whose context the kernel generated it (for
// a fault or the OOM killer, a task of the victim's own or the allocating one).
type Signal struct {
	Number uint32
	Code   int32 // si_code: 0 SI_USER (kill), 0x80 SI_KERNEL, negative from sigqueue/tkill
	Sender Identity
}

func (e *Event) Signal() Signal {
	le := binary.LittleEndian
	s := Signal{Number: le.Uint32(e.payload[offSigNo:]), Code: int32(le.Uint32(e.payload[offSigCode:]))}
	s.Sender.decode(e.payload[offSigSender:])
	return s
}

// Connection is a TCP connection's addresses; Source is the local side. Netns is the inode
// number of the socket's network namespace: the same addresses in two namespaces are two
// connections.
type Connection struct {
	Netns                       uint32
	Family                      uint16
	SourcePort, DestinationPort uint16
	Source, Destination         [16]byte
}

// Role says which end of its connection a socket is (enum sock_role).
type Role uint16

const (
	RoleUnknown  Role = 0
	RoleClient   Role = 1 // it connected
	RoleServer   Role = 2 // a listener accepted it
	RoleListener Role = 3 // it listens
)

// Socket is a network event's connection, error, role and, for resets, direction.
type Socket struct {
	Connection
	Err       int32
	Direction uint16
	Role      Role
}

// Reset directions.
const (
	ResetReceived = 1
	ResetSent     = 2
)

func (e *Event) Socket() Socket {
	le := binary.LittleEndian
	var s Socket
	s.Family = le.Uint16(e.payload[offSockFamily:])
	s.SourcePort = le.Uint16(e.payload[offSockSport:])
	s.DestinationPort = le.Uint16(e.payload[offSockDport:])
	s.Direction = le.Uint16(e.payload[offSockDirection:])
	s.Err = int32(le.Uint32(e.payload[offSockErr:]))
	s.Netns = le.Uint32(e.payload[offSockNetns:])
	copy(s.Source[:], e.payload[offSockSaddr:offSockSaddr+16])
	copy(s.Destination[:], e.payload[offSockDaddr:offSockDaddr+16])
	s.Role = Role(le.Uint16(e.payload[offSockRole:]))
	return s
}

// RunStart is what a connection failure's record says of its CPU's repeat runs (emit_failure in
// bpf/tapio.bpf.c): the run the record starts, 0 when it starts none, and how the CPU's run
// before it ended — the events it counted, its first (a record of its own) included, and when
// its last one happened.
type RunStart struct {
	CPU         uint16
	Number      uint32
	EndedEvents uint32
	EndedLastNs uint64
}

func (e *Event) RunStart() RunStart {
	le := binary.LittleEndian
	return RunStart{
		CPU:         le.Uint16(e.payload[offSockCPU:]),
		Number:      le.Uint32(e.payload[offSockRun:]),
		EndedEvents: le.Uint32(e.payload[offSockRunEvents:]),
		EndedLastNs: le.Uint64(e.payload[offSockRunLastNs:]),
	}
}

// BlockIO is a completed block request: failed, or slower than the configured threshold.
type BlockIO struct {
	Sector       uint64
	LatencyNs    uint64
	Bytes        uint32
	Op           uint32
	Error        int32
	Major, Minor uint32
	Disk         []byte
}

func (e *Event) BlockIO() BlockIO {
	le := binary.LittleEndian
	return BlockIO{
		Sector:    le.Uint64(e.payload[offIOSector:]),
		LatencyNs: le.Uint64(e.payload[offIOLatency:]),
		Bytes:     le.Uint32(e.payload[offIOBytes:]),
		Op:        le.Uint32(e.payload[offIOOp:]),
		Error:     int32(le.Uint32(e.payload[offIOError:])),
		Major:     le.Uint32(e.payload[offIOMajor:]),
		Minor:     le.Uint32(e.payload[offIOMinor:]),
		Disk:      CString(e.payload[offIODisk : offIODisk+ioDiskLen]),
	}
}
