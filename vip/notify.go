package vip

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// NotifyConfig are an instance's hooks (keepalived's notify, notify_master...).
type NotifyConfig struct {
	Script                      string // gets INSTANCE <name> <STATE> <priority>
	Master, Backup, Fault, Stop string // no extra arguments
	Timeout                     time.Duration
}

// notifyStateName maps a state to keepalived's notify word (FACTS 2).
func notifyStateName(s State) string {
	if s == Initialize {
		return "STOP"
	}
	return s.String()
}

// notifier runs hooks one at a time, in order, on its own goroutine, so the
// state machine never waits for a script. When scripts fall behind, the
// oldest queued notifications are dropped (and logged): the latest state
// is what matters.
type notifier struct {
	name string
	cfg  NotifyConfig
	log  *zap.Logger

	mu      sync.Mutex
	queue   [][]string
	wake    chan struct{}
	dropped int
}

const notifyQueueMax = 16

func newNotifier(name string, cfg NotifyConfig, log *zap.Logger) *notifier {
	return &notifier{name: name, cfg: cfg, log: log, wake: make(chan struct{}, 1)}
}

// notify queues the hooks for state s at priority prio; it never blocks.
func (n *notifier) notify(s State, prio uint8) {
	var cmds [][]string
	if n.cfg.Script != "" {
		cmds = append(cmds, append(strings.Fields(n.cfg.Script), "INSTANCE", n.name, notifyStateName(s), strconv.Itoa(int(prio))))
	}
	per := map[State]string{Master: n.cfg.Master, Backup: n.cfg.Backup, Fault: n.cfg.Fault, Initialize: n.cfg.Stop}[s]
	if per != "" {
		cmds = append(cmds, strings.Fields(per))
	}
	if len(cmds) == 0 {
		return
	}
	n.mu.Lock()
	n.queue = append(n.queue, cmds...)
	if over := len(n.queue) - notifyQueueMax; over > 0 {
		n.queue = n.queue[over:]
		n.dropped += over
	}
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// run executes queued hooks until ctx ends, then drains what is queued
// (the STOP hook is queued just before) with each hook's own timeout.
func (n *notifier) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			n.drain()
			return
		case <-n.wake:
			n.drain()
		}
	}
}

func (n *notifier) drain() {
	for {
		n.mu.Lock()
		if n.dropped > 0 {
			n.log.Warn("notify hooks fell behind; dropped the oldest", zap.Int("dropped", n.dropped))
			n.dropped = 0
		}
		if len(n.queue) == 0 {
			n.mu.Unlock()
			return
		}
		cmd := n.queue[0]
		n.queue = n.queue[1:]
		n.mu.Unlock()
		n.exec(cmd)
	}
}

func (n *notifier) exec(argv []string) {
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.Timeout)
	defer cancel()
	c := exec.CommandContext(ctx, argv[0], argv[1:]...)
	c.WaitDelay = time.Second // do not hang on a grandchild holding the pipes
	start := time.Now()
	out, err := c.CombinedOutput()
	fields := []zap.Field{zap.Strings("command", argv), zap.Duration("took", time.Since(start))}
	if len(out) > 0 {
		if len(out) > 512 {
			out = out[:512]
		}
		fields = append(fields, zap.ByteString("output", out))
	}
	switch {
	case ctx.Err() != nil:
		n.log.Warn("notify hook killed after timeout", append(fields, zap.Duration("timeout", n.cfg.Timeout))...)
	case err != nil:
		n.log.Warn("notify hook failed", append(fields, zap.Error(err))...)
	default:
		n.log.Debug("notify hook ran", fields...)
	}
}
