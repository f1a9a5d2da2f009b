package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/mosparo-lb/mosparo-lb/internal/daemon"
	"github.com/mosparo-lb/mosparo-lb/internal/handoff"
	"go.uber.org/zap"
)

// defaultPIDFile is where the systemd unit has `run` write its PID and
// where `upgrade` looks for it.
const defaultPIDFile = "/run/mosparo-lb/mosparo-lb.pid"

// runOptions are the process-level settings of `run` (not configuration:
// they concern the process, not the load balancer).
type runOptions struct {
	pidFile        string        // "" writes none
	upgradeTimeout time.Duration // bound on a SIGUSR2 upgrade's wait for the new process
}

func cmdRun(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	path := fs.String("config", "/etc/mosparo-lb/mosparo-lb.yaml", "configuration file")
	var ro runOptions
	fs.StringVar(&ro.pidFile, "pid-file", "", "write the PID here (mosparo-lb upgrade reads it); empty writes none")
	fs.DurationVar(&ro.upgradeTimeout, "upgrade-timeout", time.Minute, "how long a SIGUSR2 upgrade waits for the new process to be ready")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return runDaemon(daemon.Options{Path: *path, Version: version}, ro, nil)
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

// runDaemon runs until SIGTERM or SIGINT, reloading on SIGHUP and handing
// over to a new binary on SIGUSR2. Listening sockets passed by systemd or an
// upgrading parent are adopted (internal/handoff). ready, when set, is
// called once the listeners are bound.
func runDaemon(opts daemon.Options, ro runOptions, ready func(*daemon.Daemon)) error {
	// Recorded now: once a package replaced the file, /proc/self/exe names
	// the deleted old one.
	exe, exeErr := os.Executable()
	socks, inheritErr := handoff.Inherit(handoff.OSProcess())
	if inheritErr != nil && !errors.Is(inheritErr, handoff.ErrOtherProcess) {
		return inheritErr
	}
	sigCtx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// Caught from the start: SIGUSR2's default action would end the process.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	// An upgrade ends this process like SIGTERM does, after the new one is ready.
	ctx, handedOver := context.WithCancel(sigCtx)
	defer handedOver()
	opts.Listen = socks.Listen
	opts.ListenNamed = socks.ListenNamed
	if socks.Source() == handoff.Upgrade {
		opts.Handover = &parentHandover{socks: socks, pidFile: ro.pidFile}
	}
	d, err := daemon.New(ctx, opts)
	if err != nil {
		return err
	}
	log := d.Logger()
	if h, ok := opts.Handover.(*parentHandover); ok {
		h.log = log
	}
	if inheritErr != nil {
		log.Warn("socket variables ignored", zap.Error(inheritErr))
	}
	if err := socks.Unclaimed(); err != nil {
		return err
	}
	if socks.Source() != handoff.None {
		log.Info("listening sockets inherited", zap.Stringer("from", socks.Source()), zap.Strings("sockets", socks.Inherited()))
	}
	up := &upgrader{socks: socks, log: log.Named("upgrade"), exe: exe, exeErr: exeErr, args: os.Args[1:],
		configPath: opts.Path, timeout: ro.upgradeTimeout, pidFile: ro.pidFile, vrrp: d, handedOver: handedOver}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-sigs:
				if s == syscall.SIGUSR2 {
					up.run(ctx)
				} else {
					_ = d.Reload(ctx) // logged by the daemon; the old config keeps running
				}
			}
		}
	}()
	if ready != nil {
		ready(d)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- d.Run(ctx) }()
	// The listeners are bound and Run starts serving them: a parent that
	// started us may stop accepting (connections queue in the shared
	// sockets' backlog until one of us accepts them).
	if err := socks.ReportReady(); err != nil {
		log.Error("upgrade: ready report not delivered; the parent will stop us", zap.Error(err))
	}
	if opts.Handover == nil { // else parentHandover writes it once the parent let go
		if err := writePIDFile(ro.pidFile, os.Getpid()); err != nil {
			log.Warn("pid file not written", zap.String("path", ro.pidFile), zap.Error(err))
		}
	}
	err = <-runErr
	if !up.done.Load() {
		// After a handover the file is the new process's to write.
		removePIDFile(ro.pidFile, os.Getpid())
	}
	return err
}

// parentHandover is the new process's side of the VRRP handover, over the
// conversation with the upgrading parent (daemon.VRRPHandover). Once the
// parent let go (or went away), this process writes the PID file: until
// then the upgrade may still fail and the parent stay.
type parentHandover struct {
	socks   *handoff.Sockets
	pidFile string
	log     *zap.Logger // set before Run starts
}

func (p *parentHandover) States(ctx context.Context) ([]byte, error) {
	return p.socks.ReceiveHandover(ctx)
}

func (p *parentHandover) Answer(ctx context.Context, answer []byte) error {
	err := p.socks.AnswerHandover(answer)
	if err == nil {
		err = p.socks.AwaitCommit(ctx)
	}
	if ctx.Err() != nil {
		return err
	}
	if perr := writePIDFile(p.pidFile, os.Getpid()); perr != nil {
		p.log.Warn("pid file not written", zap.String("path", p.pidFile), zap.Error(perr))
	}
	return err
}
