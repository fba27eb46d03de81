// Package telemetryattrs prebuilds the attribute options of self-telemetry counters that are
// counted by one attribute with a fixed list of values: a drop reason, a layer, an event kind.
//
// Passing a fresh metric.WithAttributes option to Add allocates on every call; a component that
// counts per batch on the hot path builds each value's option slice once, at creation, and passes
// the same slice every time.
package telemetryattrs

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
)

// Index is the type of an enumeration's values: a component's own reason or kind type.
type Index interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64 | ~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64
}

// Enum holds, for each value of an enumeration I, the options that set one attribute to that
// value's name. Indexing it with another enumeration's type does not compile.
type Enum[I Index] struct {
	names   []string
	byIndex [][]metric.AddOption
}

// NewEnum builds the options that set key to names[i], for every index i.
func NewEnum[I Index](key string, names []string) Enum[I] {
	e := Enum[I]{names: names, byIndex: make([][]metric.AddOption, len(names))}
	for i, name := range names {
		e.byIndex[i] = One(key, name)
	}
	return e
}

// Options returns the options for value i, to pass to Add as opts...; it allocates nothing.
func (e Enum[I]) Options(i I) []metric.AddOption { return e.byIndex[i] }

// AddEach adds every non-zero counts[i] to c under value i's attribute — a batch's tally of
// drops by reason, say — and returns their sum, for the caller's log line.
func (e Enum[I]) AddEach(ctx context.Context, c metric.Int64Counter, counts []int64) (total int64) {
	for i, n := range counts {
		if n != 0 {
			c.Add(ctx, n, e.byIndex[i]...)
			total += n
		}
	}
	return total
}

// Fields names every non-zero counts[i] as a log field, value i's name as the key.
func (e Enum[I]) Fields(counts []int64) []zap.Field {
	fields := make([]zap.Field, 0, len(counts))
	for i, n := range counts {
		if n != 0 {
			fields = append(fields, zap.Int64(e.names[i], n))
		}
	}
	return fields
}

// One builds the options that set key to value, for a counter with a single fixed attribute.
func One(key, value string) []metric.AddOption {
	return []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String(key, value)))}
}
