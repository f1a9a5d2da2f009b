//lint:file-ignore SA1019 x/net/http2.Server serves one connection (ServeConn), as balancer/http2.go does.

// Command h2floor is the least an HTTP/2 server on golang.org/x/net/http2
// can do: TLS, ServeConn per connection as mosparo-lb runs it, and one
// stored answer (fetched once from a node at start) written from memory,
// no proxying. scripts/bench.sh loads it beside mosparo-lb in the h2
// workloads (BENCH_H2FLOOR=1) as the floor of x/net/http2 on this machine:
// what mosparo-lb's h2 costs above it is the adapter and the proxying,
// below it only a different HTTP/2 implementation could go
// (docs/benchmarks.md).
//
//	h2floor -listen 127.0.0.1:8443 -cert c.pem -key k.pem -from http://127.0.0.1:9001/login
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"

	"golang.org/x/net/http2"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8443", "address to serve on")
	certFile := flag.String("cert", "", "certificate (PEM)")
	keyFile := flag.String("key", "", "key (PEM)")
	from := flag.String("from", "", "URL whose answer (status, Content-Type, body) is served for every request")
	flag.Parse()
	err := run(*listen, *certFile, *keyFile, *from)
	fmt.Fprintln(os.Stderr, "h2floor:", err)
	os.Exit(1)
}

// run serves until the listener fails; it returns why.
func run(listen, certFile, keyFile, from string) error {
	resp, err := http.Get(from)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	status, ctype, clen := resp.StatusCode, []string{resp.Header.Get("Content-Type")}, []string{strconv.Itoa(len(body))}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return err
	}
	ln, err := tls.Listen("tcp", listen, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{http2.NextProtoTLS}})
	if err != nil {
		return err
	}
	// The frame size mosparo-lb advertises; otherwise x/net's defaults.
	srv := &http2.Server{MaxReadFrameSize: 16 << 10}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		hdr := w.Header()
		hdr["Content-Type"], hdr["Content-Length"] = ctype, clen
		w.WriteHeader(status)
		_, _ = w.Write(body)
	})
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go serve(srv, c, h)
	}
}

func serve(srv *http2.Server, c net.Conn, h http.Handler) {
	defer c.Close()
	tc := c.(*tls.Conn)
	if err := tc.Handshake(); err != nil {
		return
	}
	srv.ServeConn(tc, &http2.ServeConnOpts{Handler: h})
}
