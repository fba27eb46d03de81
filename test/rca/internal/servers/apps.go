package servers

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/yairfalse/tapio/test/rca/internal/proc"
)

// Telemetry is where the services send their spans.
type Telemetry struct {
	// OTLPHTTP is the collector's OTLP/HTTP base URL (the JavaScript SDK's exporter).
	OTLPHTTP string
	// OTLPGRPC is the collector's OTLP/gRPC host:port (the Go SDK's exporter).
	OTLPGRPC string
	// OTLPSocket is the collector's OTLP/gRPC Unix socket, for a service in a network namespace.
	OTLPSocket string
}

// App is a running instrumented service.
type App struct {
	Service string
	Port    int
	Proc    *proc.Proc
}

// BaseURL is where the service answers.
func (a *App) BaseURL() string { return fmt.Sprintf("http://127.0.0.1:%d", a.Port) }

// OrdersOptions configures the JavaScript orders service.
type OrdersOptions struct {
	Name     string
	Port     int
	JSDir    string
	Postgres *Postgres
}

// StartOrders starts the Express service under the official OpenTelemetry auto-instrumentation.
func StartOrders(ctx context.Context, env Env, tel Telemetry, o OrdersOptions) (*App, error) {
	if o.Port == 0 {
		return nil, errNoPort
	}
	p, err := proc.Start(proc.Spec{
		Name: o.Name,
		Argv: []string{"node", "--require", filepath.Join(o.JSDir, "tracing.js"), filepath.Join(o.JSDir, "orders.js")},
		Dir:  o.JSDir,
		Env: []string{
			"ORDERS_PORT=" + strconv.Itoa(o.Port),
			"PGHOST=127.0.0.1", "PGPORT=" + strconv.Itoa(o.Postgres.Port), "PGUSER=" + pgUser, "PGDATABASE=postgres",
			"PGAPPNAME=orders",
			"OTEL_SERVICE_NAME=orders",
			"OTEL_EXPORTER_OTLP_ENDPOINT=" + tel.OTLPHTTP,
			// The SDK's default is 5 s; the suite measures how soon an incident follows a fault.
			"OTEL_BSP_SCHEDULE_DELAY=200",
			"OTEL_METRICS_EXPORTER=none", "OTEL_LOGS_EXPORTER=none",
		},
		LogDir: env.LogDir,
	})
	if err != nil {
		return nil, err
	}
	env.Cleanup.Defer("orders service "+o.Name, func() error { p.Stop(syscall.SIGTERM, 10*time.Second); return nil })
	if err := WaitListening(ctx, p.Pid(), o.Port, p.Done(), 30*time.Second); err != nil {
		return nil, fmt.Errorf("orders %s: %w: %s", o.Name, err, p.LogTail(600))
	}
	return &App{Service: "orders", Port: o.Port, Proc: p}, nil
}

// CatalogOptions configures the Go catalog service.
type CatalogOptions struct {
	Name    string
	Port    int
	Binary  string
	Redis   string // host:port
	Prices  string // base URL
	Netns   string
	Timeout time.Duration // connect timeout towards its dependencies; 0: the kernel's
}

// StartCatalog starts the Go service; in a network namespace it sends spans over the Unix socket.
func StartCatalog(ctx context.Context, env Env, tel Telemetry, o CatalogOptions) (*App, error) {
	if o.Port == 0 {
		return nil, errNoPort
	}
	argv := []string{o.Binary, "-listen", fmt.Sprintf("127.0.0.1:%d", o.Port), "-redis", o.Redis, "-prices", o.Prices,
		"-dial-timeout", o.Timeout.String()}
	if o.Netns != "" {
		argv = append(argv, "-otlp-socket", tel.OTLPSocket)
	} else {
		argv = append(argv, "-otlp-endpoint", tel.OTLPGRPC)
	}
	p, err := proc.Start(proc.Spec{Name: o.Name, Argv: inNetns(o.Netns, argv), LogDir: env.LogDir})
	if err != nil {
		return nil, err
	}
	env.Cleanup.Defer("catalog service "+o.Name, func() error { p.Stop(syscall.SIGTERM, 10*time.Second); return nil })
	if err := WaitListening(ctx, p.Pid(), o.Port, p.Done(), 20*time.Second); err != nil {
		return nil, fmt.Errorf("catalog %s: %w: %s", o.Name, err, p.LogTail(600))
	}
	return &App{Service: "catalog", Port: o.Port, Proc: p}, nil
}
