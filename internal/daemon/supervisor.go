package daemon

import (
	"context"
	"fmt"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
)

// supervisor runs every long-running part of the daemon under one
// errgroup with one failure policy (issue 13, defect 3): a part is stopped
// only by its stop function; one that returns on its own, with or without
// an error, ends the supervisor's context, and Run then stops the process
// (VIP handed over first) so that systemd restarts it. Nothing is left
// half running and only logged.
type supervisor struct {
	g   *errgroup.Group
	ctx context.Context // done when a part failed or Run is stopping
	log *zap.Logger
}

func newSupervisor(ctx context.Context, log *zap.Logger) *supervisor {
	g, gctx := errgroup.WithContext(ctx)
	return &supervisor{g: g, ctx: gctx, log: log}
}

// start runs f in its own child context; the returned stop cancels it and
// waits until f has returned. stop may be called more than once.
func (s *supervisor) start(name string, f func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(s.ctx)
	done := make(chan struct{})
	s.g.Go(func() error {
		defer close(done)
		err := f(ctx)
		if ctx.Err() != nil {
			return nil // asked to stop, or the whole daemon stops
		}
		if err == nil {
			err = fmt.Errorf("stopped unasked")
		}
		s.log.Error("component stopped", zap.String("component", name), zap.Error(err))
		return fmt.Errorf("%s: %w", name, err)
	})
	return func() { cancel(); <-done }
}

// wait returns the first failure once every part has returned.
func (s *supervisor) wait() error { return s.g.Wait() }
