package balancer

import (
	"io"
	"net"
	"testing"
	"time"
)

// The stale look reports every state of an idle node connection that must
// not carry another request (bytes, an end of stream, a reset) and nothing
// else, and consumes nothing: a connection it clears stays usable, and the
// bytes it sees are still there for whoever reads next.
func TestStaleLook(t *testing.T) {
	for _, tc := range []struct {
		name  string
		node  func(t *testing.T, c *net.TCPConn) // what the node does while the connection idles
		stale bool
	}{
		{"idle", func(*testing.T, *net.TCPConn) {}, false},
		{"one stray byte", func(t *testing.T, c *net.TCPConn) { mustWrite(t, c, "x") }, true},
		{"the rest of an answer", func(t *testing.T, c *net.TCPConn) { mustWrite(t, c, "HTTP/1.1 200 OK\r\n\r\n") }, true},
		{"closed (FIN)", func(t *testing.T, c *net.TCPConn) { _ = c.Close() }, true},
		{"half-closed", func(t *testing.T, c *net.TCPConn) { _ = c.CloseWrite() }, true},
		{"reset (RST)", func(t *testing.T, c *net.TCPConn) { _ = c.SetLinger(0); _ = c.Close() }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lb, node := tcpPair(t)
			nc := newNodeConn(lb)
			if nc.stale() {
				t.Fatal("a fresh connection is stale")
			}
			tc.node(t, node)
			// Arrival on loopback is asynchronous in principle: look until
			// the expected state shows, bounded; an idle connection must
			// stay clean for every look.
			got := false
			for i := 0; i < 200 && !got; i++ {
				got = nc.stale()
				if !tc.stale {
					if got {
						t.Fatal("an idle connection looked stale")
					}
					if i == 20 {
						break
					}
				}
				time.Sleep(5 * time.Millisecond)
			}
			if got != tc.stale {
				t.Fatalf("stale = %v, want %v", got, tc.stale)
			}
			if tc.name == "one stray byte" {
				_ = lb.SetReadDeadline(time.Now().Add(10 * time.Second))
				var b [1]byte
				if _, err := io.ReadFull(lb, b[:]); err != nil || b[0] != 'x' {
					t.Fatalf("the peeked byte was consumed: %q %v", b, err)
				}
			}
		})
	}
}

func mustWrite(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatal(err)
	}
}
