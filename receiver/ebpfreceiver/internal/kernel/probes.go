package kernel

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// Probe names a switchable group of programs; the receiver's config uses these names.
type Probe string

const (
	ProbeProcessExec     Probe = "process_exec"
	ProbeProcessExit     Probe = "process_exit"
	ProbeOOMKill         Probe = "oom_kill"
	ProbeFatalSignal     Probe = "fatal_signal"
	ProbeConnections     Probe = "connections"
	ProbeConnectionReset Probe = "connection_reset"
	ProbeTCPRetransmit   Probe = "tcp_retransmit"
	ProbeBlockIO         Probe = "block_io"
	// ProbeProcessTree is not switchable: every event's workload is found in the process tree.
	ProbeProcessTree Probe = "process_tree"
)

// ProbeSpec is one row of the probe table: a probe's name, whether it is on by default, the
// programs it attaches (each bound to its BTF raw tracepoint in its section name), the constant
// that turns its events on in programs it shares with other probes, and what it reports.
type ProbeSpec struct {
	Name Probe
	// Switchable probes are turned on and off by probes.<name> in the configuration; the others
	// are always attached.
	Switchable bool
	Default    bool
	Programs   []string
	// Gate, when set, is a boolean constant that the probe's enabled state is written into
	// before load: a program attached for another probe emits this probe's events only then.
	Gate string
	// Reports says what the probe reports, for the README.
	Reports string
}

// ProbeTable is every probe, in documentation order. The receiver's configuration, its
// defaults, the loader, the README and the tests all read it.
var ProbeTable = []ProbeSpec{
	{Name: ProbeProcessTree, Programs: []string{"tapio_process_fork", "tapio_process_exec"},
		Reports: "nothing of its own: it keeps the process tree (forks, and execs of another program) so that every event names its workload"},
	{Name: ProbeProcessExec, Switchable: true, Default: false, Programs: []string{"tapio_process_exec"}, Gate: "emit_process_exec",
		Reports: "`tapio.kernel.process_exec` with `process.executable.path` (off by default: one event per exec)"},
	{Name: ProbeProcessExit, Switchable: true, Default: true, Programs: []string{"tapio_process_exit", "tapio_signal_generate"}, Gate: "track_exit_signals",
		Reports: "`tapio.kernel.process_exit` with `process.exit.code` and the signal that ended it and its sender; non-zero or signalled exits only by default, and always a serving process's end (one that listened, or a worker of one stopped by another process's signal)"},
	{Name: ProbeOOMKill, Switchable: true, Default: true, Programs: []string{"tapio_oom_victim"},
		Reports: "`tapio.kernel.oom_kill`: victim, its memory cgroup's limit and usage, total VM, anonymous RSS"},
	{Name: ProbeFatalSignal, Switchable: true, Default: true, Programs: []string{"tapio_signal_generate"}, Gate: "emit_fatal_signal",
		Reports: "`tapio.kernel.fatal_signal` for SIGKILL, SIGSEGV, SIGABRT, SIGBUS, SIGILL, SIGFPE, SIGQUIT, SIGTRAP, SIGSYS, with the sender and its workload"},
	{Name: ProbeConnections, Switchable: true, Default: true, Programs: []string{"tapio_sock_state"}, Gate: "emit_connections",
		Reports: "`tapio.network.connection_refused` / `connection_timeout` (a connect that dies in SYN_SENT, told apart by the socket error), `tapio.network.listen`"},
	{Name: ProbeConnectionReset, Switchable: true, Default: true, Programs: []string{"tapio_tcp_send_reset", "tapio_sock_state"}, Gate: "emit_received_resets",
		Reports: "`tapio.network.connection_reset` with `tapio.network.reset.direction`, attributed to the socket's owner (learnt on its state changes)"},
	{Name: ProbeTCPRetransmit, Switchable: true, Default: true, Programs: []string{"tapio_tcp_retransmit", "tapio_sock_state"},
		Reports: "`tapio.network.tcp_retransmit`: summed per connection in the kernel, one event per connection per `retransmit_interval` with the count"},
	{Name: ProbeBlockIO, Switchable: true, Default: true, Programs: []string{"tapio_block_issue", "tapio_block_complete"},
		Reports: "`tapio.storage.io_error` for a request completed with an error (device, direction, sector, bytes, `BLK_STS_*`, issuing process); `tapio.storage.io_latency` for one slower than `io_latency.threshold` (off by default)"},
}

