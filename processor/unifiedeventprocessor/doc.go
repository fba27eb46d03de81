// Package unifiedeventprocessor implements the unifiedevent processor, which normalises every
// signal to the UnifiedEvent shape: Kubernetes Events and application error logs become
// UnifiedEvent log records, already-normalised events are validated and completed, failed and
// slow spans are annotated in place, and metrics get their entity id.
//
// Its type, stability and self-telemetry are described in metadata.yaml, in mdatagen's format.
// Contrib would generate internal/metadata from it with "//go:generate mdatagen metadata.yaml"
// here; mdatagen is not served to this project, so internal/metadata is written by hand and this
// file has no such directive (see internal/metadatatest for why, and for the test that keeps the
// two in step).
package unifiedeventprocessor
