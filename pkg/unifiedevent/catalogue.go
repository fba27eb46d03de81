package unifiedevent

import "go.opentelemetry.io/collector/pdata/plog"

// Name is a full event name, `tapio.<layer>.<what>`, the value of the event.name attribute.
type Name string

// NamePrefix starts every Tapio event name; a record whose event.name lacks it is not a UnifiedEvent.
const NamePrefix = "tapio."

const (
	ProcessExec    Name = "tapio.kernel.process_exec"
	ProcessExit    Name = "tapio.kernel.process_exit"
	OOMKill        Name = "tapio.kernel.oom_kill"
	FatalSignal    Name = "tapio.kernel.fatal_signal"
	MemoryPressure Name = "tapio.kernel.memory_pressure"

	ConnectionRefused Name = "tapio.network.connection_refused"
	ConnectionTimeout Name = "tapio.network.connection_timeout"
	ConnectionReset   Name = "tapio.network.connection_reset"
	TCPRetransmit     Name = "tapio.network.tcp_retransmit"
	Listen            Name = "tapio.network.listen"

	IOError   Name = "tapio.storage.io_error"
	IOLatency Name = "tapio.storage.io_latency"

	PodOOMKilled      Name = "tapio.kubernetes.pod_oomkilled"
	CrashLoopBackOff  Name = "tapio.kubernetes.crash_loop_backoff"
	PodEvicted        Name = "tapio.kubernetes.pod_evicted"
	ImagePullFailed   Name = "tapio.kubernetes.image_pull_failed"
	FailedScheduling  Name = "tapio.kubernetes.failed_scheduling"
	ProbeFailed       Name = "tapio.kubernetes.probe_failed"
	KubernetesWarning Name = "tapio.kubernetes.warning"
	KubernetesNormal  Name = "tapio.kubernetes.normal"

	ErrorLog  Name = "tapio.application.error_log"
	Exception Name = "tapio.application.exception"

	ServerError     Name = "tapio.trace.server_error"
	DependencyError Name = "tapio.trace.dependency_error"
	SlowSpan        Name = "tapio.trace.slow_span"
)

// CorrelationName is the event name of the correlation connector's output records. It is not a
// catalogue entry: it summarises events rather than being one, and the processor passes it on as is.
const CorrelationName Name = "tapio.correlation"

// Definition is one catalogue entry.
type Definition struct {
	Name     Name
	Layer    Layer
	Category Category
	// Severity is what a producer sets when its source has no severity of its own.
	Severity plog.SeverityNumber
	// Problem marks events that are evidence of an incident (a kill, a failure, an error); whether
	// a group of them is an incident is the correlation connector's incident policy (an observed
	// consequence, or an event serious on its own). Context events such as listen or process_exec
	// are never evidence.
	Problem     bool
	Description string
}