// SwitchableProbes lists the probes the configuration turns on and off, in table order.
func SwitchableProbes() []Probe {
	var out []Probe
	for _, p := range ProbeTable {
		if p.Switchable {
			out = append(out, p.Name)
		}
	}
	return out
}

// AllProbes lists every switchable probe: everything on.
func AllProbes() []Probe { return SwitchableProbes() }

// LookupProbe returns the table row of a probe.
func LookupProbe(name Probe) (ProbeSpec, bool) {
	for _, p := range ProbeTable {
		if p.Name == name {
			return p, true
		}
	}
	return ProbeSpec{}, false
}

// Options chooses what is loaded and attached.
type Options struct {
	Probes []Probe
	// ExitAbnormalOnly keeps process_exit to non-zero codes, deaths by signal and serving
	// processes' ends.
	ExitAbnormalOnly bool
	// SignalWindow is how long after an ending signal an exit is taken to be its consequence.
	SignalWindow time.Duration
	// IOLatencyThreshold makes completed block requests at least this slow io_latency events;
	// 0 turns io_latency off (io_error stays).
	IOLatencyThreshold time.Duration
	// RingBufferBytes sizes the ring buffer: a power of two, a multiple of the page size. Records
	// wake the reader only each time another sixteenth of it fills; the reader must drain it on
	// its own schedule too (a read deadline), which bounds how long a record waits.
	RingBufferBytes uint32
	// CountRepeats has the kernel count a connection failure that repeats its CPU's current run
	// instead of writing a record of it; the counts are read with FailureRuns and the next run's
	// record (Event.RunStart).
	CountRepeats bool
}

// Programs is the loaded and attached set.
type Programs struct {
	maps      tapioMaps
	variables tapioVariables
	programs  map[string]*ebpf.Program
	links     []link.Link
	attached  []string // program names
	Events    *ringbuf.Reader
	// runScratch is FailureRuns' read buffer, one value per CPU.
	runScratch []tapioFailureRun
	// Attached names the attachment of every attached program ("tapio_sock_state on tp_btf/inet_sock_set_state").
	Attached []string
}

// btfPath is where the kernel publishes its type information, which CO-RE relocations need.
const btfPath = "/sys/kernel/btf/vmlinux"

// DefaultSignalWindow is how long after an ending signal an exit is its consequence by default.
const DefaultSignalWindow = 60 * time.Second

// ConnectAbandonAfter is how long a connect must have waited in SYN_SENT for its close without
// an answer to be reported as a timeout (connect_abandoned): an application's own connect
// timeout, not the quarter second after which happy eyeballs drops its losing attempt.
const ConnectAbandonAfter = 500 * time.Millisecond

