//lint:file-ignore SA1019 the tests need an HTTP/2-only client; x/net/http2.Transport is one.

package balancer

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2YAML is a TLS listener with h2 on (the default), extra listener keys
// appended by the caller.
func h2YAML(t testing.TB, listenerExtra, rest string) string {
	t.Helper()
	dir := t.TempDir()
	c, k := writeCert(t, dir, "mosparo.example")
	return fmt.Sprintf(`
listen:
  - address: "127.0.0.1:0"
    tls: {certificates: [{cert: %q, key: %q}]}
%s
admin: {listen: "127.0.0.1:0"}
timeouts: {connect: 200ms, request: 2s}
%s`, c, k, listenerExtra, rest)
}

// h2Client is an HTTP/2-only client trusting any certificate.
func h2Client() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http2.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "mosparo.example"},
	}}
}

func getEchoed(t *testing.T, c *http.Client, url string, hdr map[string]string) (*http.Response, echoed) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var e echoed
	_ = json.Unmarshal(body, &e)
	return resp, e
}

// An h2 request takes the HTTP/1.1 path: forwarding headers replaced,
// hop-by-hop fields dropped both ways, the node reached over HTTP/1.1.
func TestHTTP2ForwardsLikeHTTP1(t *testing.T) {
	n := startEcho(t, "n1")
	s, addr := startLB(t, testConfig(t, h2YAML(t, "", "")), nodesOf(n))
	resp, e := getEchoed(t, h2Client(), "https://"+addr+"/login?x=1", map[string]string{
		"X-Forwarded-For": "127.0.0.9", "Forwarded": "for=127.0.0.9", "X-Forwarded-Host": "evil.example",
		"X-Real-IP": "127.0.0.9",
	})
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
		t.Fatalf("got %s %d, want HTTP/2 200", resp.Proto, resp.StatusCode)
	}
	// The Go client sends the URL's host as :authority.
	want := map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "https",
		"X-Forwarded-Host": addr, "Host": addr}
	for k, v := range want {
		if got := e.Headers[k]; len(got) != 1 || got[0] != v {
			t.Errorf("node saw %s = %q, want [%q]", k, got, v)
		}
	}
	for _, k := range []string{"Forwarded", "X-Real-Ip"} {
		if got, ok := e.Headers[k]; ok {
			t.Errorf("node saw spoofed %s = %q", k, got)
		}
	}
	if e.URI != "/login?x=1" {
		t.Errorf("node saw URI %q, want /login?x=1", e.URI)
	}
	for _, k := range []string{"X-Secret-Hop", "Keep-Alive", "Connection"} {
		if v := resp.Header.Get(k); v != "" {
			t.Errorf("client got hop-by-hop %s: %q", k, v)
		}
	}
	if st := s.HTTP2Stats(); st.RequestsH2 != 1 {
		t.Errorf("HTTP2Stats().RequestsH2 = %d, want 1", st.RequestsH2)
	}
}

// listen[].http2.enabled: false leaves h2 out of ALPN.
func TestHTTP2Off(t *testing.T) {
	n := startEcho(t, "n1")
	_, addr := startLB(t, testConfig(t, h2YAML(t, "    http2: {enabled: false}", "")), nodesOf(n))
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p := c.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
		t.Errorf("ALPN chose %q, want http/1.1", p)
	}
}

// curl --http2 through the LB, the way operators check it.
func TestHTTP2Curl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed (scripts/install-test-deps.sh)")
	}
	n := startEcho(t, "n1")
	_, addr := startLB(t, testConfig(t, h2YAML(t, "", "")), nodesOf(n))
	out, err := exec.Command(curl, "-sk", "--http2", "--max-time", "10", "-w", "\n%{http_version}",
		"-H", "X-Forwarded-For: 10.6.6.6", "https://"+addr+"/api/v1/frontend/request-submit-token").CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	i := bytes.LastIndexByte(out, '\n')
	if v := string(out[i+1:]); v != "2" {
		t.Errorf("curl spoke HTTP %q, want 2", v)
	}
	var e echoed
	if err := json.Unmarshal(out[:i], &e); err != nil {
		t.Fatalf("body %q: %v", out[:i], err)
	}
	if got := e.Headers["X-Forwarded-For"]; len(got) != 1 || got[0] != "127.0.0.1" {
		t.Errorf("node saw X-Forwarded-For %q, want [127.0.0.1]", got)
	}
}

// h2Conn is a raw HTTP/2 client connection for hostile input.
type h2Conn struct {
	t   testing.TB
	c   net.Conn
	fr  *http2.Framer
	enc *hpack.Encoder
	buf bytes.Buffer
}

func dialH2(t testing.TB, addr string) *h2Conn {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		c.Close()
		t.Fatalf("ALPN chose %q, want h2", p)
	}
	t.Cleanup(func() { c.Close() })
	return newH2Conn(t, c)
}

