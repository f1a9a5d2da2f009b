package balancer

import (
	"net"
	"testing"
)

// The look allocates nothing: it runs before every proxied request.
func TestStaleLookAllocations(t *testing.T) {
	lb, _ := tcpPair(t)
	nc := newNodeConn(lb)
	if a := testing.AllocsPerRun(100, func() { _ = nc.stale() }); a != 0 {
		t.Fatalf("%v allocations per look", a)
	}
}

// Cost of the look on an idle loopback connection (the common case).
func BenchmarkStaleLook(b *testing.B) {
	lb, _ := tcpPair(b)
	nc := newNodeConn(lb)
	for b.Loop() {
		if nc.stale() {
			b.Fatal("stale")
		}
	}
}

// tcpPair is a loopback connection: the proxy's end and the node's.
func tcpPair(tb testing.TB) (*net.TCPConn, *net.TCPConn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		c.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}
