// Written by hand to follow ../../metadata.yaml, in the shape mdatagen generates from it: mdatagen
// is not served to this project. metadata_test.go fails when this file and metadata.yaml disagree.

package metadata

import (
	"errors"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

func Meter(settings component.TelemetrySettings) metric.Meter {
	return settings.MeterProvider.Meter(ScopeName)
}

func Tracer(settings component.TelemetrySettings) trace.Tracer {
	return settings.TracerProvider.Tracer(ScopeName)
}

// TelemetryBuilder holds the processor's self-telemetry instruments.
type TelemetryBuilder struct {
	meter                                  metric.Meter
	ProcessorUnifiedeventRecordsNormalized metric.Int64Counter
	ProcessorUnifiedeventRecordsDropped    metric.Int64Counter
	ProcessorUnifiedeventRecordsInvalid    metric.Int64Counter
}

// Shutdown releases the builder; the processor registers no asynchronous instruments.
func (builder *TelemetryBuilder) Shutdown() {}

// NewTelemetryBuilder creates every instrument of the processor.
func NewTelemetryBuilder(settings component.TelemetrySettings) (*TelemetryBuilder, error) {
	builder := TelemetryBuilder{meter: Meter(settings)}
	var err, errs error
	builder.ProcessorUnifiedeventRecordsNormalized, err = builder.meter.Int64Counter(
		"otelcol_processor_unifiedevent_records_normalized",
		metric.WithDescription("Records and spans turned into UnifiedEvents, or validated as such, by layer. [Alpha]"),
		metric.WithUnit("{records}"),
	)
	errs = errors.Join(errs, err)
	builder.ProcessorUnifiedeventRecordsDropped, err = builder.meter.Int64Counter(
		"otelcol_processor_unifiedevent_records_dropped",
		metric.WithDescription("Log records dropped by rule, by reason. [Alpha]"),
		metric.WithUnit("{records}"),
	)
	errs = errors.Join(errs, err)
	builder.ProcessorUnifiedeventRecordsInvalid, err = builder.meter.Int64Counter(
		"otelcol_processor_unifiedevent_records_invalid",
		metric.WithDescription("Records that claimed to be events but could not be read as such, by reason. [Alpha]"),
		metric.WithUnit("{records}"),
	)
	errs = errors.Join(errs, err)
	return &builder, errs
}
