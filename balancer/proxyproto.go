package balancer

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/pires/go-proxyproto"
	"go.uber.org/zap"
)

// PROXY protocol on listeners (issue 15): a TCP load balancer in front (a
// cloud LB, HAProxy with send-proxy) opens every connection with a header
// naming the client, v1 (text) or v2 (binary), per HAProxy's
// proxy-protocol.txt. go-proxyproto parses it; this file only frames it.
//
// The header is read on the connection's first Read, in the goroutine that
// serves it (as the TLS handshake is), so a slow sender holds its own
// connection and never the accept loop. Until it is read the connection
// counts in limits.max_conns only; its place in max_conns_per_ip is taken
// under the client address the header names (connlimit.go).

// proxyPolicy is one listener's listen[].proxy_protocol.
type proxyPolicy struct {
	from    []netip.Prefix // peers that must send the header; others are refused
	timeout time.Duration  // for the header, from accept
}

// newProxyPolicies returns, per listener index, its policy (nil for a
// listener without proxy_protocol), and the shortest header timeout.
func newProxyPolicies(ls []configs.Listener) ([]*proxyPolicy, time.Duration, error) {
	var out []*proxyPolicy
	var shortest time.Duration
	for _, l := range ls {
		if l.ProxyProtocol == nil {
			out = append(out, nil)
			continue
		}
		from, err := prefixes(l.ProxyProtocol.From)
		if err != nil {
			return nil, 0, fmt.Errorf("balancer: listener %s: proxy_protocol.from: %w", l.Address, err)
		}
		p := &proxyPolicy{from: from, timeout: l.ProxyProtocol.Timeout.D()}
		if shortest == 0 || p.timeout < shortest {
			shortest = p.timeout
		}
		out = append(out, p)
	}
	return out, shortest, nil
}

// proxyPolicy is the policy of the listener at index, nil for none.
func (rt *Runtime) proxyPolicy(index int) *proxyPolicy {
	if index < len(rt.proxy) {
		return rt.proxy[index]
	}
	return nil
}

// acceptProxied admits a connection accepted on a proxy_protocol listener,
// or closes it and returns nil: a peer outside proxy_protocol.from, or
// limits.max_conns reached. Its header is due within the policy's timeout.
func (s *Server) acceptProxied(c net.Conn, peer netip.Addr, p *proxyPolicy, rt *Runtime, info *listenerInfo) *watchedConn {
	r := refusedProxyPeer
	if allowed(p.from, peer) {
		r = s.conns.admitConn(rt.cfg.Limits.MaxConns)
	} else {
		s.conns.count(r)
	}
	if r != admitted {
		c.Close()
		s.conns.logRefusal(s.logger, r, peer, s.now())
		return nil
	}
	pc := &proxyConn{Conn: c}
	wc := s.wd.watch(&watchedConn{Conn: pc, srv: s, ln: info, peer: peer, noPerIP: true})
	pc.wc = wc
	wc.arm(p.timeout, limitRead)
	return wc
}

// proxyConn is a connection from a load balancer: its first Read reads
// the PROXY header, makes the client it names the connection's client and
// passes on what followed the header.
type proxyConn struct {
	net.Conn
	wc      *watchedConn // the connection wrapping this one
	state   uint8        // touched by the serving goroutine only
	pending []byte       // client bytes read with the header
	client  atomic.Pointer[net.TCPAddr]
}

// States of a proxyConn.
const (
	headerDue uint8 = iota
	headerRead
	headerFailed
)

// Read reads the header first. A connection without a valid header in time
// reads as closed (io.EOF), so it is closed without an answer: its peer is
// a load balancer, which would not pass an HTTP error on to anyone.
func (c *proxyConn) Read(p []byte) (int, error) {
	switch c.state {
	case headerDue:
		if err := c.readHeader(); err != nil {
			c.state = headerFailed
			return 0, io.EOF
		}
		c.state = headerRead
	case headerFailed:
		return 0, io.EOF
	}
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		if len(c.pending) == 0 {
			c.pending = nil
		}
		return n, nil
	}
	return c.Conn.Read(p)
}

// RemoteAddr is the client the header named, once read.
func (c *proxyConn) RemoteAddr() net.Addr {
	if a := c.client.Load(); a != nil {
		return a
	}
	return c.Conn.RemoteAddr()
}

var errProxyRefused = errors.New("balancer: proxied client over limits.max_conns_per_ip")

