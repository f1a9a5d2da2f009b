package vip

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/mosparo-lb/mosparo-lb/configs"
)

// Environment of the helper process: the test binary re-executed inside a
// network namespace runs a Manager instead of tests (see netns_test.go).
const (
	envHelperConfig    = "VIP_TEST_HELPER_CONFIG"    // YAML config file to run
	envHelperStatus    = "VIP_TEST_HELPER_STATUS"    // Status() JSON is written here every 20 ms
	envHelperUnhealthy = "VIP_TEST_HELPER_UNHEALTHY" // while this file exists, PoolHealthy is false
	envHelperExhaust   = "VIP_TEST_HELPER_EXHAUST"   // once this file exists, the helper uses up its descriptors
)

func TestMain(m *testing.M) {
	if path := os.Getenv(envHelperConfig); path != "" {
		os.Exit(helperMain(path))
	}
	goleak.VerifyTestMain(m)
}

// helperMain is a stand-in for `mosparo-lb` with only the vip part wired:
// it stops gracefully on SIGTERM or SIGINT.
func helperMain(path string) int {
	logCfg := zap.NewDevelopmentConfig()
	logCfg.Level = zap.NewAtomicLevelAt(zap.InfoLevel)
	logCfg.DisableStacktrace = true
	log, _ := logCfg.Build()
	cfg, err := configs.Load(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	unhealthy := os.Getenv(envHelperUnhealthy)
	mgr, err := New(cfg.VRRP, Options{
		Logger: log.Named("vip"),
		PoolHealthy: func() bool {
			if unhealthy == "" {
				return true
			}
			_, err := os.Stat(unhealthy)
			return err != nil
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if sp := os.Getenv(envHelperStatus); sp != "" {
		go func() {
			for ctx.Err() == nil {
				writeStatus(sp, mgr.Status())
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	if ep := os.Getenv(envHelperExhaust); ep != "" {
		go exhaustWhen(ctx, ep, log)
	}
	err = mgr.Run(ctx)
	if sp := os.Getenv(envHelperStatus); sp != "" {
		writeStatus(sp, mgr.Status())
	}
	if err != nil {
		log.Error("run", zap.Error(err))
		return 1
	}
	return 0
}

// exhaustWhen waits for path to exist, then opens /dev/null until the
// process has no descriptor left (EMFILE), as an LB flooded with
// connections does, and keeps them open until the process exits. The soft
// limit is lowered first, so the loop ends after a few hundred opens
// whatever the hard limit is.
func exhaustWhen(ctx context.Context, path string, log *zap.Logger) {
	for ctx.Err() == nil {
		if _, err := os.Stat(path); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ctx.Err() != nil {
		return
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		log.Error("getrlimit", zap.Error(err))
		return
	}
	lim.Cur = min(lim.Cur, 256)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		log.Error("setrlimit", zap.Error(err))
		return
	}
	var held []*os.File
	for range lim.Cur {
		f, err := os.Open(os.DevNull)
		if err != nil {
			if errors.Is(err, syscall.EMFILE) {
				log.Info("descriptors exhausted", zap.Int("opened", len(held)))
			} else {
				log.Error("exhausting descriptors", zap.Error(err))
			}
			break
		}
		held = append(held, f)
	}
	<-ctx.Done()
	for _, f := range held {
		f.Close()
	}
}

func writeStatus(path string, st []InstanceStatus) {
	b, _ := json.Marshal(st)
	tmp := filepath.Join(filepath.Dir(path), ".status.tmp")
	if os.WriteFile(tmp, b, 0o644) == nil {
		os.Rename(tmp, path)
	}
}
