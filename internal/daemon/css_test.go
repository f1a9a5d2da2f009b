package daemon

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/internal/cachetest"
	"github.com/mosparo-lb/mosparo-lb/internal/mosparotest"
	"github.com/valyala/fasthttp"
)

// redisSet writes one key with the raw protocol, the way a node's
// RedisAdapter stores a PHP-serialized string (FACTS 5.4).
func redisSet(t *testing.T, addr, key, value string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(key), key, len(value), value)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "+OK") {
		t.Fatalf("SET %s: %q %v", key, line, err)
	}
}

func phpString(s string) string { return fmt.Sprintf("s:%d:\"%s\";", len(s), s) }

func TestEdgeCSSThroughTheLB(t *testing.T) {
	redis := cachetest.StartRedis(t)
	nodes := startNodes(t, 1)
	c := startCluster(t, nodes, fmt.Sprintf("css_cache: {backend: redis, url: \"redis://%s/0\"}\n", redis.Addr))
	css := ".mosparo__" + mosparotest.DemoUUID + "{color:red}" + strings.Repeat(".x{margin:0}", 1000)
	sum := sha256.Sum256([]byte(css))
	hash := hex.EncodeToString(sum[:])
	redisSet(t, redis.Addr, "design_"+mosparotest.DemoUUID+"_content", phpString(css))
	redisSet(t, redis.Addr, "design_"+mosparotest.DemoUUID+"_hash", phpString(hash))

	cl := &fasthttp.Client{}
	get := func(path string) *fasthttp.Response {
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
	var resp *fasthttp.Response
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp = get("/resources/" + mosparotest.DemoUUID + "/" + hash + ".css")
		if resp.StatusCode() == 200 && len(resp.Header.Peek("X-Mosparo-Node")) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hashed CSS never served at the edge: %d from node %q", resp.StatusCode(), resp.Header.Peek("X-Mosparo-Node"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if string(resp.Body()) != css {
		t.Errorf("edge CSS differs from what the node wrote (%d vs %d bytes)", len(resp.Body()), len(css))
	}
	if got := string(resp.Header.ContentType()); !strings.HasPrefix(got, "text/css") {
		t.Errorf("Content-Type = %q, want text/css", got)
	}
	resp = get("/resources/" + mosparotest.DemoUUID + ".css")
	if resp.StatusCode() != 307 || string(resp.Header.Peek("Location")) != "http://mosparo.example/resources/"+mosparotest.DemoUUID+"/"+hash+".css" {
		t.Errorf("unhashed CSS: %d Location %q", resp.StatusCode(), resp.Header.Peek("Location"))
	}
	// A hash the cache does not hold goes to a node unchanged.
	resp = get("/resources/" + mosparotest.DemoUUID + "/" + strings.Repeat("0", 64) + ".css")
	if len(resp.Header.Peek("X-Mosparo-Node")) == 0 {
		t.Error("a stale hash was answered at the edge; it must reach a node")
	}
	// The cache going away costs no error: the node answers.
	redis.Stop()
	for i := 0; i < 20; i++ {
		if resp = get("/resources/" + mosparotest.DemoUUID + ".css"); resp.StatusCode() >= 500 {
			t.Fatalf("with Redis stopped: %d", resp.StatusCode())
		}
	}
	if !strings.Contains(fmt.Sprint(c.d.Status()), "redis") {
		t.Error("status has no css_cache section")
	}
}
