package daemon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/acme"
	"github.com/mosparo-lb/mosparo-lb/internal/consultest"
	"github.com/mosparo-lb/mosparo-lb/internal/pebbletest"
)

// TestACMESharedDirectoryHA: two LBs share one storage directory. The
// master (this process) orders a certificate; the CA's http-01 request
// reaches the backup (another process, so it has none of the master's
// challenge memory), which answers from the shared storage. After a reload
// that makes it manage the same name, the backup serves the master's
// certificate without ordering one.
func TestACMESharedDirectoryHA(t *testing.T) {
	testACMEHA(t, "")
}

// TestACMEConsulHA is TestACMESharedDirectoryHA with the storage in Consul
// KV (discovery.consul set; the project's fake agent serves KV and sessions).
func TestACMEConsulHA(t *testing.T) {
	agent, err := consultest.New(consultest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(agent.Close)
	testACMEHA(t, fmt.Sprintf("discovery: {consul: {address: %q, service: mosparo, wait: 2s, backoff_min: 50ms, backoff_max: 200ms}}\nacme: {consul_prefix: lbtest/acme}\n", agent.Addr()))
	if keys := agent.KVKeys("lbtest/acme/"); len(keys) == 0 {
		t.Errorf("Consul KV holds nothing under lbtest/acme/; want the certificates")
	}
}

// testACMEHA runs the pair with extra YAML appended to both files ("":
// one shared directory).
func testACMEHA(t *testing.T, extra string) {
	bin := buildLB(t)
	nodes := startNodes(t, 1)
	httpPort, tlsPort := pebbletest.FreePort(t), pebbletest.FreePort(t)
	// Every name resolves to the backup's address: the VIP is on the backup.
	ca := pebbletest.Start(t, pebbletest.Options{HTTPPort: httpPort, TLSPort: tlsPort, ResolveTo: "127.0.0.2"})
	storage := t.TempDir()
	const backupOnly = "backup.mosparo.test"

	adminPort := pebbletest.FreePort(t)
	lbYAML := func(ip string, domains ...string) string {
		y := acmeYAML(nodes, ip, httpPort, tlsPort, ca, storage, domains, "http-01")
		if extra != "" {
			y = strings.Replace(y, fmt.Sprintf("acme: {storage_dir: %q}\n", storage), "", 1) + extra
		}
		return y
	}
	backupYAML := func(domains ...string) string {
		y := lbYAML("127.0.0.2", domains...)
		y = strings.Replace(y, `admin: {listen: "127.0.0.1:0"}`, fmt.Sprintf(`admin: {listen: "127.0.0.1:%d"}`, adminPort), 1)
		return strings.Replace(y, "log: {level: warn", "log: {level: info", 1)
	}
	backup := startProcessLB(t, bin, backupYAML(backupOnly))
	backup.waitDomain(t, backupOnly, func(d acme.DomainStatus) bool { return d.State == "valid" })

	master := startACMELB(t, lbYAML("127.0.0.1", acmeDomain), 0)
	st := master.waitCertificate(acmeDomain, nil)
	if st.Obtained != 1 {
		t.Errorf("master obtained %d certificates, want 1", st.Obtained)
	}
	if !backup.logged(`"identifier":"`+acmeDomain+`"`, `"distributed":true`) {
		t.Errorf("the backup's log shows no distributed http-01 answer for %s", acmeDomain)
	}

	// Failover: the backup now serves the name too, from the storage.
	backup.reload(t, backupYAML(backupOnly, acmeDomain))
	bst := backup.waitDomain(t, acmeDomain, func(d acme.DomainStatus) bool { return d.State == "valid" })
	if bst.Serial != st.Serial || bst.Obtained != 0 {
		t.Errorf("backup serves serial %s after obtaining %d, want the master's %s without an order", bst.Serial, bst.Obtained, st.Serial)
	}
	leaf, _ := handshake(t, fmt.Sprintf("127.0.0.2:%d", tlsPort), acmeDomain, ca.IssuerRoot(t))
	if got := fmt.Sprintf("%x", leaf.SerialNumber); got != st.Serial {
		t.Errorf("backup's handshake serves serial %s, want the master's %s", got, st.Serial)
	}
}

var (
	lbBinOnce sync.Once
	lbBin     string
	lbBinErr  error
)

// buildLB builds cmd/mosparo-lb once per test binary.
func buildLB(t *testing.T) string {
	t.Helper()
	lbBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mosparo-lb-acme")
		if err != nil {
			lbBinErr = err
			return
		}
		lbBin = filepath.Join(dir, "mosparo-lb")
		if out, err := exec.Command("go", "build", "-o", lbBin, "../../cmd/mosparo-lb").CombinedOutput(); err != nil {
			lbBinErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if lbBinErr != nil {
		t.Fatal(lbBinErr)
	}
	// Shared by the tests of this binary, so not removed by one of them
	// (a few MB under os.TempDir).
	return lbBin
}

// processLB is an LB in its own process, read through /status.
type processLB struct {
	cmd   *exec.Cmd
	path  string
	admin string
	mu    sync.Mutex
	out   bytes.Buffer
}

func startProcessLB(t *testing.T, bin, yaml string) *processLB {
	t.Helper()
	p := &processLB{path: filepath.Join(t.TempDir(), "lb.yaml")}
	if err := os.WriteFile(p.path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(yaml, "\n") {
		if i := strings.Index(line, `admin: {listen: "`); i >= 0 {
			p.admin = strings.TrimSuffix(line[i+len(`admin: {listen: "`):], `"}`)
		}
	}
	p.cmd = exec.Command(bin, "run", "-config", p.path)
	p.cmd.Stdout, p.cmd.Stderr = (*lockedBuffer)(p), (*lockedBuffer)(p)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			p.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			p.mu.Lock()
			t.Logf("backup LB output:\n%s", p.out.String())
			p.mu.Unlock()
		}
	})
	return p
}

type lockedBuffer processLB

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.Write(p)
}

// logged reports whether one line of the output holds every part.
func (p *processLB) logged(parts ...string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, line := range strings.Split(p.out.String(), "\n") {
		all := true
		for _, part := range parts {
			all = all && strings.Contains(line, part)
		}
		if all {
			return true
		}
	}
	return false
}

func (p *processLB) reload(t *testing.T, yaml string) {
	t.Helper()
	if err := os.WriteFile(p.path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}

func (p *processLB) domain(domain string) acme.DomainStatus {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + p.admin + "/status")
	if err != nil {
		return acme.DomainStatus{}
	}
	defer resp.Body.Close()
	var s struct {
		ACME *acme.Status `json:"acme"`
	}
	if json.NewDecoder(resp.Body).Decode(&s) != nil || s.ACME == nil {
		return acme.DomainStatus{}
	}
	for _, d := range s.ACME.Domains {
		if d.Domain == domain {
			return d
		}
	}
	return acme.DomainStatus{}
}

func (p *processLB) waitDomain(t *testing.T, domain string, ok func(acme.DomainStatus) bool) acme.DomainStatus {
	t.Helper()
	var st acme.DomainStatus
	for i := 0; i < 600; i++ {
		if st = p.domain(domain); ok(st) {
			return st
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("backup: %s never ready: %+v", domain, st)
	return st
}
