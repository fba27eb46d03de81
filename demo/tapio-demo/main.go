// Command tapio-demo tells the README's story for real (`make demo`): it starts otelcol-tapio
// and the checkout → payment → ledger-db services, drives customers through checkout until the
// kernel OOM-kills ledger-db, then asks tapio-cli what happened to one of the failed checkouts.
// It stops everything it started, also on Ctrl-C.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/yairfalse/tapio/demo/scenario"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "tapio-demo:", err)
		os.Exit(1)
	}
}

func run() error {
	bin := flag.String("bin", "_build", "directory holding otelcol-tapio, tapio-cli and the demo services")
	var configs []string
	flag.Func("config", "collector config; repeat to merge several (default: distributions/standalone/config.yaml, then demo/shop.yaml)", func(v string) error {
		configs = append(configs, v)
		return nil
	})
	api := flag.String("api", "http://127.0.0.1:8765", "impact API tapio-cli talks to")
	flag.Parse()
	if len(configs) == 0 {
		configs = []string{"distributions/standalone/config.yaml", "demo/shop.yaml"}
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root: the ebpf receiver loads kernel programs and ledger-db runs in a memory cgroup")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	dataDir, err := os.MkdirTemp("", "tapio-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dataDir)
	logFile, err := os.Create(filepath.Join(dataDir, "processes.log"))
	if err != nil {
		return err
	}
	opts := scenario.Options{
		Collector:         filepath.Join(*bin, "otelcol-tapio"),
		CollectorConfigs:  configs,
		CollectorEnv:      []string{"TAPIO_DATA_DIR=" + dataDir},
		HealthURL:         "http://127.0.0.1:13133/",
		OTLPEndpoint:      "127.0.0.1:4317",
		Checkout:          filepath.Join(*bin, "demo", "checkout"),
		Payment:           filepath.Join(*bin, "demo", "payment"),
		LedgerDB:          filepath.Join(*bin, "demo", "ledger-db"),
		LedgerLimitBytes:  64 << 20,
		LeakBytes:         1 << 20,
		Users:             40,
		Rate:              20,
		FailuresAfterKill: 15,
		Log:               logFile,
		Progress: func(p scenario.Phase, detail string) {
			fmt.Printf("[%s] %-22s %s\n", time.Now().Format("15:04:05"), p, detail)
		},
	}
	stack, err := scenario.Start(ctx, opts)
	defer stack.Stop()
	if err != nil {
		return err
	}
	res, err := stack.Drive(ctx, opts)
	if err != nil {
		return err
	}
	if len(res.Failures) == 0 {
		return fmt.Errorf("no checkout failed")
	}
	traceID := res.Failures[0].TraceID
	fmt.Printf("\nThe load generator saw %d failed checkouts from %d distinct customers.\n", len(res.Failures), len(res.FailedUsers))
	fmt.Printf("Asking Tapio about the first one: tapio-cli correlate --trace-id %s\n\n", traceID)

	cli := filepath.Join(*bin, "tapio-cli")
	deadline := time.Now().Add(60 * time.Second)
	for {
		cmd := exec.CommandContext(ctx, cli, "correlate", "--trace-id", traceID, "--endpoint", *api)
		out, err := cmd.CombinedOutput()
		if err == nil {
			os.Stdout.Write(out)
			fmt.Printf("\nIncident served %s after the OOM kill was observed.\n", time.Since(res.KilledAt).Round(time.Millisecond))
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			os.Stdout.Write(out)
			return fmt.Errorf("no incident for trace %s: %v", traceID, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
