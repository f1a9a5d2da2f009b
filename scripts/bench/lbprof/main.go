// Command lbprof runs the mosparo-lb daemon, the same code as `mosparo-lb run`,
// while writing a CPU profile, so scripts/bench.sh can profile the proxy under
// load (BENCH_PROFILE) without a profiling hook in the product binary.
//
//	lbprof -config bench.yaml -cpuprofile cpu.pprof
//	go tool pprof -top lbprof cpu.pprof
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/mosparo-lb/mosparo-lb/internal/daemon"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "lbprof:", err)
		os.Exit(1)
	}
}

func run() error {
	config := flag.String("config", "", "mosparo-lb configuration file")
	cpu := flag.String("cpuprofile", "", "write a CPU profile here until SIGTERM")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	d, err := daemon.New(ctx, daemon.Options{Path: *config, Version: "lbprof"})
	if err != nil {
		return err
	}
	if *cpu != "" {
		f, err := os.Create(*cpu)
		if err != nil {
			return err
		}
		defer func() { _ = f.Close() }()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	return d.Run(ctx)
}
