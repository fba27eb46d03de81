package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Serve runs an instrumented HTTP service until SIGINT or SIGTERM: it sets up the SDK for
// service, serves what handler builds on listen, then shuts the server down and flushes the
// telemetry.
func Serve(service, listen string, handler func(*Providers) http.Handler) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tel, err := Setup(ctx, service)
	if err != nil {
		return err
	}
	srv := &http.Server{Addr: listen, Handler: handler(tel), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()
	fmt.Fprintf(os.Stderr, "%s (pid %d) serving %s\n", service, os.Getpid(), listen)
	serveErr := srv.ListenAndServe()
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(serveErr, tel.Shutdown(flushCtx))
}
