// Command loadgen offers load to an OTLP/gRPC endpoint as applications on the OpenTelemetry Go
// SDK would, and reports (as JSON on stdout) what it sent, what failed and how long each Export
// call took. With -mix refused_connects it is instead a process whose connects to a closed
// loopback port are refused, over and over, for the ebpf receiver to see.
//
//	loadgen -endpoint 127.0.0.1:4317 -mix storm -rate 10000 -duration 15s -warmup 3s
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/yairfalse/tapio/test/load/internal/gen"
)

func main() {
	var cfg gen.Config
	flag.StringVar(&cfg.Endpoint, "endpoint", "127.0.0.1:4317", "OTLP/gRPC endpoint, host:port; with -mix refused_connects the closed port to connect to")
	flag.StringVar(&cfg.Mix, "mix", gen.MixHealthy, "healthy, storm, errorlogs or refused_connects")
	flag.Float64Var(&cfg.ErrorFraction, "error-fraction", -1, "fraction of failing requests (healthy) or ERROR lines (errorlogs); default: the mix's")
	flag.Float64Var(&cfg.Rate, "rate", 0, "items (spans, log records, connects) per second from all workers; 0 = unlimited")
	flag.DurationVar(&cfg.Warmup, "warmup", 3*time.Second, "load before the measuring window, not reported")
	flag.DurationVar(&cfg.Duration, "duration", 15*time.Second, "measuring window")
	flag.IntVar(&cfg.Workers, "workers", 4, "application instances, each with its own SDK provider and connection")
	flag.IntVar(&cfg.BatchSize, "batch", 512, "items per Export call")
	flag.BoolVar(&cfg.OpenLoop, "open-loop", false, "send each batch without waiting for the previous Export to answer")
	flag.IntVar(&cfg.MaxInFlight, "max-in-flight", 64, "open loop: Export calls waiting per worker before batches are shed (and counted)")
	flag.DurationVar(&cfg.ExportTimeout, "export-timeout", 10*time.Second, "bound on one Export call")
	raw := flag.Bool("raw", false, "build the OTLP messages directly instead of through the SDK (traces only; for the flood)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var res gen.Result
	var err error
	if cfg.Mix == "refused_connects" {
		var addr netip.AddrPort
		addr, err = netip.ParseAddrPort(cfg.Endpoint)
		if err == nil {
			res, err = gen.RunConnects(ctx, gen.ConnectConfig{Addr: addr, Rate: cfg.Rate, Warmup: cfg.Warmup, Duration: cfg.Duration, Workers: cfg.Workers})
		}
	} else {
		if *raw {
			res, err = gen.RunRaw(ctx, cfg)
		} else {
			res, err = gen.Run(ctx, cfg)
		}
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if encErr := enc.Encode(res); encErr != nil && err == nil {
		err = encErr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}
