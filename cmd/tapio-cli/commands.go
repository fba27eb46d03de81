package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/yairfalse/tapio/pkg/impactapi"
)

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newCorrelateCommand(opts *options) *cobra.Command {
	var traceID string
	var everyEvent bool
	cmd := &cobra.Command{
		Use:   "correlate --trace-id ID",
		Short: "Explain the incident a trace belongs to",
		Long: `Prints the incident(s) involving a trace: root cause, business impact, affected users,
time to detection, the event chain and the recommended actions.
Exits 3 when no incident involves the trace.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if traceID == "" {
				return fmt.Errorf("--trace-id is required")
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), opts.timeout)
			defer cancel()
			list, err := opts.client().Incidents(ctx, impactapi.Query{TraceID: traceID, Limit: 1000})
			if err != nil {
				return err
			}
			if len(list.Incidents) == 0 {
				return errNotFound{fmt.Sprintf("no incident involves trace %s", traceID)}
			}
			if opts.json() {
				return writeJSON(cmd.OutOrStdout(), list)
			}
			w := cmd.OutOrStdout()
			for i := range list.Incidents {
				if i > 0 {
					fmt.Fprintln(w, strings.Repeat("─", 72))
				}
				renderIncident(w, &list.Incidents[i], everyEvent)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&traceID, "trace-id", "", "trace id (32 hex digits)")
	cmd.Flags().BoolVar(&everyEvent, "all", false, "print every event of the chain instead of one line per run of like events")
	return cmd
}

func newIncidentsCommand(opts *options) *cobra.Command {
	var q impactapi.Query
	cmd := &cobra.Command{
		Use:   "incidents",
		Short: "List incidents, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), opts.timeout)
			defer cancel()
			list, err := opts.client().Incidents(ctx, q)
			if err != nil {
				return err
			}
			if opts.json() {
				return writeJSON(cmd.OutOrStdout(), list)
			}
			renderTable(cmd.OutOrStdout(), list.Incidents)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&q.TraceID, "trace-id", "", "only incidents involving this trace")
	f.StringVar(&q.Service, "service", "", "only incidents involving this service")
	f.StringVar(&q.Severity, "severity", "", "only incidents of this severity: LOW, MEDIUM, HIGH, CRITICAL")
	f.StringVar(&q.Since, "since", "", "only incidents updated since: an RFC 3339 time or a duration ago such as 1h")
	f.IntVar(&q.Limit, "limit", 50, "at most this many (1–1000)")
	return cmd
}

func newStreamCommand(opts *options) *cobra.Command {
	return &cobra.Command{
		Use:   "stream",
		Short: "Follow new and updated incidents live (Ctrl-C to stop)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := cmd.OutOrStdout()
			if !opts.json() {
				fmt.Fprintf(cmd.ErrOrStderr(), "Following incidents at %s (Ctrl-C to stop)…\n", opts.endpoint)
			}
			return opts.client().Stream(cmd.Context(), func(ev impactapi.StreamEvent, raw []byte) error {
				if opts.json() {
					_, err := fmt.Fprintf(w, "%s\n", raw)
					return err
				}
				_, err := fmt.Fprintln(w, streamLine(ev))
				return err
			})
		},
	}
}

func newHealthCommand(opts *options) *cobra.Command {
	return &cobra.Command{
		Use:   "health",
		Short: "Check that the collector's impact API answers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), opts.timeout)
			defer cancel()
			h, err := opts.client().Health(ctx)
			if err != nil {
				return err
			}
			if opts.json() {
				return writeJSON(cmd.OutOrStdout(), h)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s holds %d incidents\n", h.Status, opts.endpoint, h.Incidents)
			return nil
		},
	}
}
