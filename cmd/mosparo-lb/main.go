// Command mosparo-lb is a load balancer for clusters of mosparo nodes:
// an HTTP reverse proxy that knows mosparo's routes and health API, with
// VRRPv3 virtual-IP failover between LB hosts.
//
// Usage:
//
//	mosparo-lb run -config FILE         run the load balancer
//	mosparo-lb check -config FILE       validate a configuration
//	mosparo-lb upgrade [-pid-file F]    hand over to the new binary (SIGUSR2)
//	mosparo-lb demo                     run three emulated nodes behind the LB
//	mosparo-lb status [-admin ADDR]     print a running LB's status
//	mosparo-lb node drain|maintenance|ready NAME [-admin ADDR] [-token T]
//	mosparo-lb import-keepalived FILE   convert keepalived.conf vrrp_instance blocks
//	mosparo-lb version
package main

import (
	"fmt"
	"os"
)

// version is set by the Makefile with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "run":
		err = cmdRun(args)
	case "check":
		err = cmdCheck(args)
	case "upgrade":
		err = cmdUpgrade(args)
	case "demo":
		err = cmdDemo(args)
	case "status":
		err = cmdStatus(args)
	case "node":
		err = cmdNode(args)
	case "import-keepalived":
		err = cmdImportKeepalived(args)
	case "version", "-version", "--version":
		fmt.Println("mosparo-lb", version)
	case "help", "-h", "-help", "--help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "mosparo-lb: unknown command %q\n\n", cmd)
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mosparo-lb:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: mosparo-lb <command> [flags]

commands:
  run -config FILE [-pid-file F] [-upgrade-timeout D]
                          run the load balancer (SIGHUP reloads, SIGTERM stops gracefully,
                          SIGUSR2 starts the binary at the same path and hands the sockets over)
  check -config FILE      validate a configuration file and exit
  upgrade [-pid-file F]   SIGUSR2 to the running LB, wait until the new process took over
  demo                    run three emulated mosparo nodes behind the LB on 127.0.0.1:8080
  status [-admin ADDR]    print the status of a running LB
  node drain|maintenance|ready NAME [-admin ADDR] [-token TOKEN]
                          change a node's operator state on a running LB
  import-keepalived FILE  print the vrrp: section for a keepalived.conf
  version                 print the version
`)
}
