// Package telemetry sets up the OpenTelemetry Go SDK the way any instrumented service does:
// traces and logs over OTLP/gRPC to OTEL_EXPORTER_OTLP_ENDPOINT, a resource naming the service,
// its host and its process (so that kernel events about the process join its spans).
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	otellog "go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/propagation"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Providers are a service's tracer and logger.
type Providers struct {
	Tracer   trace.Tracer
	Logger   otellog.Logger
	shutdown []func(context.Context) error
}

// endpoint is the collector's OTLP/gRPC address.
func endpoint() string {
	e := os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	if e == "" {
		return "127.0.0.1:4317"
	}
	e = strings.TrimPrefix(strings.TrimPrefix(e, "http://"), "https://")
	return strings.TrimSuffix(e, "/")
}

// Setup starts the SDK for service; the returned Shutdown flushes everything.
func Setup(ctx context.Context, service string) (*Providers, error) {
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", service)),
		resource.WithHost(), resource.WithProcessPID(), resource.WithProcessExecutableName())
	if err != nil {
		return nil, fmt.Errorf("building the resource: %w", err)
	}
	traceExporter, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(endpoint()), otlptracegrpc.WithInsecure())
	if err != nil {
		return nil, err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res),
		sdktrace.WithBatcher(traceExporter, sdktrace.WithBatchTimeout(200*time.Millisecond)))
	logExporter, err := otlploggrpc.New(ctx, otlploggrpc.WithEndpoint(endpoint()), otlploggrpc.WithInsecure())
	if err != nil {
		return nil, err
	}
	lp := sdklog.NewLoggerProvider(sdklog.WithResource(res),
		sdklog.WithProcessor(sdklog.NewBatchProcessor(logExporter, sdklog.WithExportInterval(200*time.Millisecond))))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	return &Providers{
		Tracer:   tp.Tracer(service),
		Logger:   lp.Logger(service),
		shutdown: []func(context.Context) error{tp.Shutdown, lp.Shutdown},
	}, nil
}

// Shutdown flushes and stops the providers.
func (p *Providers) Shutdown(ctx context.Context) error {
	var errs []error
	for _, f := range p.shutdown {
		errs = append(errs, f(ctx))
	}
	return errors.Join(errs...)
}

// Error emits an ERROR log record in ctx's trace context.
func (p *Providers) Error(ctx context.Context, message string, attrs ...otellog.KeyValue) {
	var rec otellog.Record
	rec.SetTimestamp(time.Now())
	rec.SetSeverity(otellog.SeverityError)
	rec.SetSeverityText("ERROR")
	rec.SetBody(otellog.StringValue(message))
	rec.AddAttributes(attrs...)
	p.Logger.Emit(ctx, rec)
}
