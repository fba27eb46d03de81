package kernel

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
)

// Probe names a switchable group of programs; the receiver's config uses these names.
type Probe string

const (
	ProbeProcessExec     Probe = "process_exec"
	ProbeProcessExit     Probe = "process_exit"
	ProbeOOMKill         Probe = "oom_kill"
	ProbeFatalSignal     Probe = "fatal_signal"
	ProbeConnections     Probe = "connections" // refused, timed out, listen
	ProbeConnectionReset Probe = "connection_reset"
	ProbeTCPRetransmit   Probe = "tcp_retransmit"
	ProbeBlockIO         Probe = "block_io" // io_error, and io_latency when a threshold is set
)

// AllProbes lists every probe in a stable order.
func AllProbes() []Probe {
	return []Probe{ProbeProcessExec, ProbeProcessExit, ProbeOOMKill, ProbeFatalSignal, ProbeConnections, ProbeConnectionReset, ProbeTCPRetransmit, ProbeBlockIO}
}

// attachment is one program on one raw tracepoint.
type attachment struct {
	tracepoint string
	program    func(*tapioObjects) *ebpf.Program
}

var probeAttachments = map[Probe][]attachment{
	ProbeProcessExec: {{"sched_process_exec", func(o *tapioObjects) *ebpf.Program { return o.TapioProcessExec }}},
	ProbeProcessExit: {{"sched_process_exit", func(o *tapioObjects) *ebpf.Program { return o.TapioProcessExit }}},
	ProbeOOMKill:     {{"mark_victim", func(o *tapioObjects) *ebpf.Program { return o.TapioOomVictim }}},
	ProbeFatalSignal: {{"signal_generate", func(o *tapioObjects) *ebpf.Program { return o.TapioSignalGenerate }}},
	ProbeConnections: {{"inet_sock_set_state", func(o *tapioObjects) *ebpf.Program { return o.TapioSockState }}},
	ProbeConnectionReset: {
		{"tcp_receive_reset", func(o *tapioObjects) *ebpf.Program { return o.TapioTcpReceiveReset }},
		{"tcp_send_reset", func(o *tapioObjects) *ebpf.Program { return o.TapioTcpSendReset }},
		// Resets are attributed to the process that connected or listens: that is learned on
		// the socket state changes.
		{"inet_sock_set_state", func(o *tapioObjects) *ebpf.Program { return o.TapioSockState }},
	},
	ProbeBlockIO: {
		{"block_rq_issue", func(o *tapioObjects) *ebpf.Program { return o.TapioBlockIssue }},
		{"block_rq_complete", func(o *tapioObjects) *ebpf.Program { return o.TapioBlockComplete }},
	},
	ProbeTCPRetransmit: {
		{"tcp_retransmit_skb", func(o *tapioObjects) *ebpf.Program { return o.TapioTcpRetransmit }},
		{"inet_sock_set_state", func(o *tapioObjects) *ebpf.Program { return o.TapioSockState }},
	},
}

// Options chooses what is loaded and attached.
type Options struct {
	Probes []Probe
	// ExitAbnormalOnly keeps process_exit to non-zero codes and deaths by signal.
	ExitAbnormalOnly bool
	// IOLatencyThreshold makes completed block requests at least this slow io_latency events;
	// 0 turns io_latency off (io_error stays).
	IOLatencyThreshold time.Duration
	// RingBufferBytes sizes the ring buffer: a power of two, a multiple of the page size. Frequent
	// records wake the reader when a sixteenth of it is pending; the reader must also drain it
	// on its own schedule (a read deadline).
	RingBufferBytes uint32
}

// Programs is the loaded and attached set.
type Programs struct {
	objects tapioObjects
	links   []link.Link
	Events  *ringbuf.Reader
}

// btfPath is where the kernel publishes its type information, which CO-RE relocations need.
const btfPath = "/sys/kernel/btf/vmlinux"

