package unifiedevent

// Keys of kernel facts with no semantic-convention name (the ebpf receiver's events).
const (
	KeyKernelSignalName         = "tapio.kernel.signal.name"
	KeyKernelSignalNumber       = "tapio.kernel.signal.number"
	KeyKernelOOMMemcgLimitBytes = "tapio.kernel.oom.memcg_limit_bytes"
	KeyKernelOOMMemcgUsageBytes = "tapio.kernel.oom.memcg_usage_bytes"
)

var kernelKeySpecs = []KeySpec{
	{KeyKernelSignalName, OnRecord, "signal name, e.g. SIGSEGV"},
	{KeyKernelSignalNumber, OnRecord, "signal number"},
	{KeyKernelOOMMemcgLimitBytes, OnRecord, "memory cgroup limit of an OOM victim, bytes"},
	{KeyKernelOOMMemcgUsageBytes, OnRecord, "memory cgroup usage of an OOM victim, bytes"},
}
