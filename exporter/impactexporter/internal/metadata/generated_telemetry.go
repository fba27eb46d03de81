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

// TelemetryBuilder holds the exporter's self-telemetry instruments.
type TelemetryBuilder struct {
	meter                                metric.Meter
	ExporterImpactRecordsIgnored         metric.Int64Counter
	ExporterImpactRecordsInvalid         metric.Int64Counter
	ExporterImpactIncidentsUpserted      metric.Int64Counter
	ExporterImpactIncidentsStale         metric.Int64Counter
	ExporterImpactIncidentsExpired       metric.Int64Counter
	ExporterImpactStoreErrors            metric.Int64Counter
	ExporterImpactStreamEventsDropped    metric.Int64Counter
	ExporterImpactNotificationsSent      metric.Int64Counter
	ExporterImpactNotificationsFailed    metric.Int64Counter
	ExporterImpactNotificationsRetried   metric.Int64Counter
	ExporterImpactNotificationsDropped   metric.Int64Counter
	ExporterImpactAPIRequests            metric.Int64Counter
	ExporterImpactDependencyEdgesRefused metric.Int64Counter
}

// Shutdown releases the builder; the exporter registers no asynchronous instruments.
func (builder *TelemetryBuilder) Shutdown() {}

// NewTelemetryBuilder creates every instrument of the exporter.
func NewTelemetryBuilder(settings component.TelemetrySettings) (*TelemetryBuilder, error) {
	builder := TelemetryBuilder{meter: Meter(settings)}
	var errs error
	counter := func(name, description, unit string) metric.Int64Counter {
		c, err := builder.meter.Int64Counter(name, metric.WithDescription(description+" [Alpha]"), metric.WithUnit(unit))
		errs = errors.Join(errs, err)
		return c
	}
	builder.ExporterImpactRecordsIgnored = counter("otelcol_exporter_impact_records_ignored",
		"Log records that are not tapio.correlation records, ignored.", "{records}")
	builder.ExporterImpactRecordsInvalid = counter("otelcol_exporter_impact_records_invalid",
		"tapio.correlation records that could not be read, by reason.", "{records}")
	builder.ExporterImpactIncidentsUpserted = counter("otelcol_exporter_impact_incidents_upserted",
		"Incidents scored and stored, by type (created, updated) and severity.", "{incidents}")
	builder.ExporterImpactIncidentsStale = counter("otelcol_exporter_impact_incidents_stale",
		"Correlation records not stored because a newer or equal version was already stored.", "{records}")
	builder.ExporterImpactIncidentsExpired = counter("otelcol_exporter_impact_incidents_expired",
		"Incidents deleted by retention or evicted, least recently updated first, to keep the store within max_incidents and max_size_mib, by reason.", "{incidents}")
	builder.ExporterImpactStoreErrors = counter("otelcol_exporter_impact_store_errors",
		"Failed incident store operations, by operation.", "{errors}")
	builder.ExporterImpactStreamEventsDropped = counter("otelcol_exporter_impact_stream_events_dropped",
		"Server-sent events not delivered because a subscriber fell behind.", "{events}")
	builder.ExporterImpactNotificationsSent = counter("otelcol_exporter_impact_notifications_sent",
		"Webhook notifications delivered.", "{notifications}")
	builder.ExporterImpactNotificationsFailed = counter("otelcol_exporter_impact_notifications_failed",
		"Webhook notifications given up after every retry.", "{notifications}")
	builder.ExporterImpactNotificationsRetried = counter("otelcol_exporter_impact_notifications_retried",
		"Webhook delivery attempts that failed and were retried.", "{attempts}")
	builder.ExporterImpactNotificationsDropped = counter("otelcol_exporter_impact_notifications_dropped",
		"Webhook notifications dropped because the queue was full or the exporter shut down.", "{notifications}")
	builder.ExporterImpactAPIRequests = counter("otelcol_exporter_impact_api_requests",
		"HTTP API requests, by route and status class.", "{requests}")
	builder.ExporterImpactDependencyEdgesRefused = counter("otelcol_exporter_impact_dependency_edges_refused",
		"Observed service dependencies not recorded because max_dependency_edges was reached.", "{edges}")
	return &builder, errs
}
