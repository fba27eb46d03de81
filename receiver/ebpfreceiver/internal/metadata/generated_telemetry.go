// Written by hand to follow ../../metadata.yaml, in the shape mdatagen generates from it: mdatagen
// is not served to this project. metadata_test.go fails when this file and metadata.yaml disagree.

package metadata

import (
	"errors"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/otel/metric"
)

func Meter(settings component.TelemetrySettings) metric.Meter {
	return settings.MeterProvider.Meter(ScopeName)
}

// TelemetryBuilder holds the receiver's self-telemetry instruments.
type TelemetryBuilder struct {
	meter                             metric.Meter
	ReceiverEbpfEventsReceived        metric.Int64Counter
	ReceiverEbpfRingbufDropped        metric.Int64Counter
	ReceiverEbpfFiltered              metric.Int64Counter
	ReceiverEbpfRateLimited           metric.Int64Counter
	ReceiverEbpfDecodeErrors          metric.Int64Counter
	ReceiverEbpfMetricEntitiesEvicted metric.Int64Counter
	ReceiverEbpfSocketOwnersEvicted   metric.Int64Counter
	ReceiverEbpfEventsMerged          metric.Int64Counter
}

// Shutdown releases the builder; no asynchronous instruments are registered.
func (builder *TelemetryBuilder) Shutdown() {}

// NewTelemetryBuilder creates every instrument of the receiver.
func NewTelemetryBuilder(settings component.TelemetrySettings) (*TelemetryBuilder, error) {
	b := TelemetryBuilder{meter: Meter(settings)}
	var err, errs error
	counter := func(name, description string) metric.Int64Counter {
		var c metric.Int64Counter
		c, err = b.meter.Int64Counter(name, metric.WithDescription(description), metric.WithUnit("{events}"))
		errs = errors.Join(errs, err)
		return c
	}
	b.ReceiverEbpfEventsReceived = counter("otelcol_receiver_ebpf_events_received", "Kernel events read from the ring buffer, by event. [Alpha]")
	b.ReceiverEbpfRingbufDropped = counter("otelcol_receiver_ebpf_ringbuf_dropped", "Kernel events lost because the ring buffer was full, counted in the kernel, by event. [Alpha]")
	b.ReceiverEbpfFiltered = counter("otelcol_receiver_ebpf_filtered", "Kernel events filtered out by rule in the kernel (normal exits, non-fatal signals), by event. [Alpha]")
	b.ReceiverEbpfRateLimited = counter("otelcol_receiver_ebpf_rate_limited", "Kernel events dropped by the configured per-event rate limit, by event. [Alpha]")
	b.ReceiverEbpfDecodeErrors = counter("otelcol_receiver_ebpf_decode_errors", "Ring-buffer records that could not be decoded. [Alpha]")
	b.ReceiverEbpfMetricEntitiesEvicted = counter("otelcol_receiver_ebpf_metric_entities_evicted", "Per-container counter series evicted at the max_metric_entities cap. [Alpha]")
	b.ReceiverEbpfSocketOwnersEvicted = counter("otelcol_receiver_ebpf_socket_owners_evicted", "Connecting sockets whose owner the kernel's socket-owner table could not keep (their set of slots was full); their later events name the listener, the current task or no process. [Alpha]")
	b.ReceiverEbpfEventsMerged = counter("otelcol_receiver_ebpf_events_merged", "Kernel events merged into an earlier record of the same batch (merge_repeats) instead of a record of their own, by event; the record's log_count counts them. [Alpha]")
	return &b, errs
}
