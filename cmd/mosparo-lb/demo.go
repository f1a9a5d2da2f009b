package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/mosparo-lb/mosparo-lb/internal/daemon"
	"github.com/mosparo-lb/mosparo-lb/internal/mosparoemu"
)

// demoNodes are the addresses configs/demo.yaml balances over.
var demoNodes = []struct{ name, addr string }{
	{"demo1", "127.0.0.1:9081"},
	{"demo2", "127.0.0.1:9082"},
	{"demo3", "127.0.0.1:9083"},
}

func cmdDemo(args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		return err
	}
	// One shared database, like a real cluster's: a submit token issued by
	// one node is known to the others (FACTS 2.1).
	db := mosparoemu.NewDatabase()
	for _, dn := range demoNodes {
		n, err := mosparoemu.Start(mosparoemu.Options{Name: dn.name, Addr: dn.addr, Database: db})
		if err != nil {
			return fmt.Errorf("demo: start emulated node %s: %w", dn.name, err)
		}
		defer n.Close()
	}
	opts := daemon.Options{Source: configs.Demo(), Name: "demo.yaml (embedded)", Version: version}
	return runDaemon(opts, runOptions{upgradeTimeout: time.Minute}, func(d *daemon.Daemon) { printDemo(d) })
}

func printDemo(d *daemon.Daemon) {
	p := mosparoemu.DemoProject()
	lb := "http://" + d.Addrs()[0]
	fmt.Printf(`
mosparo-lb demo: three emulated mosparo nodes (127.0.0.1:9081-9083) behind %s
admin API: http://%s/status

Try:
  curl -i %s/api/v1/health/check
  curl -i -X POST -d 'publicKey=%s&pageTitle=Demo&pageUrl=https://example.com/' %s/api/v1/frontend/request-submit-token
  curl -i %s/resources/%s.css
  curl -s http://%s/status
  mosparo-lb node drain demo2 -admin %s
Stop with Ctrl-C.

`, lb, d.AdminAddr(), lb, p.PublicKey, lb, lb, p.UUID, d.AdminAddr(), d.AdminAddr())
}