func newH2Conn(t testing.TB, c net.Conn) *h2Conn {
	h := &h2Conn{t: t, c: c, fr: http2.NewFramer(c, c)}
	h.enc = hpack.NewEncoder(&h.buf)
	h.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	h.fr.MaxHeaderListSize = 1 << 20
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := h.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return h
}

// headers sends one HEADERS frame of fields (in order, as given) on stream
// id, ending the stream when end is set.
func (h *h2Conn) headers(id uint32, end bool, fields ...[2]string) error {
	h.buf.Reset()
	for _, f := range fields {
		if err := h.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}); err != nil {
			return err
		}
	}
	return h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.buf.Bytes(), EndStream: end, EndHeaders: true})
}

// h2Result is how the server ended a stream.
type h2Result struct {
	status string // :status of the answer, "" when none
	body   []byte
	reset  http2.ErrCode // RST_STREAM on the stream (0: none)
	goAway bool          // the connection was ended
}

// await reads frames until stream id is answered and ended, reset, or the
// connection goes away.
func (h *h2Conn) await(id uint32) h2Result {
	var r h2Result
	for range 1000 {
		f, err := h.fr.ReadFrame()
		if err != nil {
			r.goAway = true
			return r
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = h.fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				_ = h.fr.WritePing(true, f.Data)
			}
		case *http2.GoAwayFrame:
			r.goAway = true
			if f.LastStreamID < id {
				return r
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == id {
				r.reset = f.ErrCode
				return r
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID == id {
				r.status = f.PseudoValue("status")
				if f.StreamEnded() {
					return r
				}
			}
		case *http2.DataFrame:
			if f.StreamID == id {
				r.body = append(r.body, f.Data()...)
				if f.StreamEnded() {
					return r
				}
			}
		}
	}
	h.t.Fatal("no end of stream within 1000 frames")
	return r
}

// h2Get is a well-formed GET request's fields for path, extra appended.
func h2Get(addr, path string, extra ...[2]string) [][2]string {
	f := [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "mosparo.example"}, {":path", path}}
	_ = addr
	return append(f, extra...)
}

