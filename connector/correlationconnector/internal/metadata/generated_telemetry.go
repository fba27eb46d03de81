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

// TelemetryBuilder holds the connector's self-telemetry instruments.
type TelemetryBuilder struct {
	meter                                        metric.Meter
	ConnectorCorrelationEventsInState            metric.Int64UpDownCounter
	ConnectorCorrelationEventsAccepted           metric.Int64Counter
	ConnectorCorrelationRecordsIgnored           metric.Int64Counter
	ConnectorCorrelationEventsDropped            metric.Int64Counter
	ConnectorCorrelationEvictions                metric.Int64Counter
	ConnectorCorrelationIncidentsOpen            metric.Int64UpDownCounter
	ConnectorCorrelationIncidentsEmitted         metric.Int64Counter
	ConnectorCorrelationLinks                    metric.Int64Counter
	ConnectorCorrelationThresholdBreaches        metric.Int64Counter
	ConnectorCorrelationRecordsRefused           metric.Int64Counter
	ConnectorCorrelationEventsWithoutConsequence metric.Int64Counter
	ConnectorCorrelationPersistenceErrors        metric.Int64Counter
	ConnectorCorrelationEventsRestored           metric.Int64Counter
}

// Shutdown releases the builder; the connector registers no asynchronous instruments.
func (builder *TelemetryBuilder) Shutdown() {}

// NewTelemetryBuilder creates every instrument of the connector.
func NewTelemetryBuilder(settings component.TelemetrySettings) (*TelemetryBuilder, error) {
	builder := TelemetryBuilder{meter: Meter(settings)}
	var err, errs error
	builder.ConnectorCorrelationEventsInState, err = builder.meter.Int64UpDownCounter(
		"otelcol_connector_correlation_events_in_state",
		metric.WithDescription("Event summaries held in memory, by store: span structure or problem events. [Alpha]"),
		metric.WithUnit("{events}"),
	)
	errs = errors.Join(errs, err)
	builder.ConnectorCorrelationEventsAccepted, err = builder.meter.Int64Counter(
		"otelcol_connector_correlation_events_accepted",
		metric.WithDescription("Spans, UnifiedEvents and metric breaches taken into state, by kind. [Alpha]"),
		metric.WithUnit("{events}"),
	)
	errs = errors.Join(errs, err)
	builder.ConnectorCorrelationRecordsIgnored, err = builder.meter.Int64Counter(
		"otelcol_connector_correlation_records_ignored",
		metric.WithDescription("Log records that are not UnifiedEvents the connector can use, by reason. [Alpha]"),
		metric.WithUnit("{records}"),
	)
	errs = errors.Join(errs, err)
	builder.ConnectorCorrelationEventsDropped, err = builder.meter.Int64Counter(
		"otelcol_connector_correlation_events_dropped",
		metric.WithDescription("Events refused by the connector, by reason (late: older than the window). [Alpha]"),
		metric.WithUnit("{events}"),
	)
	errs = errors.Join(errs, err)
	builder.ConnectorCorrelationEvictions, err = builder.meter.Int64Counter(
		"otelcol_connector_correlation_evictions",
		metric.WithDescription("State evicted before its time because a cap was reached, by cap. [Alpha]"),
		metric.WithUnit("{items}"),
	)
	errs = errors.Join(errs, err)
	builder.ConnectorCorrelationIncidentsOpen, err = builder.meter.Int64UpDownCounter(
		"otelcol_connector_correlation_incidents_open",
		metric.WithDescription("Incidents currently open. [Alpha]"),
		metric.WithUnit("{incidents}"),
	)
	errs = errors.Join(errs, err)
	builder.ConnectorCorrelationIncidentsEmitted, err = builder.meter.Int64Counter(
		"otelcol_connector_correlation_incidents_emitted",
		metric.WithDescription("Correlation records emitted, by trigger: decision, close, eviction, shutdown. [Alpha]"),
		metric.WithUnit("{records}"),
	)
	errs = errors.Join(errs, err)
	builder.ConnectorCorrelationLinks, err = builder.meter.Int64Counter(
		"otelcol_connector_correlation_links",
		metric.WithDescription("Evidence links placed on emitted chains, by reason; each chain entry is counted once. [Alpha]"),
		metric.WithUnit("{links}"),
	)
	errs = errors.Join(errs, err)
	builder.ConnectorCorrelationThresholdBreaches, err = builder.meter.Int64Counter(
		"otelcol_connector_correlation_threshold_breaches",
		metric.WithDescription("Metric threshold breaches turned into events, by rule. [Alpha]"),
		metric.WithUnit("{events}"),
	)
	errs = errors.Join(errs, err)
	builder.ConnectorCorrelationRecordsRefused, err = builder.meter.Int64Counter(
		"otelcol_connector_correlation_records_refused",
		metric.WithDescription("Correlation records that could not be handed downstream, by reason: no_output, downstream_error. [Alpha]"),
		metric.WithUnit("{records}"),
	)
	errs = errors.Join(errs, err)
	builder.ConnectorCorrelationEventsWithoutConsequence, err = builder.meter.Int64Counter(
		"otelcol_connector_correlation_events_without_consequence",
		metric.WithDescription("Problem events whose group closed with no observed consequence, so no incident was emitted for them, by event name. [Alpha]"),
		metric.WithUnit("{events}"),
	)
	errs = errors.Join(errs, err)
	builder.ConnectorCorrelationPersistenceErrors, err = builder.meter.Int64Counter(
		"otelcol_connector_correlation_persistence_errors",
		metric.WithDescription("Failed operations on the write-ahead log of the correlation state, by operation: write (the Consume call failed), read, decode (an entry skipped or refused at start), delete. [Alpha]"),
		metric.WithUnit("{errors}"),
	)
	errs = errors.Join(errs, err)
	builder.ConnectorCorrelationEventsRestored, err = builder.meter.Int64Counter(
		"otelcol_connector_correlation_events_restored",
		metric.WithDescription("Problem events of open incidents restored from the write-ahead log at start. [Alpha]"),
		metric.WithUnit("{events}"),
	)
	errs = errors.Join(errs, err)
	return &builder, errs
}
