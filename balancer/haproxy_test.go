package balancer

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/tools/txtar"
	"gopkg.in/yaml.v3"
)

// TestHostileDifferential runs the hostile corpus against mosparo-lb and
// against HAProxy in front of the same scripted nodes. Every case where
// HAProxy's statuses differ from what the case expects of mosparo-lb must
// say why (haproxy-why), and its haproxy: line must be what HAProxy does.
// `make hostile` prints the table it writes (-hostile.table).
func TestHostileDifferential(t *testing.T) {
	if _, err := exec.LookPath("haproxy"); err != nil {
		if os.Getenv("MOSPARO_LB_REQUIRE_ROOT_TESTS") == "1" {
			t.Fatal("haproxy is not installed (scripts/install-test-deps.sh)")
		}
		t.Skip("haproxy is not installed")
	}
	cases, err := loadHostileCases(hostileDir)
	if err != nil {
		t.Fatal(err)
	}
	lbRuns := runHostileCases(cases, startHostileLB)
	hapRuns := runHostileCases(cases, startHAProxy)
	var rows [][4]string
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lb, hap := lbRuns[i], hapRuns[i]
			if hap.err != nil {
				t.Fatalf("HAProxy: %v", hap.err)
			}
			lbs := allStatuses(lb.caseResult)
			if lb.err != nil {
				lbs = "error" // a defect case using a key the fix adds
			}
			rows = append(rows, [4]string{c.name, lbs, allStatuses(hap.caseResult), c.expect.hapWhy})
			got1 := statusList(parseAnswers(hap.clients[0]))
			if *hostileUpdate {
				c.recordHAProxy(t, got1)
				return
			}
			if c.expect.haproxy != got1 {
				t.Errorf("HAProxy answered %s, the case says haproxy: %s (-hostile.update rewrites it)", got1, c.expect.haproxy)
			}
			// Every client, not only the first: a case's later clients
			// show what a node's state became (issue 11: "where HAProxy
			// answers differently, the test file says why").
			for n, answers := range hap.clients {
				got := statusList(parseAnswers(answers))
				if want := c.expect.statusOf(n + 1); !statusMatches(got, want) && c.expect.hapWhy == "" {
					t.Errorf("HAProxy answered client %d %s where mosparo-lb must answer %s: the case must say why (haproxy-why)", n+1, got, want)
				}
			}
		})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i][0] < rows[j][0] })
	table := formatTable(rows)
	if *hostileTable != "" {
		if err := os.WriteFile(*hostileTable, table, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("\n%s", table)
}

// allStatuses is every client's status list, "200 / 503" for two clients.
func allStatuses(r caseResult) string {
	var s []string
	for _, c := range r.clients {
		s = append(s, statusList(parseAnswers(c)))
	}
	return strings.Join(s, " / ")
}

func formatTable(rows [][4]string) []byte {
	var b bytes.Buffer
	w := [3]int{len("case"), len("mosparo-lb"), len("HAProxy")}
	for _, r := range rows {
		for i := range w {
			w[i] = max(w[i], len(r[i]))
		}
	}
	differ := 0
	fmt.Fprintf(&b, "%-*s  %-*s  %-*s  %s\n", w[0], "case", w[1], "mosparo-lb", w[2], "HAProxy", "why HAProxy differs")
	for _, r := range rows {
		why := ""
		if r[1] != r[2] {
			differ++
			why = r[3]
		}
		fmt.Fprintf(&b, "%-*s  %-*s  %-*s  %s\n", w[0], r[0], w[1], r[1], w[2], r[2], why)
	}
	fmt.Fprintf(&b, "%d cases, %d answered differently\n", len(rows), differ)
	return b.Bytes()
}

// recordHAProxy writes HAProxy's statuses into the case's haproxy: line.
func (c *hostileCase) recordHAProxy(t *testing.T, got string) {
	t.Helper()
	for i, f := range c.arch.Files {
		if f.Name != "expect" {
			continue
		}
		lines := splitLines(f.Data)
		found := false
		for j, l := range lines {
			if strings.HasPrefix(l, "haproxy:") {
				lines[j], found = "haproxy: "+got, true
			}
		}
		if !found {
			lines = append(lines, "haproxy: "+got)
		}
		c.arch.Files[i].Data = []byte(strings.Join(lines, "\n") + "\n")
	}
	if err := os.WriteFile(c.path, txtar.Format(c.arch), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startHAProxy runs haproxy in front of the case's nodes with settings
// close to hostileBaseYAML. Its listening socket is made here and passed
// as fd 3, so there is no port race and no waiting for it to bind.
func startHAProxy(c *hostileCase, nodes []*scriptNode) (string, func() (map[string]string, error), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	f, err := ln.(*net.TCPListener).File()
	addr := ln.Addr().String()
	ln.Close()
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	dir, err := os.MkdirTemp("", "hostile-haproxy-")
	if err != nil {
		return "", nil, err
	}
	cfgPath := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfgPath, haproxyConfig(c, nodes), 0o644); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	cmd := exec.Command("haproxy", "-db", "-f", cfgPath)
	cmd.ExtraFiles = []*os.File{f}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	return addr, func() (map[string]string, error) {
		defer os.RemoveAll(dir)
		_ = cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			return nil, errors.New("haproxy did not exit")
		}
		if strings.Contains(out.String(), "[ALERT]") {
			return nil, fmt.Errorf("haproxy: %s", out.String())
		}
		return nil, nil
	}, nil
}

// haproxyConfig mirrors the case's settings that HAProxy has an
// equivalent for: max_conns_per_node (maxconn + queue), timeouts.request,
// redirect_https, proxy_protocol (accept-proxy).
func haproxyConfig(c *hostileCase, nodes []*scriptNode) []byte {
	var cfg struct {
		Listen []struct {
			RedirectHTTPS bool `yaml:"redirect_https"`
			ProxyProtocol any  `yaml:"proxy_protocol"`
		}
		Timeouts struct{ Request string }
		Limits   struct {
			MaxConnsPerNode int `yaml:"max_conns_per_node"`
		}
	}
	_ = yaml.Unmarshal([]byte(c.config), &cfg)
	server := "2s"
	if cfg.Timeouts.Request != "" {
		server = cfg.Timeouts.Request
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `global
    maxconn 1000
    tune.bufsize 5120
defaults
    mode http
    timeout connect 5s
    timeout client 2s
    timeout http-request 1s
    timeout server %s
    timeout queue 1s
    option forwardfor
    retries 2
    option redispatch
frontend fe
`, server)
	b.WriteString("    bind fd@3")
	if len(cfg.Listen) > 0 && cfg.Listen[0].ProxyProtocol != nil {
		b.WriteString(" accept-proxy")
	}
	b.WriteString("\n")
	if len(cfg.Listen) > 0 && cfg.Listen[0].RedirectHTTPS {
		b.WriteString("    http-request redirect scheme https code 308\n")
	}
	b.WriteString("    default_backend be\nbackend be\n    balance roundrobin\n")
	for _, n := range nodes {
		if len(c.expect.only) > 0 && !contains(c.expect.only, n.name) {
			continue
		}
		fmt.Fprintf(&b, "    server %s %s", n.name, n.addr())
		if cfg.Limits.MaxConnsPerNode > 0 {
			fmt.Fprintf(&b, " maxconn %d", cfg.Limits.MaxConnsPerNode)
		}
		b.WriteString("\n")
	}
	return b.Bytes()
}
