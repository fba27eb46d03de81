package gen

import (
	"context"
	"math/rand/v2"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/trace"
)

type logWorker struct {
	route    route
	logger   log.Logger
	provider *sdklog.LoggerProvider
	exporter *otlploggrpc.Exporter
	sink     *sink[sdklog.Record]
	rnd      *rand.Rand
	errRate  float64
}

// logCollector hands every emitted record to the worker's batcher. The SDK reuses the record it
// passes, so the batcher keeps a copy.
type logCollector struct{ sink *sink[sdklog.Record] }

func (c logCollector) Enabled(context.Context, sdklog.EnabledParameters) bool { return true }
func (c logCollector) OnEmit(_ context.Context, r *sdklog.Record) error {
	c.sink.add(r.Clone())
	return nil
}
func (c logCollector) Shutdown(context.Context) error   { return nil }
func (c logCollector) ForceFlush(context.Context) error { return nil }

func newLogWorker(ctx context.Context, cfg Config, i int, rec *recorder) (*logWorker, error) {
	exp, err := otlploggrpc.New(ctx,
		otlploggrpc.WithEndpoint(cfg.Endpoint),
		otlploggrpc.WithInsecure(),
		otlploggrpc.WithRetry(otlploggrpc.RetryConfig{Enabled: false}),
		otlploggrpc.WithTimeout(cfg.ExportTimeout),
	)
	if err != nil {
		return nil, err
	}
	r := routeOf(MixHealthy, i)
	w := &logWorker{route: r, exporter: exp, rnd: rand.New(rand.NewPCG(uint64(i)+1, uint64(time.Now().UnixNano()))), errRate: cfg.errorFraction()}
	w.sink = newSink(cfg, rec, exp.Export)
	w.provider = sdklog.NewLoggerProvider(
		sdklog.WithResource(serviceResource(r, i)),
		sdklog.WithProcessor(logCollector{sink: w.sink}),
	)
	w.logger = w.provider.Logger("shop/" + r.service)
	return w, nil
}

// request logs one line of one request, inside the request's trace context.
func (w *logWorker) request(now time.Time) int {
	r := w.route
	var tid trace.TraceID
	var sid trace.SpanID
	hi, lo := w.rnd.Uint64(), w.rnd.Uint64()
	for b := range 8 {
		tid[b], tid[8+b] = byte(hi>>(8*b)), byte(lo>>(8*b))
		sid[b] = byte(w.rnd.Uint64() >> (8 * b))
	}
	sid[0] |= 1 // never the invalid all-zero id
	tid[0] |= 1
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled,
	}))
	var rec log.Record
	rec.SetTimestamp(now)
	rec.SetObservedTimestamp(now)
	if w.errRate >= 1 || (w.errRate > 0 && w.rnd.Float64() < w.errRate) {
		rec.SetSeverity(log.SeverityError)
		rec.SetSeverityText("ERROR")
		rec.SetBody(log.StringValue(r.method + " " + r.route + " failed: call to " + depTarget(r) + " failed (" + r.depError + ")"))
		rec.AddAttributes(
			log.String("http.route", r.route),
			log.Int("http.response.status_code", 500),
			log.String("error.type", r.depError),
			log.String("server.address", depTarget(r)),
			log.String("enduser.id", "user-"+strconv.Itoa(w.rnd.IntN(10000))),
		)
	} else {
		ms := 5 + w.rnd.IntN(55)
		rec.SetSeverity(log.SeverityInfo)
		rec.SetSeverityText("INFO")
		rec.SetBody(log.StringValue(r.method + " " + r.route + " 200 in " + strconv.Itoa(ms) + " ms"))
		rec.AddAttributes(
			log.String("http.route", r.route),
			log.Int("http.response.status_code", 200),
			log.Int("duration_ms", ms),
		)
	}
	w.logger.Emit(ctx, rec)
	return 1
}

func (w *logWorker) tick(now time.Time) { w.sink.tick(now) }

func (w *logWorker) close(ctx context.Context) error {
	w.sink.drain()
	if err := w.provider.Shutdown(ctx); err != nil {
		return err
	}
	return w.exporter.Shutdown(ctx)
}
