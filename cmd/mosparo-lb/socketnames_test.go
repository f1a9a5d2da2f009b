package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// activateByName starts the binary the way systemd's socket activation
// does, with the real systemd-socket-activate: it listens on addrs, passes
// them as fds 3, 4, … named names, and execs the binary at the first
// connection. listen is the configuration's listen: section.
func activateByName(t *testing.T, listen string, addrs, names []string) (cmd *exec.Cmd, done <-chan error, logs func() string) {
	t.Helper()
	tool, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		t.Skip("needs systemd-socket-activate (Debian package systemd)")
	}
	cfg := handoffSetup(t, addrs[0])
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	first := fmt.Sprintf("listen: [{address: %q}]", addrs[0])
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(b), first, "listen: "+listen, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--fdname=" + strings.Join(names, ":")}
	for _, a := range addrs {
		args = append(args, "-l", a)
	}
	args = append(args, buildBinary(t), "run", "-config", cfg)
	cmd = exec.Command(tool, args...)
	out, logs := logFile(t)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ch := make(chan error, 1)
	go func() { ch <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	// Connections before the tool listens would be refused, not start us.
	for _, a := range addrs {
		waitLog(t, logs, "Listening on "+a+" as")
	}
	return cmd, ch, logs
}

// curl fetches url with the real curl and returns the HTTP status.
func curl(t *testing.T, url string) string {
	t.Helper()
	out, _ := exec.Command("curl", "-s", "-o", "/dev/null", "-m", "20", "-w", "%{http_code}", url).Output()
	return string(out)
}

// TestSocketActivationByName: systemd passes two sockets in the other
// order than listen: lists them; each entry takes its socket by name
// (FileDescriptorName=, LISTEN_FDNAMES), and both serve through curl.
func TestSocketActivationByName(t *testing.T) {
	web, api := freeAddr(t), freeAddr(t)
	listen := fmt.Sprintf("[{address: %q, name: web}, {address: %q, name: api}]", web, api)
	cmd, done, logs := activateByName(t, listen, []string{api, web}, []string{"api", "web"})
	for _, a := range []string{web, api} {
		if code := curl(t, "http://"+a+"/login"); code != "200" {
			t.Fatalf("curl http://%s/login = %q, want 200; log:\n%s", a, code, logs())
		}
	}
	want := fmt.Sprintf(`"from":"systemd","sockets":["fd 3 (%s, name \"api\")","fd 4 (%s, name \"web\")"]`, api, web)
	if !strings.Contains(logs(), want) {
		t.Errorf("log lacks %s:\n%s", want, logs())
	}
	cmd.Process.Signal(syscall.SIGTERM)
	waitExit(t, cmd, done, logs)
}

// TestSocketActivationNameMismatch: a name that systemd gave a socket on
// another address, or did not pass at all, stops the start with a message
// saying which and what to change.
func TestSocketActivationNameMismatch(t *testing.T) {
	tests := []struct {
		name   string
		listen func(web, api string) string
		want   string
	}{
		{"names swapped", func(web, api string) string {
			return fmt.Sprintf("[{address: %q, name: api}, {address: %q, name: web}]", web, api)
		}, `wants the socket named "api", but fd 3 ({api}, name "api") listens elsewhere`},
		{"name not passed", func(web, api string) string {
			return fmt.Sprintf("[{address: %q, name: public}, {address: %q, name: api}]", web, api)
		}, `wants the socket named "public", but systemd passed none of that name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			web, api := freeAddr(t), freeAddr(t)
			_, done, logs := activateByName(t, tt.listen(web, api), []string{api, web}, []string{"api", "web"})
			curl(t, "http://"+web+"/login") // the first connection starts the binary
			select {
			case err := <-done:
				want := strings.NewReplacer("{web}", web, "{api}", api).Replace(tt.want)
				if err == nil || !strings.Contains(logs(), want) {
					t.Errorf("exit %v, want a failure saying %s; log:\n%s", err, want, logs())
				}
			case <-time.After(time.Minute):
				t.Fatalf("still running; log:\n%s", logs())
			}
		})
	}
}