// Every hostile-input rule that applies to h2 (issue 14), each case on a
// fresh connection: what the client gets, and whether any node saw it.
func TestHTTP2Hostile(t *testing.T) {
	n := startEcho(t, "n1")
	big := strings.Repeat("a", 20<<10)
	var many [][2]string
	for i := range 12 {
		many = append(many, [2]string{fmt.Sprintf("x-f%d", i), strings.Repeat("b", 1000)})
	}
	_, addr := startLB(t, testConfig(t, h2YAML(t, "", "limits: {max_header_bytes: 8192}")), nodesOf(n))
	tests := []struct {
		name   string
		fields [][2]string
		status string // wanted :status; "" when the stream must be reset
		reset  bool   // stream reset or connection ended, no answer
		node   bool   // reaches a node
		check  func(echoed) string
	}{
		{name: "spoofed forwarding headers are replaced", fields: h2Get(addr, "/login",
			[2]string{"x-forwarded-for", "127.0.0.1"}, [2]string{"forwarded", "for=127.0.0.1;proto=http"},
			[2]string{"x-forwarded-proto", "http"}, [2]string{"x-forwarded-host", "evil.example"}, [2]string{"x-real-ip", "127.0.0.1"},
			[2]string{"x-forwarded-for", "10.0.0.1"}),
			status: "200", node: true, check: func(e echoed) string {
				if got := e.Headers["X-Forwarded-For"]; len(got) != 1 || got[0] != "127.0.0.1" {
					return fmt.Sprintf("X-Forwarded-For %q", got)
				}
				if got := e.Headers["X-Forwarded-Proto"]; len(got) != 1 || got[0] != "https" {
					return fmt.Sprintf("X-Forwarded-Proto %q", got)
				}
				if got := e.Headers["X-Forwarded-Host"]; len(got) != 1 || got[0] != "mosparo.example" {
					return fmt.Sprintf("X-Forwarded-Host %q", got)
				}
				for _, k := range []string{"Forwarded", "X-Real-Ip"} {
					if _, ok := e.Headers[k]; ok {
						return "kept " + k
					}
				}
				return ""
			}},
		{name: "cron guard", fields: h2Get(addr, "/cron-jobs/execute"), status: "403"},
		{name: "cron guard via index.php", fields: h2Get(addr, "/index.php/cron-jobs/execute"), status: "403"},
		{name: "cron guard via dot segments", fields: h2Get(addr, "/x/../cron-jobs/execute"), status: "403"},
		{name: "cron guard percent-encoded", fields: h2Get(addr, "/cron%2Djobs/execute"), status: "403"},
		{name: "health guard", fields: h2Get(addr, "/api/v1/health/check"), status: "403"},
		// One field over the whole list's size fails HPACK decoding: the
		// connection ends (COMPRESSION_ERROR).
		{name: "oversized header field", fields: h2Get(addr, "/login", [2]string{"x-big", big}), reset: true},
		{name: "oversized header list", fields: h2Get(addr, "/login", many...), status: "431"},
		{name: "CONNECT", fields: [][2]string{{":method", "CONNECT"}, {":authority", "mosparo.example:443"}}, status: "400"},
		{name: "extended CONNECT", fields: [][2]string{{":method", "CONNECT"}, {":protocol", "websocket"}, {":scheme", "https"}, {":authority", "mosparo.example"}, {":path", "/login"}}, reset: true},
		{name: "unknown pseudo-header", fields: h2Get(addr, "/login", [2]string{":evil", "1"}), reset: true},
		{name: "pseudo-header after a regular one", fields: [][2]string{{":method", "GET"}, {"x-a", "1"}, {":scheme", "https"}, {":authority", "mosparo.example"}, {":path", "/login"}}, reset: true},
		{name: "duplicate :path", fields: h2Get(addr, "/login", [2]string{":path", "/cron-jobs/execute"}), reset: true},
		{name: "missing :path", fields: [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "mosparo.example"}}, reset: true},
		{name: "connection header", fields: h2Get(addr, "/login", [2]string{"connection", "keep-alive"}), status: "400"},
		{name: "transfer-encoding", fields: h2Get(addr, "/login", [2]string{"transfer-encoding", "chunked"}), status: "400"},
		{name: "upgrade", fields: h2Get(addr, "/login", [2]string{"upgrade", "websocket"}), status: "400"},
		{name: "keep-alive", fields: h2Get(addr, "/login", [2]string{"keep-alive", "300"}), status: "400"},
		{name: "te other than trailers", fields: h2Get(addr, "/login", [2]string{"te", "gzip"}), status: "400"},
		{name: "upper-case field name", fields: h2Get(addr, "/login", [2]string{"X-Upper", "1"}), reset: true},
		{name: "field value with CR LF", fields: h2Get(addr, "/login", [2]string{"x-a", "1\r\nX-Forwarded-For: 127.0.0.1"}), reset: true},
		{name: "absolute :path", fields: h2Get(addr, "http://evil.example/cron-jobs/execute"), reset: true},
		// As "OPTIONS * HTTP/1.1" is forwarded: the node answers it.
		{name: "asterisk :path", fields: [][2]string{{":method", "OPTIONS"}, {":scheme", "https"}, {":authority", "mosparo.example"}, {":path", "*"}}, status: "200", node: true},
		{name: "bad authority", fields: [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "evil example"}, {":path", "/login"}}, reset: true},
		{name: "authority with user info", fields: [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "u@mosparo.example"}, {":path", "/login"}}, reset: true},
		{name: "host header differing from authority", fields: h2Get(addr, "/cron-jobs/execute", [2]string{"host", "other.example"}), reset: true},
		{name: "cookie crumbs are joined", fields: h2Get(addr, "/login", [2]string{"cookie", "a=1"}, [2]string{"cookie", "b=2"}), status: "200", node: true,
			check: func(e echoed) string {
				if got := e.Headers["Cookie"]; len(got) != 1 || got[0] != "a=1; b=2" {
					return fmt.Sprintf("Cookie %q", got)
				}
				return ""
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := n.hits.Load()
			h := dialH2(t, addr)
			if err := h.headers(1, true, tt.fields...); err != nil {
				t.Fatal(err)
			}
			r := h.await(1)
			switch {
			case tt.reset && r.status != "":
				t.Errorf("got :status %s, want the stream reset", r.status)
			case !tt.reset && r.status != tt.status:
				t.Errorf("got :status %q (reset %v, goaway %v), want %s", r.status, r.reset, r.goAway, tt.status)
			}
			if reached := n.hits.Load() != before; reached != tt.node {
				t.Errorf("reached a node: %v, want %v", reached, tt.node)
			}
			if tt.check != nil {
				var e echoed
				_ = json.Unmarshal(r.body, &e)
				if msg := tt.check(e); msg != "" {
					t.Errorf("node saw %s", msg)
				}
			}
		})
	}
}

// A node killed while h2 clients send GETs costs no request: each is
// retried on the other node.
func TestHTTP2NodeKilledUnderLoad(t *testing.T) {
	n1, n2 := startEcho(t, "n1"), startEcho(t, "n2")
	_, addr := startLB(t, testConfig(t, h2YAML(t, "", "balancing: {policy: round_robin, retries: 2}")), nodesOf(n1, n2))
	c := h2Client()
	var failed, ok atomic.Int64
	var firstErr atomic.Value
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := 0; i < 2000 && ctx.Err() == nil; i++ {
				resp, err := c.Get("https://" + addr + "/login")
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = errors.New(resp.Status)
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				ok.Add(1)
			}
		})
	}
	waitFor(t, func() bool { return n1.hits.Load() > 50 })
	n1.kill()
	before := ok.Load()
	waitFor(t, func() bool { return ok.Load() > before+200 })
	cancel()
	wg.Wait()
	if f := failed.Load(); f != 0 {
		t.Errorf("%d of %d GETs failed after node n1 was killed; first: %v", f, f+ok.Load(), firstErr.Load())
	}
}
