// Package unifiedevent is schema v1 of Tapio's UnifiedEvent: the attribute keys, the event-name
// catalogue, the entity-id rule, typed readers and writers over pdata, and narrative helpers.
//
// A UnifiedEvent is an OTLP LogRecord. Spans are not converted: the same attributes are written
// onto them in place so that traces stay traces. Every Tapio component reads and writes events
// through this package so that no component spells a tapio.* key by hand, and docs/UNIFIED_EVENT.md
// is checked against it by a test (regenerate it with `make generate`).
package unifiedevent

//go:generate go test -run TestUnifiedEventDocMatchesSchema -update .
