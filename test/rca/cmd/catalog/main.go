// Command catalog is the RCA suite's Go service: GET /api/items/{id} reads the item from Redis
// (go-redis, traced by redisotel) and its price from nginx (net/http, traced by otelhttp), on the
// OpenTelemetry Go SDK. Spans go over OTLP/gRPC to a TCP endpoint or, for a service inside a
// network namespace of its own, to a Unix socket. Every answer carries X-Trace-Id; the SERVER
// span carries the customer of X-User-Id as user.id.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to serve on")
	redisAddr := flag.String("redis", "", "Redis address (host:port)")
	pricesURL := flag.String("prices", "", "base URL of the price files served by nginx, e.g. http://127.0.0.1:8081/prices")
	dialTimeout := flag.Duration("dial-timeout", 0, "connect timeout towards Redis and nginx; 0 leaves it to the kernel (tcp_syn_retries)")
	otlpEndpoint := flag.String("otlp-endpoint", "", "OTLP/gRPC host:port")
	otlpSocket := flag.String("otlp-socket", "", "OTLP/gRPC Unix socket, instead of -otlp-endpoint")
	service := flag.String("service", "catalog", "service.name")
	flag.Parse()
	if *redisAddr == "" || *pricesURL == "" || (*otlpEndpoint == "") == (*otlpSocket == "") {
		log.Fatal("catalog: -redis, -prices and one of -otlp-endpoint, -otlp-socket are required")
	}
	if err := run(*listen, *redisAddr, *pricesURL, *dialTimeout, *otlpEndpoint, *otlpSocket, *service); err != nil {
		log.Fatalf("catalog: %v", err)
	}
}

func run(listen, redisAddr, pricesURL string, dialTimeout time.Duration, otlpEndpoint, otlpSocket, service string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	provider, err := tracerProvider(ctx, otlpEndpoint, otlpSocket, service)
	if err != nil {
		return err
	}
	otel.SetTracerProvider(provider)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	defer func() {
		flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = provider.Shutdown(flushCtx)
	}()

	dialer := &net.Dialer{Timeout: dialTimeout}
	rdb := redis.NewClient(&redis.Options{
		Addr: redisAddr,
		// Debian's Redis 7.0 does not know the handshake commands go-redis 9.17 sends on every
		// connect (CLIENT SETINFO, CLIENT MAINT_NOTIFICATIONS): each would be a failed CLIENT
		// span of its own before the first request.
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
		// A slow Redis is a latency fault, not an error: wait for the answer.
		ReadTimeout: 10 * time.Second,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		},
	})
	if err := redisotel.InstrumentTracing(rdb); err != nil {
		return err
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DialContext = dialer.DialContext
	prices := &http.Client{Transport: otelhttp.NewTransport(transport), Timeout: 10 * time.Second}

	shop := &catalog{rdb: rdb, prices: prices, pricesURL: pricesURL}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /api/items/{id}", shop.item)
	server := &http.Server{
		Addr:              listen,
		Handler:           otelhttp.NewHandler(withTraceID(mux), "catalog"),
		ReadHeaderTimeout: 5 * time.Second,
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	log.Printf("catalog listening on %s", listen)
	errc := make(chan error, 1)
	go func() { errc <- server.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return server.Shutdown(shutdownCtx)
}

func tracerProvider(ctx context.Context, endpoint, socket, service string) (*sdktrace.TracerProvider, error) {
	var opts []otlptracegrpc.Option
	if socket != "" {
		conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, err
		}
		opts = append(opts, otlptracegrpc.WithGRPCConn(conn))
	} else {
		opts = append(opts, otlptracegrpc.WithEndpoint(endpoint), otlptracegrpc.WithInsecure())
	}
	exporter, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, err
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName(service)))
	if err != nil {
		return nil, err
	}
	// A short batch timeout: the suite measures how fast an incident follows a fault, and the
	// SDK's default of 5 s would be most of it.
	return sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exporter, sdktrace.WithBatchTimeout(200*time.Millisecond)),
		sdktrace.WithResource(res),
	), nil
}

// withTraceID names the trace in the answer and the customer on the SERVER span.
func withTraceID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		span := trace.SpanFromContext(r.Context())
		w.Header().Set("X-Trace-Id", span.SpanContext().TraceID().String())
		if user := r.Header.Get("X-User-Id"); user != "" {
			span.SetAttributes(semconv.UserID(user))
		}
		next.ServeHTTP(w, r)
	})
}

type catalog struct {
	rdb       *redis.Client
	prices    *http.Client
	pricesURL string
}

func (c *catalog) item(w http.ResponseWriter, r *http.Request) {
	// The pattern is "GET /api/items/{id}"; http.route is its path part.
	route := r.Pattern
	if i := strings.IndexByte(route, ' '); i >= 0 {
		route = route[i+1:]
	}
	trace.SpanFromContext(r.Context()).SetAttributes(semconv.HTTPRoute(route))
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || id < 1 {
		http.Error(w, "item id must be a positive integer", http.StatusBadRequest)
		return
	}
	ctx := r.Context()
	key := "item:" + strconv.Itoa(id)
	name, err := c.rdb.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) {
		name = fmt.Sprintf("item %d", id)
		err = c.rdb.Set(ctx, key, name, 0).Err()
	}
	if err != nil {
		failed(w, r, "item cache", err)
		return
	}
	price, err := c.price(ctx, id)
	if err != nil {
		failed(w, r, "price service", err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, "{\"id\":%d,\"name\":%q,\"price\":%s}\n", id, name, price)
}

func (c *catalog) price(ctx context.Context, id int) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/%d.json", c.pricesURL, id%10), nil)
	if err != nil {
		return "", err
	}
	resp, err := c.prices.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s answered %s", req.URL, resp.Status)
	}
	return string(body), nil
}

func failed(w http.ResponseWriter, r *http.Request, dependency string, err error) {
	trace.SpanFromContext(r.Context()).RecordError(err)
	http.Error(w, dependency+": "+err.Error(), http.StatusInternalServerError)
}
