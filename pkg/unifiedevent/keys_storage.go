package unifiedevent

// Keys of block I/O events (the ebpf receiver's io_error and io_latency).
const (
	KeyDiskIODirection    = "disk.io.direction"
	KeyStorageDevice      = "tapio.storage.device"
	KeyStorageDeviceID    = "tapio.storage.device.id"
	KeyStorageSector      = "tapio.storage.sector"
	KeyStorageBytes       = "tapio.storage.bytes"
	KeyStorageLatencyMs   = "tapio.storage.latency_ms"
	KeyStorageThresholdMs = "tapio.storage.latency_threshold_ms"
)

var storageKeySpecs = []KeySpec{
	{KeyDiskIODirection, OnRecord, "read or write (other operations: their name)"},
	{KeyStorageDevice, OnRecord, "block device name, e.g. vda, loop0"},
	{KeyStorageDeviceID, OnRecord, "its major:minor"},
	{KeyStorageSector, OnRecord, "first sector of the request"},
	{KeyStorageBytes, OnRecord, "bytes the request covered"},
	{KeyStorageLatencyMs, OnRecord, "issue → completion, milliseconds"},
	{KeyStorageThresholdMs, OnRecord, "the io_latency threshold it exceeded, milliseconds"},
}