// jiffiesAtLeast converts d to kernel ticks (jiffies), rounded up. The tick's length is the
// resolution of the coarse clocks, which tick with jiffies.
func jiffiesAtLeast(d time.Duration) (uint32, error) {
	var res unix.Timespec
	if err := unix.ClockGetres(unix.CLOCK_MONOTONIC_COARSE, &res); err != nil {
		return 0, fmt.Errorf("reading the kernel's tick length (clock_getres CLOCK_MONOTONIC_COARSE): %w", err)
	}
	tick := time.Duration(res.Nano())
	if tick <= 0 || tick > time.Second {
		return 0, fmt.Errorf("the kernel's tick length (CLOCK_MONOTONIC_COARSE resolution) is %v, not a jiffy", tick)
	}
	return uint32((d + tick - 1) / tick), nil
}

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
	window := opts.SignalWindow
	if window <= 0 {
		window = DefaultSignalWindow
	}
	if opts.RingBufferBytes != 0 {
		spec.Maps["events"].MaxEntries = opts.RingBufferBytes
	}
	abandonJiffies, err := jiffiesAtLeast(ConnectAbandonAfter)
	if err != nil {
		return nil, err
	}
	constants := map[string]any{
		"connect_abandon_jiffies": abandonJiffies,
		"exit_abnormal_only":      opts.ExitAbnormalOnly,
		"signal_window_ns":        uint64(window.Nanoseconds()),
		"io_latency_threshold_ns": uint64(opts.IOLatencyThreshold.Nanoseconds()),
		"wakeup_bytes":            uint64(spec.Maps["events"].MaxEntries / 16),
		"count_repeats":           opts.CountRepeats,
	}
	enabled := map[Probe]bool{}
	for _, name := range opts.Probes {
		if _, ok := LookupProbe(name); !ok {
			return nil, fmt.Errorf("unknown probe %q", name)
		}
		enabled[name] = true
	}
	var attach []string
	for _, p := range ProbeTable {
		on := !p.Switchable || enabled[p.Name]
		if p.Gate != "" {
			constants[p.Gate] = on
		}
		if on {
			for _, prog := range p.Programs {
				if !slices.Contains(attach, prog) {
					attach = append(attach, prog)
				}
			}
		}
	}
	for name, value := range constants {
		v, ok := spec.Variables[name]
		if !ok {
			return nil, fmt.Errorf("the eBPF object has no constant %s", name)
		}
		if err := v.Set(value); err != nil {
			return nil, fmt.Errorf("configuring %s: %w", name, err)
		}
	}

	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return nil, loadError(err)
	}
	p := &Programs{}
	if err := coll.Assign(&struct {
		*tapioMaps
		*tapioVariables
	}{&p.maps, &p.variables}); err != nil {
		coll.Close()
		return nil, fmt.Errorf("loading Tapio's eBPF maps: %w", err)
	}
	p.programs = coll.Programs
	for _, name := range attach {
		prog, ok := p.programs[name]
		if !ok {
			p.Close()
			return nil, fmt.Errorf("the eBPF object has no program %s", name)
		}
		l, err := link.AttachTracing(link.TracingOptions{Program: prog})
		if err != nil {
			p.Close()
			where := spec.Programs[name].SectionName
			if errors.Is(err, os.ErrPermission) {
				return nil, privilegeError("attaching "+name+" to "+where, err)
			}
			return nil, fmt.Errorf("attaching %s to the BTF raw tracepoint %s: %w", name, where, err)
		}
		p.links = append(p.links, l)
		p.attached = append(p.attached, name)
		p.Attached = append(p.Attached, name+" on "+spec.Programs[name].SectionName)
	}
	p.Events, err = ringbuf.NewReader(p.maps.Events)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("opening the event ring buffer: %w", err)
	}
	return p, nil
}

// Tracepoints returns the BTF raw tracepoint each program is bound to, read from the embedded
// object: what the probe table's programs attach to.
func Tracepoints() (map[string]string, error) {
	spec, err := loadTapio()
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(spec.Programs))
	for name, prog := range spec.Programs {
		out[name] = prog.AttachTo
	}
	return out, nil
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
	return sumPerCPU(p.maps.Dropped)
}

// Filtered returns, per event kind, how many events the programs filtered out by rule.
func (p *Programs) Filtered() ([KindCount]uint64, error) {
	return sumPerCPU(p.maps.Filtered)
}

