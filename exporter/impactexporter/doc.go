// Package impactexporter implements the impact exporter, which turns tapio.correlation records
// into scored incidents, stores them, serves them over an HTTP API and notifies a webhook.
//
// Its type, stability and self-telemetry are described in metadata.yaml, in mdatagen's format.
// Contrib would generate internal/metadata from it with "//go:generate mdatagen metadata.yaml"
// here; mdatagen is not served to this project, so internal/metadata is written by hand and this
// file has no such directive (see internal/metadatatest for why, and for the test that keeps the
// two in step).
package impactexporter
