// Package correlationconnector implements the correlation connector, which joins the
// UnifiedEvents of every layer (from traces, logs and metrics pipelines sharing one state) into
// explained incidents and emits one tapio.correlation log record per incident.
//
// Its type, stability and self-telemetry are described in metadata.yaml, in mdatagen's format.
// Contrib would generate internal/metadata from it with "//go:generate mdatagen metadata.yaml"
// here; mdatagen is not served to this project, so internal/metadata is written by hand and this
// file has no such directive (see internal/metadatatest for why, and for the test that keeps the
// two in step).
package correlationconnector