var catalogue = []Definition{
	{ProcessExec, LayerKernel, CategoryProcess, plog.SeverityNumberInfo, false, "A process executed a new program (sched_process_exec). Off by default: high volume."},
	{ProcessExit, LayerKernel, CategoryProcess, plog.SeverityNumberWarn, true, "A process exited; by default abnormal exits (non-zero code or a terminating signal) and a serving process's end whatever its code, with the signal that ended it and its sender."},
	{OOMKill, LayerKernel, CategoryMemory, plog.SeverityNumberError, true, "The kernel OOM killer chose a victim (oom:mark_victim), with its memory cgroup limit and usage."},
	{FatalSignal, LayerKernel, CategoryProcess, plog.SeverityNumberError, true, "A fatal signal (SIGKILL, SIGSEGV, SIGABRT, SIGBUS, SIGILL, SIGFPE…) was generated for a process."},
	{MemoryPressure, LayerKernel, CategoryMemory, plog.SeverityNumberWarn, true, "A memory cgroup or the host ran under memory pressure."},
	{ConnectionRefused, LayerNetwork, CategoryNetwork, plog.SeverityNumberError, true, "A TCP connect was refused: nothing listened on the destination port."},
	{ConnectionTimeout, LayerNetwork, CategoryNetwork, plog.SeverityNumberError, true, "A TCP connect died in SYN_SENT without an answer: the kernel gave up (ETIMEDOUT), or the application closed it after waiting at least half a second (error.type connect_abandoned)."},
	{ConnectionReset, LayerNetwork, CategoryNetwork, plog.SeverityNumberWarn, true, "A TCP connection was reset by a peer or by this host."},
	{TCPRetransmit, LayerNetwork, CategoryNetwork, plog.SeverityNumberWarn, true, "TCP segments were retransmitted on a connection, aggregated per interval with a count."},
	{Listen, LayerNetwork, CategoryNetwork, plog.SeverityNumberInfo, false, "A process started listening on a port; links a peer address to the entity serving it."},
	{IOError, LayerStorage, CategoryStorage, plog.SeverityNumberError, true, "A block I/O request completed with an error."},
	{IOLatency, LayerStorage, CategoryLatency, plog.SeverityNumberWarn, true, "A block I/O request took longer than the configured threshold."},
	{PodOOMKilled, LayerKubernetes, CategoryMemory, plog.SeverityNumberError, true, "Kubernetes reported an OOM kill (reasons OOMKilling, OOMKilled)."},
	{CrashLoopBackOff, LayerKubernetes, CategoryAvailability, plog.SeverityNumberError, true, "The kubelet backs off restarting a failed container (reason BackOff, CrashLoopBackOff)."},
	{PodEvicted, LayerKubernetes, CategoryAvailability, plog.SeverityNumberError, true, "A pod was evicted (reason Evicted)."},
	{ImagePullFailed, LayerKubernetes, CategoryConfig, plog.SeverityNumberError, true, "An image could not be pulled (ErrImagePull, ImagePullBackOff, BackOff or Failed while pulling)."},
	{FailedScheduling, LayerKubernetes, CategoryScheduling, plog.SeverityNumberWarn, true, "The scheduler could not place a pod (reason FailedScheduling)."},
	{ProbeFailed, LayerKubernetes, CategoryAvailability, plog.SeverityNumberWarn, true, "A liveness, readiness or startup probe failed (reason Unhealthy)."},
	{KubernetesWarning, LayerKubernetes, CategoryAvailability, plog.SeverityNumberWarn, true, "Any other Kubernetes Warning event; the reason is kept."},
	{KubernetesNormal, LayerKubernetes, CategoryConfig, plog.SeverityNumberInfo, false, "A Kubernetes Normal event, kept only when configured (dropped and counted by default)."},
	{ErrorLog, LayerApplication, CategoryError, plog.SeverityNumberError, true, "An application log record at severity ERROR or above."},
	{Exception, LayerApplication, CategoryError, plog.SeverityNumberError, true, "An application log record carrying exception.* attributes."},
	{ServerError, LayerTrace, CategoryError, plog.SeverityNumberError, true, "A SERVER span failed: HTTP status ≥ 500, a gRPC server error, or status Error."},
	{DependencyError, LayerTrace, CategoryError, plog.SeverityNumberError, true, "A CLIENT span (HTTP, database, RPC) failed."},
	{SlowSpan, LayerTrace, CategoryLatency, plog.SeverityNumberWarn, true, "A span took longer than the threshold configured for its service and route."},
}

var catalogueByName = func() map[string]int {
	index := make(map[string]int, len(catalogue))
	for i, d := range catalogue {
		index[string(d.Name)] = i
	}
	return index
}()

// Lookup returns the catalogue entry for an event.name value.
func Lookup(name string) (Definition, bool) {
	i, ok := catalogueByName[name]
	if !ok {
		return Definition{}, false
	}
	return catalogue[i], true
}

// Catalogue returns a copy of every catalogue entry, in documentation order.
func Catalogue() []Definition {
	return append([]Definition(nil), catalogue...)
}

// IsTapioName reports whether an event.name value claims to be a Tapio event.
func IsTapioName(name string) bool {
	return len(name) > len(NamePrefix) && name[:len(NamePrefix)] == NamePrefix
}

// causalPrecedence orders events of one layer that happen at the same moment. The kernel sends an
// OOM victim its SIGKILL microseconds before it records the victim, and the process exits after
// both: by time alone the signal would look like the cause.
var causalPrecedence = map[Name]uint8{
	OOMKill:     0,
	FatalSignal: 2,
	ProcessExit: 3,
}

// CausalPrecedence ranks an event among events of its own layer within clock skew of each other:
// lower is more likely the cause. Events not ranked explicitly rank 1.
func CausalPrecedence(name Name) uint8 {
	if p, ok := causalPrecedence[name]; ok {
		return p
	}
	return 1
}
