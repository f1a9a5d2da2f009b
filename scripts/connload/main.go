// Command connload holds many client connections open against a listener,
// idle keep-alive or with a half-sent request, for scripts/conn-rss.sh to
// measure what they cost the LB (issue 11, item 11).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listener to connect to")
	n := flag.Int("n", 10000, "connections to open")
	mode := flag.String("mode", "idle", "idle (one request answered, then kept) or half (a request with half its body)")
	sources := flag.Int("sources", 40, "spread over 127.0.0.1..127.0.0.N as source addresses")
	hold := flag.Duration("hold", time.Minute, "how long to hold them at most (SIGTERM ends sooner)")
	flag.Parse()
	var conns []net.Conn
	refused := 0
	for i := 0; i < *n; i++ {
		src := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i%*sources))}
		d := net.Dialer{LocalAddr: src, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", *addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "dial:", err)
			break
		}
		if !exchange(c, *mode) {
			refused++
			c.Close()
			continue
		}
		conns = append(conns, c)
	}
	if *mode == "half" {
		conns, refused = dropClosed(conns)
	}
	fmt.Printf("READY open=%d refused=%d\n", len(conns), refused)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sig:
	case <-time.After(*hold):
	}
	for _, c := range conns {
		c.Close()
	}
}

// exchange puts c in the wanted state and reports whether the LB kept it.
func exchange(c net.Conn, mode string) bool {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	if mode == "half" {
		if _, err := c.Write([]byte("POST /api/v1/frontend/check-form-data HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n" + strings.Repeat("x", 50))); err != nil {
			return false
		}
		return true // told apart later by dropClosed
	}
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")); err != nil {
		return false
	}
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 ") {
		return false
	}
	for { // headers, then the Content-Length body the LB's JSON error has
		l, err := br.ReadString('\n')
		if err != nil {
			return false
		}
		if l == "\r\n" {
			break
		}
	}
	return true
}

// dropClosed closes and counts the half-sent connections the LB has closed
// (over a cap it closes at accept, after the client's write succeeded).
// By the time all are open their end of stream has long arrived, so a
// read that waits a millisecond and times out means the LB holds it.
func dropClosed(conns []net.Conn) ([]net.Conn, int) {
	var kept []net.Conn
	buf := make([]byte, 1)
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
		_, err := c.Read(buf)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			_ = c.SetReadDeadline(time.Time{})
			kept = append(kept, c)
			continue
		}
		c.Close()
	}
	return kept, len(conns) - len(kept)
}
