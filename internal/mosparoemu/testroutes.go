package mosparoemu

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// Echo is the JSON body of /__echo: what arrived at the node, for forwarding tests.
type Echo struct {
	Node   string `json:"node"`
	Method string `json:"method"`
	// URI is the request target exactly as received (origin or absolute form).
	URI   string `json:"uri"`
	Proto string `json:"proto"`
	// Headers are the header lines in arrival order, names and values as received (values
	// without surrounding whitespace), duplicates kept.
	Headers    []EchoHeader `json:"headers"`
	RemoteAddr string       `json:"remoteAddr"`
	BodyLength int          `json:"bodyLength"`
	BodySHA256 string       `json:"bodySha256"`
}

// EchoHeader is one received header line.
type EchoHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Values returns the values of every line whose name matches case-insensitively, in order.
func (e *Echo) Values(name string) []string {
	var out []string
	for _, h := range e.Headers {
		if equalFoldASCII(h.Name, name) {
			out = append(out, h.Value)
		}
	}
	return out
}

func equalFoldASCII(a, b string) bool {
	return bytes.EqualFold([]byte(a), []byte(b))
}

// serveEcho answers /__echo for any method with an Echo of the request.
func (n *Node) serveEcho(ctx *fasthttp.RequestCtx) {
	body := ctx.Request.Body()
	sum := sha256.Sum256(body)
	e := Echo{
		Node:       n.name,
		Method:     string(ctx.Method()),
		URI:        string(ctx.Request.Header.RequestURI()),
		Proto:      string(ctx.Request.Header.Protocol()),
		Headers:    rawHeaderLines(ctx.Request.Header.RawHeaders()),
		RemoteAddr: ctx.RemoteAddr().String(),
		BodyLength: len(body),
		BodySHA256: hex.EncodeToString(sum[:]),
	}
	out, err := json.Marshal(&e)
	if err != nil {
		ctx.Error(err.Error(), fasthttp.StatusInternalServerError)
		return
	}
	serveJSON(ctx, fasthttp.StatusOK, out)
}

// rawHeaderLines splits the header block as received into lines (fasthttp keeps the wire
// bytes apart from its normalized copy).
func rawHeaderLines(raw []byte) []EchoHeader {
	out := []EchoHeader{}
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			continue
		}
		name, value, _ := bytes.Cut(line, []byte(":"))
		out = append(out, EchoHeader{Name: string(name), Value: string(bytes.Trim(value, " \t"))})
	}
	return out
}

// serveTest answers /__sleep?ms=N (sleep, then 200; Close interrupts) and /__status?code=N
// (that status with a short body; N outside 200..599 gives 400).
func (n *Node) serveTest(ctx *fasthttp.RequestCtx, inc *incarnation, path []byte) {
	args := ctx.QueryArgs()
	if string(path) == "/__counts" {
		// The per-route counters as JSON, for tests that run the node in
		// another process or network namespace.
		counts := make(map[string]int64, len(routeNames))
		for _, name := range routeNames {
			counts[name] = n.Count(name)
		}
		b, _ := json.Marshal(counts)
		ctx.SetStatusCode(fasthttp.StatusOK)
		ctx.Response.Header.SetContentType("application/json")
		ctx.Response.SetBody(b)
		return
	}
	if string(path) == "/__sleep" {
		ms, _ := strconv.Atoi(string(args.Peek("ms")))
		if ms > 0 && !sleep(time.Duration(ms)*time.Millisecond, inc.stop) {
			ctx.SetConnectionClose()
			return
		}
		ctx.SetStatusCode(fasthttp.StatusOK)
		ctx.Response.Header.SetContentTypeBytes(ctText)
		ctx.Response.SetBodyString("slept " + strconv.Itoa(ms) + "ms\n")
		return
	}
	code, err := strconv.Atoi(string(args.Peek("code")))
	if err != nil || code < 200 || code > 599 {
		ctx.SetStatusCode(fasthttp.StatusBadRequest)
		ctx.Response.Header.SetContentTypeBytes(ctText)
		ctx.Response.SetBodyString("code must be 200..599\n")
		return
	}
	ctx.SetStatusCode(code)
	ctx.Response.Header.SetContentTypeBytes(ctText)
	ctx.Response.SetBodyString("status " + strconv.Itoa(code) + " from " + n.name + "\n")
}