// readHeader reads the header and admits the client it names.
func (c *proxyConn) readHeader() error {
	srv, lb := c.wc.srv, c.wc.peer
	h, rest, err := readProxyHeader(c.Conn)
	if err == io.EOF {
		return err // closed before a byte: a TCP health check, no fault
	}
	if err != nil {
		srv.conns.count(refusedProxyHeader)
		srv.conns.logRefusal(srv.logger, refusedProxyHeader, lb, srv.now(), zap.Error(err))
		return err
	}
	client, named := proxiedClient(h)
	if !named {
		client = netip.AddrPortFrom(lb, 0)
	}
	rt := srv.rt.Load()
	lim := rt.cfg.Limits
	if r := srv.conns.admitClient(c.wc, client.Addr(), lim.MaxConnsPerIP, rt.fwd.isTrusted(client.Addr())); r != admitted {
		srv.conns.logRefusal(srv.logger, r, client.Addr(), srv.now())
		return errProxyRefused
	}
	if named {
		c.client.Store(net.TCPAddrFromAddrPort(client))
	}
	c.pending = rest
	// The request's first byte is due within client_read, as on any
	// other connection.
	c.wc.arm(rt.clientRead, limitRead)
	return nil
}

// proxiedClient is the client a header names: the source of a PROXY
// command over TCP (v1 TCP4/TCP6, v2 STREAM over INET/INET6). A LOCAL
// command (v2, or v1 UNKNOWN) is the load balancer's own connection, a
// health check, and UNIX or UDP sources are no TCP client: the spec lets
// a receiver take those with the real peer as the client, which it stays.
func proxiedClient(h *proxyproto.Header) (netip.AddrPort, bool) {
	if !h.Command.IsProxy() {
		return netip.AddrPort{}, false
	}
	src, _, ok := h.TCPAddrs()
	if !ok {
		return netip.AddrPort{}, false
	}
	ap := src.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
}

// Header framing. The spec asks receivers to tolerate a header split over
// several segments; go-proxyproto rejects a v1 header not read whole by
// one read. So the bytes are gathered here until the header is complete
// (or cannot be one), then parsed at once. Bytes past the header are the
// client's and are kept.
const (
	proxyV1MaxLen = 107 // "PROXY UNKNOWN" + two IPv6 addresses and ports + CRLF
	proxyV2Fixed  = 16  // signature, version/command, family, length
	proxyReadSize = 256 // a v1 header or a v2 one with small TLVs, and what follows
)

var proxyV1Sig = []byte("PROXY ")

// readProxyHeader reads one header from r and returns it with the bytes
// read after it; io.EOF itself when r ends before its first byte.
func readProxyHeader(r io.Reader) (*proxyproto.Header, []byte, error) {
	buf := make([]byte, 0, proxyReadSize)
	var rerr error
	for {
		n, err := proxyHeaderLen(buf)
		switch {
		case err != nil:
			return nil, nil, err
		case n > 0 && len(buf) >= n:
			h, err := parseProxyHeader(buf[:n])
			if err != nil {
				return nil, nil, err
			}
			return h, buf[n:], nil
		case rerr == io.EOF && len(buf) == 0:
			return nil, nil, io.EOF
		case rerr != nil:
			if rerr == io.EOF {
				rerr = io.ErrUnexpectedEOF
			}
			return nil, nil, fmt.Errorf("proxy protocol header: %w", rerr)
		}
		if n > cap(buf) {
			buf = append(make([]byte, 0, n), buf...)
		}
		m, err := r.Read(buf[len(buf):cap(buf)])
		buf, rerr = buf[:len(buf)+m], err
	}
}

// proxyHeaderLen is the length of the header b starts with: 0 while b is
// too short to tell, an error once b cannot start a header.
func proxyHeaderLen(b []byte) (int, error) {
	switch {
	case len(b) == 0:
		return 0, nil
	case agreeing(b, proxyV1Sig):
		if len(b) < len(proxyV1Sig) {
			return 0, nil
		}
		if i := bytes.IndexByte(b[:min(len(b), proxyV1MaxLen)], '\n'); i >= 0 {
			return i + 1, nil
		}
		if len(b) >= proxyV1MaxLen {
			return 0, proxyproto.ErrVersion1HeaderTooLong
		}
		return 0, nil
	case agreeing(b, proxyproto.SIGV2):
		if len(b) < proxyV2Fixed {
			return 0, nil
		}
		n := binary.BigEndian.Uint16(b[14:16])
		if n > proxyproto.MaxV2HeaderSize {
			return 0, proxyproto.ErrInvalidLength
		}
		return proxyV2Fixed + int(n), nil
	}
	return 0, proxyproto.ErrNoProxyProtocol
}

// agreeing reports whether b and sig are equal over their common length.
func agreeing(b, sig []byte) bool {
	n := min(len(b), len(sig))
	return bytes.Equal(b[:n], sig[:n])
}

// parseProxyHeader parses a whole header; the buffered reader holds all of
// it, as go-proxyproto needs.
func parseProxyHeader(b []byte) (*proxyproto.Header, error) {
	br := bufio.NewReaderSize(bytes.NewReader(b), len(b))
	h, err := proxyproto.Read(br)
	if err != nil {
		return nil, err
	}
	if br.Buffered() != 0 {
		return nil, proxyproto.ErrInvalidLength // framed longer than parsed
	}
	return h, nil
}

// Interface guards.
var _ net.Conn = (*proxyConn)(nil)
