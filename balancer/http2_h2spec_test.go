package balancer

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// h2specVersion is the h2spec release built from the Go module proxy when
// no h2spec binary is installed.
const h2specVersion = "github.com/summerwind/h2spec/cmd/h2spec@v2.6.0"

// h2specBin finds h2spec (H2SPEC, PATH, ~/go/bin), else builds it from the
// module proxy into a temporary directory.
func h2specBin(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("H2SPEC"); b != "" {
		return b
	}
	if b, err := exec.LookPath("h2spec"); err == nil {
		return b
	}
	if home, err := os.UserHomeDir(); err == nil {
		if b := filepath.Join(home, "go", "bin", "h2spec"); fileExists(b) {
			return b
		}
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
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

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
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
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-h", host, "-p", port, "-t", "-k", "-o", "5").CombinedOutput()
	t.Logf("h2spec:\n%s", tail(out, 60))
	_ = err // h2spec exits non-zero on any failure; the count below decides
	// Known, all in x/net/http2 v0.63 rather than the LB (issue 14 report):
	// a 400 answer instead of PROTOCOL_ERROR for connection-specific and
	// TE fields (2), no FRAME_SIZE_ERROR for an oversized HEADERS frame,
	// repeated SETTINGS_INITIAL_WINDOW_SIZE, and a 2^14-octet DATA frame
	// answered with RST_STREAM (not yet analysed). More than these fails.
	const known = 5
	m := regexp.MustCompile(`(\d+) tests, (\d+) passed, (\d+) skipped, (\d+) failed`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no h2spec summary in its output")
	}
	if failed, _ := strconv.Atoi(string(m[4])); failed > known {
		t.Errorf("h2spec: %s failed, want at most the %d known ones (see the log above)", m[4], known)
	}
}

func splitHostPort(t *testing.T, addr string) (string, string) {
	t.Helper()
	i := len(addr) - 1
	for i >= 0 && addr[i] != ':' {
		i--
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
