// Command payment is the demo's payment service: POST /pay charges a user through ledger-db over a
// fresh TCP connection per request. When ledger-db is down the charge fails and so does the request.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"syscall"
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
	tel    *telemetry.Providers
	ledger string
}

func main() {
	listen := flag.String("listen", "127.0.0.1:18081", "address to serve on")
	ledger := flag.String("ledger", "127.0.0.1:15432", "ledger-db address")
	flag.Parse()
	err := telemetry.Serve("payment", *listen, func(tel *telemetry.Providers) http.Handler {
		s := &service{tel: tel, ledger: *ledger}
		return http.HandlerFunc(s.pay)
	})
	if err != nil {
		log.Fatalf("payment: %v", err)
	}
}

func (s *service) pay(w http.ResponseWriter, r *http.Request) {
	ctx := otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	user := r.URL.Query().Get("user")
	amount := r.URL.Query().Get("amount")
	ctx, span := s.tel.Tracer.Start(ctx, "POST /pay", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", http.MethodPost), attribute.String("http.route", "/pay"),
			attribute.String("url.path", r.URL.Path), attribute.String("user.id", user)))
	defer span.End()

	status := http.StatusOK
	if err := s.charge(ctx, user, amount); err != nil {
		status = http.StatusServiceUnavailable
		s.tel.Error(ctx, "charge failed: "+err.Error(), otellog.String("user.id", user))
		span.SetStatus(codes.Error, err.Error())
		span.SetAttributes(attribute.String("error.type", strconv.Itoa(status)))
	}
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	w.WriteHeader(status)
}

// charge records one charge in ledger-db, in a CLIENT span that says where it went.
func (s *service) charge(ctx context.Context, user, amount string) error {
	host, portText, _ := net.SplitHostPort(s.ledger)
	port, _ := strconv.Atoi(portText)
	_, span := s.tel.Tracer.Start(ctx, "CHARGE ledger", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("db.system.name", "ledger-db"), attribute.String("db.operation.name", "CHARGE"),
			attribute.String("server.address", host), attribute.Int("server.port", port),
			attribute.String("network.peer.address", host), attribute.Int("network.peer.port", port)))
	defer span.End()
	err := func() error {
		conn, err := net.DialTimeout("tcp", s.ledger, 2*time.Second)
		if err != nil {
			return err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := fmt.Fprintf(conn, "CHARGE %s %s\n", user, amount); err != nil {
			return err
		}
		reply, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			return fmt.Errorf("ledger-db closed the connection: %w", err)
		}
		if len(reply) < 2 || reply[:2] != "OK" {
			return fmt.Errorf("ledger-db refused the charge: %s", reply)
		}
		return nil
	}()
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		span.SetAttributes(attribute.String("error.type", errorType(err)))
	}
	return err
}

func errorType(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "ECONNREFUSED"
	case errors.Is(err, syscall.ECONNRESET):
		return "ECONNRESET"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	}
	return "ledger_error"
}
