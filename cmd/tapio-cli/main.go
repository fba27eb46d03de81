// Command tapio-cli reads incidents from the impact exporter of an otelcol-tapio collector.
//
// Exit codes: 0 success; 1 error (bad usage, unexpected answer); 2 the collector is not
// reachable; 3 not found (no incident for the trace); 4 the collector refused the credentials.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/yairfalse/tapio/pkg/impactapi"
)

// Exit codes.
const (
	exitOK           = 0
	exitError        = 1
	exitUnreachable  = 2
	exitNotFound     = 3
	exitUnauthorized = 4
)

// Environment variables that stand in for --endpoint and --token.
const (
	envEndpoint = "TAPIO_ENDPOINT"
	envToken    = "TAPIO_TOKEN"
)

// errNotFound ends a command that found nothing; it maps to exitNotFound.
type errNotFound struct{ msg string }

func (e errNotFound) Error() string { return e.msg }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// options are the flags every command shares.
type options struct {
	endpoint string
	token    string
	output   string
	timeout  time.Duration
}

func (o *options) client() *impactapi.Client {
	return &impactapi.Client{Endpoint: o.endpoint, Token: o.token}
}

func (o *options) json() bool { return o.output == "json" }

// run executes the command line and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	opts := &options{}
	root := newRootCommand(opts, getenv)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var nf errNotFound
	var unreachable *impactapi.UnreachableError
	switch {
	case errors.As(err, &nf):
		fmt.Fprintln(stderr, err)
		return exitNotFound
	case errors.As(err, &unreachable):
		fmt.Fprintf(stderr, "%v\nIs otelcol-tapio running with the impact exporter? Point to it with --endpoint or %s.\n", err, envEndpoint)
		return exitUnreachable
	case impactapi.IsUnauthorized(err):
		fmt.Fprintf(stderr, "%v\nPass the collector's bearer token with --token or %s.\n", err, envToken)
		return exitUnauthorized
	case impactapi.IsNotFound(err):
		fmt.Fprintln(stderr, err)
		return exitNotFound
	case errors.Is(err, context.Canceled):
		return exitOK // interrupted by the user
	}
	fmt.Fprintln(stderr, "error:", err)
	return exitError
}

func newRootCommand(opts *options, getenv func(string) string) *cobra.Command {
	root := &cobra.Command{
		Use:   "tapio-cli",
		Short: "Read explained incidents from an otelcol-tapio collector",
		Long: `tapio-cli reads the incidents that the impact exporter of an otelcol-tapio collector
scored and stored: why it failed, what it costs, what to do.

Exit codes: 0 success, 1 error, 2 collector not reachable, 3 not found, 4 credentials refused.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if opts.output != "text" && opts.output != "json" {
				return fmt.Errorf("--output must be text or json, got %q", opts.output)
			}
			return nil
		},
	}
	endpoint := getenv(envEndpoint)
	if endpoint == "" {
		endpoint = impactapi.DefaultEndpoint
	}
	pf := root.PersistentFlags()
	pf.StringVar(&opts.endpoint, "endpoint", endpoint, "impact exporter API base URL (env "+envEndpoint+")")
	pf.StringVar(&opts.token, "token", getenv(envToken), "bearer token, when the API requires one (env "+envToken+")")
	pf.StringVarP(&opts.output, "output", "o", "text", "output format: text or json")
	pf.DurationVar(&opts.timeout, "timeout", 10*time.Second, "give up on a request after this long (not on stream)")

	root.AddCommand(newCorrelateCommand(opts), newIncidentsCommand(opts), newStreamCommand(opts), newHealthCommand(opts))
	return root
}
