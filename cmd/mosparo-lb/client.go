package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/mosparo-lb/mosparo-lb/internal/keepalivedconf"
)

func cmdStatus(args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	addr := fs.String("admin", "127.0.0.1:9090", "admin listener of the running LB")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return adminCall(http.MethodGet, *addr, "/status", "")
}

func cmdNode(args []string) error {
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	addr := fs.String("admin", "127.0.0.1:9090", "admin listener of the running LB")
	token := fs.String("token", os.Getenv("MOSPARO_LB_ADMIN_TOKEN"), "admin token (default $MOSPARO_LB_ADMIN_TOKEN)")
	if len(args) < 2 {
		return fmt.Errorf("usage: mosparo-lb node drain|maintenance|ready NAME [-admin ADDR] [-token TOKEN]")
	}
	action, name := args[0], args[1]
	if err := fs.Parse(args[2:]); err != nil {
		return err
	}
	switch action {
	case "drain", "maintenance", "ready":
	default:
		return fmt.Errorf("node: action must be drain, maintenance or ready, got %q", action)
	}
	return adminCall(http.MethodPost, *addr, "/nodes/"+name+"/"+action, *token)
}

func adminCall(method, addr, path, token string) error {
	req, err := http.NewRequest(method, "http://"+addr+path, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("admin API at %s: %w", addr, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	os.Stdout.Write(b)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("admin API answered %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}

func cmdImportKeepalived(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: mosparo-lb import-keepalived /etc/keepalived/keepalived.conf")
	}
	f, err := os.Open(args[0])
	if err != nil {
		return err
	}
	defer f.Close()
	out, warnings, err := keepalivedconf.Import(f)
	if err != nil {
		return fmt.Errorf("import-keepalived: %w", err)
	}
	for _, w := range warnings {
		fmt.Fprintln(os.Stderr, "warning:", w)
	}
	_, err = os.Stdout.Write(out)
	return err
}
