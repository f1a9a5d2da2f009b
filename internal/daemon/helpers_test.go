package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/internal/mosparoemu"
	"github.com/valyala/fasthttp"
)

// eventually reports whether cond became true within d, checking it every
// 20ms: the tests wait for what they expect instead of sleeping a fixed
// time, and a busy machine only makes them slower, not fail.
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// cssHash is the hash mosparo names a project's stylesheet by.
func cssHash(css string) string {
	sum := sha256.Sum256([]byte(css))
	return hex.EncodeToString(sum[:])
}

// storeProjectCSS writes the demo project's stylesheet into the shared
// cache as mosparo does: its content and its hash.
func storeProjectCSS(t *testing.T, redisAddr, css, hash string) {
	t.Helper()
	redisSet(t, redisAddr, "design_"+mosparoemu.DemoUUID+"_content", phpString(css))
	redisSet(t, redisAddr, "design_"+mosparoemu.DemoUUID+"_hash", phpString(hash))
}

// hostGet sends GET path to the LB with the public Host header; the
// response is the caller's.
func hostGet(t *testing.T, c *cluster, cl *fasthttp.Client, path string) *fasthttp.Response {
	t.Helper()
	req, resp := fasthttp.AcquireRequest(), &fasthttp.Response{}
	defer fasthttp.ReleaseRequest(req)
	req.SetRequestURI(c.lb + path)
	req.Header.SetHost("mosparo.example")
	req.UseHostHeader = true
	if err := cl.DoTimeout(req, resp, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	return resp
}

// atEdge reports whether the LB answered resp itself (no node named).
func atEdge(resp *fasthttp.Response) bool { return len(resp.Header.Peek("X-Mosparo-Node")) == 0 }
