// Command minproxy is the least a fasthttp reverse proxy can do: round robin
// over the nodes, HostClient.Do, no header rewriting, no timeouts, no
// health. scripts/bench.sh can load it beside mosparo-lb (BENCH_MINPROXY=1)
// to show how much of mosparo-lb's CPU per request is its own work and how
// much is Go and fasthttp's I/O (docs/benchmarks.md).
//
//	minproxy -listen 127.0.0.1:8080 127.0.0.1:9001 127.0.0.1:9002
package main

import (
	"flag"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/valyala/fasthttp"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to serve on")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "minproxy: name at least one node address")
		os.Exit(2)
	}
	var nodes []*fasthttp.HostClient
	for _, a := range flag.Args() {
		nodes = append(nodes, &fasthttp.HostClient{Addr: a, NoDefaultUserAgentHeader: true, ReadBufferSize: 16 << 10, WriteBufferSize: 16 << 10})
	}
	var next atomic.Uint64
	srv := &fasthttp.Server{
		WriteBufferSize: 32 << 10,
		Handler: func(ctx *fasthttp.RequestCtx) {
			hc := nodes[next.Add(1)%uint64(len(nodes))]
			if err := hc.Do(&ctx.Request, &ctx.Response); err != nil {
				ctx.Error("bad gateway", fasthttp.StatusBadGateway)
			}
		},
	}
	if err := srv.ListenAndServe(*listen); err != nil {
		fmt.Fprintln(os.Stderr, "minproxy:", err)
		os.Exit(1)
	}
}
