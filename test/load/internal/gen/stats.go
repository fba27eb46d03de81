// Package gen is the load generator of make loadtest: applications played by the OpenTelemetry
// Go SDK, exporting over OTLP/gRPC, and a process whose connects are refused. Every Export call is
// timed, every failed one is counted by its gRPC code, and nothing is dropped unseen: the SDK's
// own batchers (which drop when their queue is full) are replaced by a batcher the generator
// controls.
package gen

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/status"
)

// Result is what one generator run reports, all of it about the measuring window (after the
// warm-up).
type Result struct {
	Signal   string  `json:"signal"`
	Mix      string  `json:"mix"`
	Workers  int     `json:"workers"`
	Rate     float64 `json:"rate"` // asked for, items/s; 0 = unlimited
	OpenLoop bool    `json:"open_loop"`
	WindowS  float64 `json:"window_s"`
	// Generated is every item made in the window; Sent those in Export calls that succeeded,
	// Failed those in calls that failed, NotOffered those an open-loop generator shed because
	// max_in_flight calls were already waiting (so they never reached the collector).
	Generated  int64            `json:"generated"`
	Sent       int64            `json:"sent"`
	Failed     int64            `json:"failed"`
	NotOffered int64            `json:"not_offered"`
	Failures   map[string]int64 `json:"failures,omitempty"` // items, by gRPC code of the failed call
	Exports    int64            `json:"exports"`
	LatencyMs  Latency          `json:"export_latency_ms"`
	// Connect storm only.
	Connects *ConnectCounts `json:"connects,omitempty"`
}

// Latency summarises the duration of Export calls.
type Latency struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// window decides which work counts: items made and exports started between start and end.
type window struct {
	start, end time.Time
}

func (w window) in(t time.Time) bool { return !t.Before(w.start) && t.Before(w.end) }

// recorder collects the outcome of Export calls from every worker.
type recorder struct {
	w          window
	mu         sync.Mutex
	latencies  []time.Duration
	generated  int64
	sent       int64
	failed     int64
	notOffered int64
	exports    int64
	failures   map[string]int64
}

func newRecorder(w window) *recorder { return &recorder{w: w, failures: map[string]int64{}} }

func (r *recorder) made(at time.Time, items int) {
	if !r.w.in(at) {
		return
	}
	r.mu.Lock()
	r.generated += int64(items)
	r.mu.Unlock()
}

func (r *recorder) shed(at time.Time, items int) {
	if !r.w.in(at) {
		return
	}
	r.mu.Lock()
	r.notOffered += int64(items)
	r.mu.Unlock()
}

func (r *recorder) exported(started time.Time, took time.Duration, items int, err error) {
	if !r.w.in(started) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.exports++
	r.latencies = append(r.latencies, took)
	if err == nil {
		r.sent += int64(items)
		return
	}
	r.failed += int64(items)
	r.failures[failureReason(err)] += int64(items)
}

// failureReason names a failed Export by its gRPC code (ResourceExhausted, Unavailable, …), or
// by what else went wrong (a partial success the collector answered, a local deadline).
func failureReason(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "DeadlineExceeded"
	case errors.Is(err, context.Canceled):
		return "Canceled"
	}
	if s, ok := status.FromError(err); ok {
		return s.Code().String()
	}
	return "other: " + err.Error()
}

func (r *recorder) result(base Result) Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	base.WindowS = r.w.end.Sub(r.w.start).Seconds()
	base.Generated, base.Sent, base.Failed, base.NotOffered = r.generated, r.sent, r.failed, r.notOffered
	base.Exports = r.exports
	if len(r.failures) > 0 {
		base.Failures = r.failures
	}
	base.LatencyMs = summarise(r.latencies)
	return base
}

func summarise(d []time.Duration) Latency {
	if len(d) == 0 {
		return Latency{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	ms := func(x time.Duration) float64 { return math.Round(float64(x)/1e3) / 1e3 }
	return Latency{P50: ms(quantile(s, 0.50)), P99: ms(quantile(s, 0.99)), Max: ms(s[len(s)-1])}
}

// quantile of sorted samples, nearest rank.
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
