// Package ebpfreceiver implements the ebpf receiver: CO-RE eBPF programs on raw tracepoints
// observe process exits, OOM kills, fatal signals, refused, timed-out and reset connections, TCP
// retransmits and block I/O errors, and the receiver emits them as UnifiedEvents (logs) and as
// per-container counts (metrics). A logs and a metrics pipeline that name the same component id
// share one set of kernel programs.
//
// Its type, stability and self-telemetry are described in metadata.yaml, in mdatagen's format.
// Contrib would generate internal/metadata from it with "//go:generate mdatagen metadata.yaml"
// here; mdatagen is not served to this project, so internal/metadata is written by hand and this
// file has no such directive (see internal/metadatatest for why, and for the test that keeps the
// two in step).
package ebpfreceiver