// OwnersEvicted returns how many connecting sockets' owners the kernel's socket-owner table could
// not keep, summed over CPUs.
func (p *Programs) OwnersEvicted() (uint64, error) {
	var perCPU []uint64
	if err := p.maps.OwnersEvicted.Lookup(uint32(0), &perCPU); err != nil {
		return 0, fmt.Errorf("reading per-CPU counters: %w", err)
	}
	var total uint64
	for _, n := range perCPU {
		total += n
	}
	return total, nil
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

// FailureRun is a CPU's current run of one repeated connection failure (emit_failure in
// bpf/tapio.bpf.c): its number (0: none yet), the events it has counted so far, its first
// included, and when the last of them happened.
type FailureRun struct {
	Number uint32
	Events uint32
	LastNs uint64
}

// PossibleCPUs is how many CPUs the kernel keeps per-CPU state for (FailureRuns has one run each).
func PossibleCPUs() (int, error) {
	n, err := ebpf.PossibleCPU()
	if err != nil {
		return 0, fmt.Errorf("reading the kernel's possible CPUs: %w", err)
	}
	return n, nil
}

// FailureRuns reads every CPU's current run into runs, indexed by CPU, and returns it.
func (p *Programs) FailureRuns(runs []FailureRun) ([]FailureRun, error) {
	if err := p.maps.FailureRuns.Lookup(uint32(0), &p.runScratch); err != nil {
		return runs, fmt.Errorf("reading the per-CPU repeat runs: %w", err)
	}
	runs = runs[:0]
	for i := range p.runScratch {
		state := p.runScratch[i].State
		runs = append(runs, FailureRun{Number: uint32(state >> 32), Events: uint32(state), LastNs: p.runScratch[i].LastNs})
	}
	return runs, nil
}

// Retransmits walks the kernel's per-connection retransmit counters, which are cumulative: the
// caller keeps what it last saw.
func (p *Programs) Retransmits(visit func(conn Connection, count, lastNs uint64, owner *Identity, role Role)) error {
	var key tapioRetransmitKey
	var value tapioRetransmitValue
	var owner Identity
	it := p.maps.Retransmits.Iterate()
	for it.Next(&key, &value) {
		owner.fromGenerated(&value.Owner)
		visit(Connection{Netns: key.Netns, Family: key.Family, SourcePort: key.Sport, DestinationPort: key.Dport, Source: key.Saddr, Destination: key.Daddr},
			value.Count, value.LastNs, &owner, Role(value.Role))
	}
	return it.Err()
}

// RunStats is one attached program's cumulative invocations and time spent in it, as the kernel
// counts them while run-time statistics are enabled (EnableRunStats).
type RunStats struct {
	Runs    uint64
	Runtime time.Duration
}

// EnableRunStats turns on the kernel's per-program run-time statistics (as kernel.bpf_stats_enabled
// does) until the returned closer is closed. They cost two clock reads per invocation, so they
// are for measurements, never left on.
func EnableRunStats() (io.Closer, error) {
	c, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		return nil, fmt.Errorf("enabling eBPF run-time statistics: %w", err)
	}
	return c, nil
}

// RunStats returns each attached program's statistics by program name.
func (p *Programs) RunStats() (map[string]RunStats, error) {
	out := make(map[string]RunStats, len(p.attached))
	for _, name := range p.attached {
		st, err := p.programs[name].Stats()
		if err != nil {
			return nil, fmt.Errorf("reading the statistics of %s: %w", name, err)
		}
		out[name] = RunStats{Runs: st.RunCount, Runtime: st.Runtime}
	}
	return out, nil
}

// CgroupPath returns the path the kernel captured for a cgroup id; false when the cgroup was never
// seen or its entry was evicted from the map.
func (p *Programs) CgroupPath(id uint64) (CgroupPath, bool) {
	var raw tapioCgroupPath
	if err := p.maps.CgroupPaths.Lookup(id, &raw); err != nil {
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

// Detach detaches every probe: no record is written after it returns, and what is in the ring
// buffer can still be read. Safe to call twice.
func (p *Programs) Detach() error {
	var errs []error
	for _, l := range p.links {
		errs = append(errs, l.Close())
	}
	p.links = nil
	return errors.Join(errs...)
}

// Close detaches every probe and releases the maps and the reader; safe to call twice.
func (p *Programs) Close() error {
	var errs []error
	if p.Events != nil {
		errs = append(errs, p.Events.Close())
		p.Events = nil
	}
	errs = append(errs, p.Detach())
	for name, prog := range p.programs {
		errs = append(errs, prog.Close())
		delete(p.programs, name)
	}
	errs = append(errs, p.maps.Close())
	return errors.Join(errs...)
}
