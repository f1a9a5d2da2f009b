// Command mosparo-node runs one emulated mosparo node (internal/mosparoemu) until SIGINT or
// SIGTERM, for benchmarks and manual tests outside the load balancer's process.
//
//	mosparo-node -addr 127.0.0.1:9001 -name n1
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"go.uber.org/zap"

	"github.com/mosparo-lb/mosparo-lb/internal/mosparoemu"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mosparo-node:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:9001", "listen address")
	name := flag.String("name", "n1", "node name (X-Mosparo-Node header)")
	health := flag.String("health", "connected", "health state: connected, db-failed, not-configured, update-not-finished, bypassed, broken")
	allow := flag.String("health-allow-list", "127.0.0.1,::1", `MOSPARO_HEALTH_ALLOW_LIST ("" allows everyone)`)
	trusted := flag.String("trusted-proxies", "127.0.0.1,REMOTE_ADDR", "TRUSTED_PROXIES (comma-separated)")
	cronKey := flag.String("cron-key", mosparoemu.DemoCronKey, "webCronJobSecretKey")
	delay := flag.Duration("delay", 0, "delay every answer by this much")
	verbose := flag.Bool("v", false, "log at debug level")
	flag.Parse()

	h, err := parseHealth(*health)
	if err != nil {
		return err
	}
	cfg := zap.NewDevelopmentConfig()
	if !*verbose {
		cfg.Level = zap.NewAtomicLevelAt(zap.InfoLevel)
	}
	logger, err := cfg.Build()
	if err != nil {
		return err
	}
	defer func() { _ = logger.Sync() }()

	opts := mosparoemu.Options{
		Name:            *name,
		Addr:            *addr,
		Logger:          logger,
		CronKey:         *cronKey,
		HealthAllowList: *allow,
		AllowAllHealth:  *allow == "",
		TrustedProxies:  strings.Split(*trusted, ","),
	}
	node, err := mosparoemu.Start(opts)
	if err != nil {
		return err
	}
	node.SetHealth(h)
	node.SetDelay(*delay)
	logger.Sugar().Infow("mosparo node emulator running", "url", node.URL(), "name", node.Name(), "health", h.String())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	return node.Close()
}

func parseHealth(s string) (mosparoemu.Health, error) {
	for h := mosparoemu.Connected; h <= mosparoemu.Broken; h++ {
		if h.String() == s {
			return h, nil
		}
	}
	return 0, fmt.Errorf("unknown health state %q", s)
}
