package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/mosparo-lb/mosparo-lb/internal/daemon"
)

func cmdRun(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	path := fs.String("config", "/etc/mosparo-lb/mosparo-lb.yaml", "configuration file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return runDaemon(daemon.Options{Path: *path, Version: version}, nil)
}

func cmdCheck(args []string) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	path := fs.String("config", "/etc/mosparo-lb/mosparo-lb.yaml", "configuration file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if _, err := configs.Load(*path); err != nil {
		var ce *configs.Error
		if errors.As(err, &ce) {
			fmt.Fprintln(os.Stderr, ce.Error())
			return fmt.Errorf("%s: %d problem(s)", *path, len(ce.Problems))
		}
		return err
	}
	fmt.Printf("%s: ok\n", *path)
	return nil
}

// runDaemon runs until SIGTERM or SIGINT, reloading on SIGHUP. ready, when
// set, is called once the listeners are bound.
func runDaemon(opts daemon.Options, ready func(*daemon.Daemon)) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	d, err := daemon.New(ctx, opts)
	if err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				_ = d.Reload(ctx) // logged by the daemon; the old config keeps running
			}
		}
	}()
	if ready != nil {
		ready(d)
	}
	return d.Run(ctx)
}
