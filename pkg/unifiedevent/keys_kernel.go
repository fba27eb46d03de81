package unifiedevent

// Keys of kernel facts with no semantic-convention name (the ebpf receiver's events).
const (
	KeyKernelSignalName         = "tapio.kernel.signal.name"
	KeyKernelSignalNumber       = "tapio.kernel.signal.number"
	KeyKernelOOMMemcgLimitBytes = "tapio.kernel.oom.memcg_limit_bytes"
	KeyKernelOOMMemcgUsageBytes = "tapio.kernel.oom.memcg_usage_bytes"
)

var kernelKeySpecs = []KeySpec{
	{KeyKernelSignalName, OnRecord, "signal name, e.g. SIGSEGV: the one sent (fatal_signal), or the one that ended the process (process_exit: it killed the process, or the process exited after it)"},
	{KeyKernelSignalNumber, OnRecord, "signal number"},
	{KeyKernelOOMMemcgLimitBytes, OnRecord, "memory cgroup limit of an OOM victim, bytes"},
	{KeyKernelOOMMemcgUsageBytes, OnRecord, "memory cgroup usage of an OOM victim, bytes"},
}

// Process and network keys the ebpf receiver writes beyond the core set.
const (
	KeyProcessExecutablePath      = "process.executable.path"
	KeyProcessUserID              = "process.user.id"
	KeyThreadID                   = "thread.id"
	KeyNetworkType                = "network.type"
	KeyKernelCgroupPath           = "tapio.kernel.cgroup.path"
	KeyKernelCoreDumped           = "tapio.kernel.core_dumped"
	KeyKernelSignalSenderPID      = "tapio.kernel.signal.sender.pid"
	KeyKernelSignalSenderName     = "tapio.kernel.signal.sender.name"
	KeyKernelSignalSenderEntityID = "tapio.kernel.signal.sender.entity.id"
	KeyNetworkNamespace           = "tapio.network.namespace"
	KeyNetworkSide                = "tapio.network.side"
	KeyKernelOOMTotalVMBytes      = "tapio.kernel.oom.total_vm_bytes"
	KeyKernelOOMAnonRSSBytes      = "tapio.kernel.oom.anon_rss_bytes"
	KeyNetworkResetDirection      = "tapio.network.reset.direction"
	KeyNetworkRetransmitCount     = "tapio.network.retransmit.count"
	KeyNetworkRetransmitInterval  = "tapio.network.retransmit.interval_ms"
)

var kernelReceiverKeySpecs = []KeySpec{
	{KeyProcessExecutablePath, OnRecord, "program a process executed (process_exec)"},
	{KeyProcessUserID, OnResource, "real user id of the process"},
	{KeyThreadID, OnRecord, "thread id, when the event is about a thread other than the main one"},
	{KeyNetworkType, OnRecord, "ipv4 or ipv6"},
	{KeyKernelCgroupPath, OnResource, "the task's cgroup path as the kernel saw it at event time (last levels)"},
	{KeyKernelCoreDumped, OnRecord, "the process dumped core"},
	{KeyKernelSignalSenderPID, OnRecord, "process that sent the signal (fatal_signal), or the last signal that could end the process before its exit (process_exit); the task in whose context the kernel generated it"},
	{KeyKernelSignalSenderName, OnRecord, "its executable name"},
	{KeyKernelSignalSenderEntityID, OnRecord, "its workload, by the entity-id rule: a signal joins the events of the workload that sent it"},
	{KeyNetworkNamespace, OnRecord, "inode number of the socket's network namespace (as in /proc/<pid>/ns/net), when it is not the collector's own: the same address in two namespaces is two endpoints"},
	{KeyNetworkSide, OnRecord, "which end of the connection the event's process is: `client` (it connected) or `server` (its listener accepted the connection; `source.*` is then the served endpoint)"},
	{KeyKernelOOMTotalVMBytes, OnRecord, "OOM victim's total virtual memory, bytes"},
	{KeyKernelOOMAnonRSSBytes, OnRecord, "OOM victim's anonymous resident memory, bytes"},
	{KeyNetworkResetDirection, OnRecord, "received or sent"},
	{KeyNetworkRetransmitCount, OnRecord, "segments retransmitted on the connection in the interval"},
	{KeyNetworkRetransmitInterval, OnRecord, "length of that interval, milliseconds"},
}
