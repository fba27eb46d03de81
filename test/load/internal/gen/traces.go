package gen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// route is one kind of request a shop's service serves, and the dependency it calls.
type route struct {
	service, method, route, path string
	// dependency is the CLIENT child: its span name and attributes.
	depName  string
	depAttrs []attribute.KeyValue
	// depError is error.type when the dependency fails.
	depError string
}

var (
	checkout = route{
		service: "checkout", method: "POST", route: "/api/checkout", path: "/api/checkout",
		depName: "POST",
		depAttrs: []attribute.KeyValue{
			attribute.String("http.request.method", "POST"),
			attribute.String("server.address", "payment"),
			attribute.Int("server.port", 8080),
			attribute.String("url.full", "http://payment:8080/api/charge"),
			attribute.String("peer.service", "payment"),
		},
		depError: "503",
	}
	items = route{
		service: "catalog", method: "GET", route: "/api/items/{id}", path: "/api/items/",
		depName: "SELECT items",
		depAttrs: []attribute.KeyValue{
			attribute.String("db.system.name", "postgresql"),
			attribute.String("db.operation.name", "SELECT"),
			attribute.String("db.collection.name", "items"),
			attribute.String("db.query.text", "SELECT id, name, price FROM items WHERE id = $1"),
			attribute.String("server.address", "catalog-db"),
			attribute.Int("server.port", 5432),
		},
		depError: "57P01",
	}
	cart = route{
		service: "cart", method: "GET", route: "/api/cart", path: "/api/cart",
		depName: "GET",
		depAttrs: []attribute.KeyValue{
			attribute.String("db.system.name", "redis"),
			attribute.String("db.operation.name", "GET"),
			attribute.String("server.address", "cart-redis"),
			attribute.Int("server.port", 6379),
		},
		depError: "connection_refused",
	}
)

// routeOf is the route a worker's service serves: healthy traffic spreads workers over three
// services; in the storm every worker is a checkout instance calling the failing payment.
func routeOf(mix string, worker int) route {
	if mix == MixStorm {
		return checkout
	}
	return [...]route{checkout, items, cart}[worker%3]
}

func serviceResource(r route, worker int) *resource.Resource {
	return resource.NewWithAttributes("",
		attribute.String("service.name", r.service),
		attribute.String("service.version", "1.4.2"),
		attribute.String("service.instance.id", fmt.Sprintf("%s-%d", r.service, worker)),
		attribute.String("deployment.environment.name", "loadtest"),
		attribute.String("host.name", "loadtest-host"),
		attribute.String("telemetry.sdk.language", "go"),
	)
}

type traceWorker struct {
	cfg      Config
	route    route
	tracer   trace.Tracer
	provider *sdktrace.TracerProvider
	exporter *otlptrace.Exporter
	sink     *sink[sdktrace.ReadOnlySpan]
	rnd      *rand.Rand
	failRate float64
}

// collector hands every ended span to the worker's batcher, in the worker's goroutine.
type collector struct{ sink *sink[sdktrace.ReadOnlySpan] }

func (c collector) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (c collector) OnEnd(s sdktrace.ReadOnlySpan)                   { c.sink.add(s) }
func (c collector) Shutdown(context.Context) error                  { return nil }
func (c collector) ForceFlush(context.Context) error                { return nil }

func newTraceWorker(ctx context.Context, cfg Config, i int, rec *recorder) (*traceWorker, error) {
	exp, err := otlptracegrpc.New(ctx,
		otlptracegrpc.WithEndpoint(cfg.Endpoint),
		otlptracegrpc.WithInsecure(),
		// A refusal is what is measured, not hidden behind retries.
		otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}),
		otlptracegrpc.WithTimeout(cfg.ExportTimeout),
	)
	if err != nil {
		return nil, err
	}
	r := routeOf(cfg.Mix, i)
	w := &traceWorker{cfg: cfg, route: r, exporter: exp, rnd: rand.New(rand.NewPCG(uint64(i)+1, uint64(time.Now().UnixNano()))), failRate: cfg.errorFraction()}
	w.sink = newSink(cfg, rec, exp.ExportSpans)
	w.provider = sdktrace.NewTracerProvider(
		sdktrace.WithResource(serviceResource(r, i)),
		sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithSpanProcessor(collector{sink: w.sink}),
	)
	w.tracer = w.provider.Tracer("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp")
	return w, nil
}

// request makes one request's trace: the SERVER span and its CLIENT child.
func (w *traceWorker) request(now time.Time) int {
	r := w.route
	failed := w.failRate >= 1 || (w.failRate > 0 && w.rnd.Float64() < w.failRate)
	total := time.Duration(5+w.rnd.IntN(55)) * time.Millisecond
	start := now.Add(-total)
	path := r.path
	if r.route == "/api/items/{id}" {
		path += strconv.Itoa(w.rnd.IntN(5000))
	}
	user := "user-" + strconv.Itoa(w.rnd.IntN(10000))
	ctx, server := w.tracer.Start(context.Background(), r.method+" "+r.route,
		trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start),
		trace.WithAttributes(
			attribute.String("http.request.method", r.method),
			attribute.String("http.route", r.route),
			attribute.String("url.path", path),
			attribute.String("url.scheme", "http"),
			attribute.String("server.address", "shop.example"),
			attribute.Int("server.port", 8080),
			attribute.String("network.protocol.version", "1.1"),
			attribute.String("client.address", "192.0.2."+strconv.Itoa(1+w.rnd.IntN(250))),
			attribute.String("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"),
			attribute.String("enduser.id", user),
		))
	depStart := start.Add(total / 5)
	depEnd := depStart.Add(total / 2)
	_, dep := w.tracer.Start(ctx, r.depName, trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(depStart),
		trace.WithAttributes(r.depAttrs...))
	if failed {
		if r.depError == "503" {
			dep.SetAttributes(attribute.Int("http.response.status_code", 503))
		}
		dep.SetAttributes(attribute.String("error.type", r.depError))
		dep.SetStatus(codes.Error, r.route+": "+r.service+" → "+depTarget(r)+" failed: "+r.depError)
	} else if r.depError == "503" {
		dep.SetAttributes(attribute.Int("http.response.status_code", 200))
	}
	dep.End(trace.WithTimestamp(depEnd))
	if failed {
		server.SetAttributes(attribute.Int("http.response.status_code", 500), attribute.String("error.type", "500"))
		server.SetStatus(codes.Error, "")
	} else {
		server.SetAttributes(attribute.Int("http.response.status_code", 200))
	}
	server.End(trace.WithTimestamp(now))
	return 2
}

func depTarget(r route) string {
	for _, kv := range r.depAttrs {
		if kv.Key == "server.address" {
			return kv.Value.AsString()
		}
	}
	return r.depName
}

func (w *traceWorker) tick(now time.Time) { w.sink.tick(now) }

func (w *traceWorker) close(ctx context.Context) error {
	w.sink.drain()
	if err := w.provider.Shutdown(ctx); err != nil {
		return err
	}
	return w.exporter.Shutdown(ctx)
}
