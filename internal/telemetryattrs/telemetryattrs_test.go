package telemetryattrs

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

type reason uint8

const (
	reasonLate reason = iota
	reasonFull
	reasonCount
)

var reasonNames = [reasonCount]string{reasonLate: "late", reasonFull: "full"}

// newCounter is a counter on a meter provider of its own, and the reader that collects it.
func newCounter(t *testing.T) (metric.Int64Counter, *sdkmetric.ManualReader) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = provider.Shutdown(context.Background()) })
	counter, err := provider.Meter("test").Int64Counter("dropped")
	if err != nil {
		t.Fatal(err)
	}
	return counter, reader
}

func TestEachValueCountsUnderItsName(t *testing.T) {
	counter, reader := newCounter(t)
	reasons := NewEnum[reason]("reason", reasonNames[:])
	ctx := context.Background()
	counter.Add(ctx, 2, reasons.Options(reasonLate)...)
	counter.Add(ctx, 3, reasons.Options(reasonFull)...)
	counter.Add(ctx, 4, reasons.Options(reasonLate)...)
	counter.Add(ctx, 5, One("store", "spans")...)

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	got := map[attribute.KeyValue]int64{}
	for _, dp := range rm.ScopeMetrics[0].Metrics[0].Data.(metricdata.Sum[int64]).DataPoints {
		if dp.Attributes.Len() != 1 {
			t.Fatalf("data point with %d attributes, want one", dp.Attributes.Len())
		}
		kv, _ := dp.Attributes.Get(0)
		got[kv] = dp.Value
	}
	want := map[attribute.KeyValue]int64{
		attribute.String("reason", "late"): 6,
		attribute.String("reason", "full"): 3,
		attribute.String("store", "spans"): 5,
	}
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for kv, n := range want {
		if got[kv] != n {
			t.Errorf("%s=%s counted %d, want %d", kv.Key, kv.Value.Emit(), got[kv], n)
		}
	}
}

// The point of the package: counting by a prebuilt value allocates nothing per call.
func TestCountingAllocatesNothing(t *testing.T) {
	counter, _ := newCounter(t)
	reasons := NewEnum[reason]("reason", reasonNames[:])
	ctx := context.Background()
	counter.Add(ctx, 1, reasons.Options(reasonFull)...) // the series exists before measuring
	if allocs := testing.AllocsPerRun(100, func() { counter.Add(ctx, 1, reasons.Options(reasonFull)...) }); allocs != 0 {
		t.Errorf("Add with prebuilt options allocates %.0f times per call", allocs)
	}
}

// A batch's tally by reason is counted and named in one call each; zero counts leave no trace.
func TestAddEachAndFields(t *testing.T) {
	counter, reader := newCounter(t)
	reasons := NewEnum[reason]("reason", reasonNames[:])
	ctx := context.Background()
	tally := [reasonCount]int64{reasonFull: 7}
	if total := reasons.AddEach(ctx, counter, tally[:]); total != 7 {
		t.Errorf("AddEach returned %d, want 7", total)
	}
	fields := reasons.Fields(tally[:])
	if len(fields) != 1 || fields[0].Key != "full" || fields[0].Integer != 7 {
		t.Errorf("Fields = %v, want full=7 alone", fields)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	points := rm.ScopeMetrics[0].Metrics[0].Data.(metricdata.Sum[int64]).DataPoints
	if len(points) != 1 || points[0].Value != 7 {
		t.Errorf("data points %v, want one of 7 (reason=full)", points)
	}
}
