package balancer

import (
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// h2specVersion is the h2spec built from the Go module proxy. The proxy
// serves no v2.3+ (h2spec has no go.mod, and the later tags are not
// offered as +incompatible versions): v2.2.1+incompatible is the newest
// that builds here (`go list -m -versions github.com/summerwind/h2spec`).
// Its 145 cases are the ones h2specExpected is written for.
const h2specVersion = "github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible"

// h2specExpected are the h2spec cases the LB fails on purpose, each a
// deliberate choice of golang.org/x/net/http2 (v0.63) that the LB keeps,
// keyed "<section>/<case>" as h2spec numbers them. Any other failure, and
// any of these passing (so the list stays true), fails the test.
var h2specExpected = map[string]string{
	// Two SETTINGS_INITIAL_WINDOW_SIZE in one SETTINGS frame: RFC 9113
	// 6.5.3 says to apply them in order; x/net closes the connection
	// with PROTOCOL_ERROR for any SETTINGS frame with a repeated
	// identifier or more than 100 entries (server.go processSettings,
	// "settings_big_or_dups"), as hardening: no client repeats one.
	"http2/6.5.3/1": "x/net closes the connection on a SETTINGS frame with duplicate identifiers",
	// A connection-specific field (Connection, Keep-Alive, ...) or a TE
	// other than "trailers": RFC 9113 8.2.2 calls the request malformed
	// (a stream error of type PROTOCOL_ERROR); x/net answers it with its
	// own 400 naming the field instead (checkValidHTTP2RequestHeaders,
	// new400Handler), before the LB's handler sees the stream. The
	// request reaches no node either way.
	"http2/8.1.2.2/1": "x/net answers a connection-specific field with 400, not RST_STREAM",
	"http2/8.1.2.2/2": "x/net answers TE other than trailers with 400, not RST_STREAM",
}

// h2specBin is H2SPEC when set, else the pinned h2spec built from the
// module proxy (the build cache makes rebuilding cheap). A binary from
// PATH is not used: the expected failures belong to one version.
func h2specBin(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("H2SPEC"); b != "" {
		return b
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "install", h2specVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		msg := "h2spec could not be built from the module proxy (" + err.Error() + "): the h2spec conformance test did NOT run\n" + string(out)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return filepath.Join(dir, "h2spec")
}

// h2specReport is the part of h2spec's JUnit report the test reads: one
// suite per section, its cases in h2spec's order (case n is the n-th).
type h2specReport struct {
	Suites []struct {
		ID    string `xml:"package,attr"`
		Cases []struct {
			Desc    string    `xml:"classname,attr"`
			Failure *struct{} `xml:"failure"`
			Error   *struct{} `xml:"error"`
			Skipped *struct{} `xml:"skipped"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// failures lists the cases that failed or errored, as "<section>/<n>"
// mapped to their description, and counts the cases run.
func (r *h2specReport) failures() (map[string]string, int) {
	out := make(map[string]string)
	n := 0
	for _, s := range r.Suites {
		for i, c := range s.Cases {
			n++
			if c.Failure != nil || c.Error != nil {
				out[fmt.Sprintf("%s/%d", s.ID, i+1)] = c.Desc
			}
		}
	}
	return out, n
}

// h2spec (RFC 7540/9113 and HPACK conformance) against the LB's h2.
func TestHTTP2H2spec(t *testing.T) {
	if testing.Short() {
		t.Skip("h2spec takes a minute; not with -short")
	}
	bin := h2specBin(t)
	n := startEcho(t, "n1")
	_, addr := startLB(t, testConfig(t, h2YAML(t, "", "")), nodesOf(n))
	host, port := splitHostPort(t, addr)
	junit := filepath.Join(t.TempDir(), "h2spec.xml")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-h", host, "-p", port, "-t", "-k", "-o", "5", "-j", junit).CombinedOutput()
	t.Logf("h2spec:\n%s", tail(out, 60))
	_ = err // h2spec exits non-zero on any failure; the report decides
	raw, rerr := os.ReadFile(junit)
	if rerr != nil {
		t.Fatalf("no h2spec report: %v", rerr)
	}
	var rep h2specReport
	if err := xml.Unmarshal(raw, &rep); err != nil {
		t.Fatalf("h2spec report: %v", err)
	}
	failed, total := rep.failures()
	// v2.2.1 has 145 cases: far fewer means h2spec stopped early.
	if total < 140 {
		t.Fatalf("h2spec ran %d cases, want 145", total)
	}
	var ids []string
	for id := range failed {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if why, ok := h2specExpected[id]; ok {
			t.Logf("h2spec %s fails as expected (%s): %s", id, failed[id], why)
			continue
		}
		t.Errorf("h2spec %s fails: %s (see the log above)", id, failed[id])
	}
	for id := range h2specExpected {
		if _, ok := failed[id]; !ok {
			t.Errorf("h2spec %s passes now: remove it from h2specExpected", id)
		}
	}
	t.Logf("h2spec: %d cases, %d failed (%d expected)", total, len(failed), len(h2specExpected))
}

func splitHostPort(t *testing.T, addr string) (string, string) {
	t.Helper()
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		t.Fatalf("no port in %q", addr)
	}
	return addr[:i], addr[i+1:]
}

func tail(b []byte, lines int) []byte {
	n := 0
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '\n' {
			n++
			if n > lines {
				return b[i+1:]
			}
		}
	}
	return b
}
