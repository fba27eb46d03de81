// Command checkout is the demo's customer-facing service: POST /api/checkout?user=U&amount=A
// charges through payment. Every request carries the user's id; a failed payment is a failed
// checkout (HTTP 500).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	otellog "go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/yairfalse/tapio/demo/internal/telemetry"
)

type service struct {
	tel     *telemetry.Providers
	payment string
	client  *http.Client
}

func main() {
	listen := flag.String("listen", "127.0.0.1:18080", "address to serve on")
	payment := flag.String("payment", "http://127.0.0.1:18081", "payment service base URL")
	flag.Parse()
	err := telemetry.Serve("checkout", *listen, func(tel *telemetry.Providers) http.Handler {
		s := &service{tel: tel, payment: *payment, client: &http.Client{Timeout: 5 * time.Second}}
		mux := http.NewServeMux()
		mux.HandleFunc("POST /api/checkout", s.checkout)
		return mux
	})
	if err != nil {
		log.Fatalf("checkout: %v", err)
	}
}

func (s *service) checkout(w http.ResponseWriter, r *http.Request) {
	user := r.URL.Query().Get("user")
	amount := r.URL.Query().Get("amount")
	ctx, span := s.tel.Tracer.Start(r.Context(), "POST /api/checkout", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", http.MethodPost), attribute.String("http.route", "/api/checkout"),
			attribute.String("url.path", r.URL.Path), attribute.String("user.id", user)))
	defer span.End()
	// The trace id lets the caller (and the load generator) ask Tapio about this very request.
	w.Header().Set("X-Trace-Id", span.SpanContext().TraceID().String())

	status := http.StatusOK
	if err := s.pay(ctx, user, amount); err != nil {
		status = http.StatusInternalServerError
		s.tel.Error(ctx, "checkout failed: "+err.Error(), otellog.String("user.id", user))
		span.SetStatus(codes.Error, err.Error())
		span.SetAttributes(attribute.String("error.type", "500"))
	}
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	w.WriteHeader(status)
}

func (s *service) pay(ctx context.Context, user, amount string) error {
	target := s.payment + "/pay?" + url.Values{"user": {user}, "amount": {amount}}.Encode()
	ctx, span := s.tel.Tracer.Start(ctx, "POST", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("http.request.method", http.MethodPost), attribute.String("url.full", target)))
	defer span.End()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, nil)
	if err != nil {
		return err
	}
	otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(req.Header))
	resp, err := s.client.Do(req)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		span.SetAttributes(attribute.String("error.type", "transport"))
		return fmt.Errorf("payment unreachable: %w", err)
	}
	resp.Body.Close()
	port, _ := strconv.Atoi(req.URL.Port())
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode),
		attribute.String("server.address", req.URL.Hostname()), attribute.Int("server.port", port))
	if resp.StatusCode >= 500 {
		span.SetStatus(codes.Error, resp.Status)
		span.SetAttributes(attribute.String("error.type", fmt.Sprint(resp.StatusCode)))
		return fmt.Errorf("payment answered %s", resp.Status)
	}
	return nil
}