// Load loads every program (so that a verifier problem shows at start-up, whatever is enabled),
// attaches the enabled probes and opens the ring buffer. Its errors say what to do.
func Load(opts Options) (*Programs, error) {
	if _, err := btf.LoadKernelSpec(); err != nil {
		return nil, fmt.Errorf("kernel BTF is not available (%s): Tapio's CO-RE programs need a kernel built with CONFIG_DEBUG_INFO_BTF=y: %w", btfPath, err)
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, privilegeError("raising the locked-memory limit", err)
	}
	spec, err := loadTapio()
	if err != nil {
		return nil, fmt.Errorf("reading the embedded eBPF object: %w", err)
	}
	if err := spec.Variables["exit_abnormal_only"].Set(opts.ExitAbnormalOnly); err != nil {
		return nil, fmt.Errorf("configuring exit_abnormal_only: %w", err)
	}
	if opts.RingBufferBytes != 0 {
		spec.Maps["events"].MaxEntries = opts.RingBufferBytes
	}
	if err := spec.Variables["io_latency_threshold_ns"].Set(uint64(opts.IOLatencyThreshold.Nanoseconds())); err != nil {
		return nil, fmt.Errorf("configuring io_latency_threshold_ns: %w", err)
	}
	if err := spec.Variables["wakeup_bytes"].Set(uint64(spec.Maps["events"].MaxEntries / 16)); err != nil {
		return nil, fmt.Errorf("configuring wakeup_bytes: %w", err)
	}

	p := &Programs{}
	if err := spec.LoadAndAssign(&p.objects, nil); err != nil {
		return nil, loadError(err)
	}
	attached := map[string]bool{} // several probes share the socket-state program
	for _, probe := range opts.Probes {
		for _, a := range probeAttachments[probe] {
			if attached[a.tracepoint] {
				continue
			}
			l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: a.tracepoint, Program: a.program(&p.objects)})
			if err != nil {
				p.Close()
				if errors.Is(err, os.ErrPermission) {
					return nil, privilegeError("attaching to raw tracepoint "+a.tracepoint, err)
				}
				return nil, fmt.Errorf("attaching probe %s to raw tracepoint %s: %w", probe, a.tracepoint, err)
			}
			attached[a.tracepoint] = true
			p.links = append(p.links, l)
		}
	}
	p.Events, err = ringbuf.NewReader(p.objects.Events)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("opening the event ring buffer: %w", err)
	}
	return p, nil
}

func privilegeError(what string, err error) error {
	return fmt.Errorf("%s: not permitted; the ebpf receiver needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN on kernels before 5.8), e.g. run as root or grant them: %w", what, err)
}

// verifierTailLines is how much of a verifier log an error carries: the rejection is at the end.
const verifierTailLines = 20

func loadError(err error) error {
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		lines := ve.Log
		if len(lines) > verifierTailLines {
			lines = lines[len(lines)-verifierTailLines:]
		}
		return fmt.Errorf("the kernel verifier rejected a Tapio program: %v\nverifier log (last %d lines):\n%s", ve.Cause, len(lines), strings.Join(lines, "\n"))
	}
	if errors.Is(err, os.ErrPermission) {
		return privilegeError("loading eBPF programs", err)
	}
	return fmt.Errorf("loading Tapio's eBPF programs: %w", err)
}

// Dropped returns, per event kind, how many records the kernel could not reserve in the ring
// buffer, summed over CPUs.
func (p *Programs) Dropped() ([KindCount]uint64, error) {
	return sumPerCPU(p.objects.Dropped)
}

// Filtered returns, per event kind, how many events the programs filtered out by rule.
func (p *Programs) Filtered() ([KindCount]uint64, error) {
	return sumPerCPU(p.objects.Filtered)
}

func sumPerCPU(m *ebpf.Map) ([KindCount]uint64, error) {
	var out [KindCount]uint64
	var perCPU []uint64
	for kind := uint32(0); kind < uint32(KindCount); kind++ {
		if err := m.Lookup(kind, &perCPU); err != nil {
			return out, fmt.Errorf("reading per-CPU counters: %w", err)
		}
		for _, n := range perCPU {
			out[kind] += n
		}
	}
	return out, nil
}

// Retransmits walks the kernel's per-connection retransmit counters, which are cumulative: the
// caller keeps what it last saw.
func (p *Programs) Retransmits(visit func(conn Connection, count, lastNs uint64, owner *Identity)) error {
	var key tapioRetransmitKey
	var value tapioRetransmitValue
	var owner Identity
	it := p.objects.Retransmits.Iterate()
	for it.Next(&key, &value) {
		owner.fromGenerated(&value.Owner)
		visit(Connection{Family: key.Family, SourcePort: key.Sport, DestinationPort: key.Dport, Source: key.Saddr, Destination: key.Daddr},
			value.Count, value.LastNs, &owner)
	}
	return it.Err()
}

// CgroupPath returns the path the kernel captured for a cgroup id; false when the cgroup was never
// seen or its entry was evicted from the map.
func (p *Programs) CgroupPath(id uint64) (CgroupPath, bool) {
	var raw tapioCgroupPath
	if err := p.objects.CgroupPaths.Lookup(id, &raw); err != nil {
		return CgroupPath{}, false
	}
	var out CgroupPath
	for i := range raw.Name {
		for j, c := range raw.Name[i] {
			out[i][j] = byte(c)
		}
	}
	return out, true
}

// Close detaches every probe and releases the maps and the reader; safe to call twice.
func (p *Programs) Close() error {
	var errs []error
	if p.Events != nil {
		errs = append(errs, p.Events.Close())
		p.Events = nil
	}
	for _, l := range p.links {
		errs = append(errs, l.Close())
	}
	p.links = nil
	errs = append(errs, p.objects.Close())
	return errors.Join(errs...)
}
