package handoff

import (
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
)

func listenerFile(t *testing.T, address string) (*os.File, string) {
	t.Helper()
	ln, err := net.Listen("tcp", address)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	return f, ln.Addr().String()
}

func TestAdoptRefusesWhatIsNotAListeningTCPSocket(t *testing.T) {
	udp := func(t *testing.T) *os.File {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		f, _ := c.(*net.UDPConn).File()
		return f
	}
	pipe := func(t *testing.T) *os.File {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		w.Close()
		return r
	}
	regular := func(t *testing.T) *os.File {
		f, err := os.CreateTemp(t.TempDir(), "x")
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	unbound := func(t *testing.T) *os.File {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		return os.NewFile(uintptr(fd), "unbound")
	}
	unixSock := func(t *testing.T) *os.File {
		ln, err := net.Listen("unix", t.TempDir()+"/s")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		f, _ := ln.(*net.UnixListener).File()
		return f
	}
	closed := func(t *testing.T) *os.File {
		// A number far above what this process opens; a just-closed
		// one would be reused by the next listener of the test.
		return os.NewFile(60000, "closed")
	}
	tests := []struct {
		name string
		file func(*testing.T) *os.File
		want string
	}{
		{"udp socket", udp, "not a stream"},
		{"pipe", pipe, "not a socket"},
		{"regular file", regular, "not a socket"},
		{"tcp socket not listening", unbound, "not listening"},
		{"unix listener", unixSock, "not an IPv4 or IPv6"},
		{"closed descriptor", closed, "not an open descriptor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			good, _ := listenerFile(t, "127.0.0.1:0")
			got, err := adopt([]*os.File{good, tt.file(t)}, []string{"web", "bad"}, 3)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "fd 4") {
				t.Fatalf("adopt(listener, %s) = %v, %v, want an error naming fd 4 and %q", tt.name, got, err, tt.want)
			}
		})
	}
}

func TestAdoptRefusesTwoSocketsOnOneAddress(t *testing.T) {
	a, addr := listenerFile(t, "127.0.0.1:0")
	ln, err := net.FileListener(a)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	b, _ := ln.(*net.TCPListener).File() // the same socket twice
	if _, err := adopt([]*os.File{a, b}, nil, 3); err == nil || !strings.Contains(err.Error(), "same address") {
		t.Fatalf("adopt of %s twice = %v, want a same-address error", addr, err)
	}
}

func TestListenClaimsInheritedSocketsByAddress(t *testing.T) {
	f1, a1 := listenerFile(t, "127.0.0.1:0")
	f2, a2 := listenerFile(t, "127.0.0.1:0")
	spare, err := adopt([]*os.File{f1, f2}, []string{"web", "mosparo-lb.socket"}, 3)
	if err != nil {
		t.Fatal(err)
	}
	s := &Sockets{source: Systemd, spare: spare}
	ln, err := s.Listen("tcp", a2)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if got := ln.Addr().String(); got != a2 {
		t.Errorf("Listen(%s) gave %s", a2, got)
	}
	if ln.(*heldListener).TCPListener != spare[1].ln {
		t.Error("Listen bound a new socket instead of taking the inherited one")
	}
	other, err := s.Listen("tcp", "127.0.0.1:0") // nothing inherited: bound
	if err != nil {
		t.Fatal(err)
	}
	if files, _, err := s.handover(); err != nil || len(files) != 2 {
		t.Fatalf("handover = %d files, %v, want 2", len(files), err)
	} else {
		closeFiles(files)
	}
	other.Close()
	files, names, err := s.handover()
	if err != nil {
		t.Fatal(err)
	}
	closeFiles(files)
	if len(files) != 1 || names[0] != "mosparo-lb.socket" {
		t.Errorf("handover after closing the bound listener = %d files %q, want the inherited one", len(files), names)
	}
	err = s.Unclaimed()
	if err == nil || !strings.Contains(err.Error(), a1) || !strings.Contains(err.Error(), `"web"`) {
		t.Errorf("Unclaimed() = %v, want it to name %s \"web\"", err, a1)
	}
	if err := s.Unclaimed(); err != nil {
		t.Errorf("second Unclaimed() = %v, want nil", err)
	}
	// The unclaimed socket is closed: nothing accepts there any more.
	if c, err := net.Dial("tcp", a1); err == nil {
		c.Close()
		t.Errorf("%s still accepts after Unclaimed", a1)
	}
}

func TestMatches(t *testing.T) {
	ap := netip.MustParseAddrPort
	tests := []struct {
		sock    netip.AddrPort
		address string
		want    bool
	}{
		{ap("127.0.0.1:8080"), "127.0.0.1:8080", true},
		{ap("127.0.0.1:8080"), "127.0.0.1:8081", false},
		{ap("127.0.0.1:8080"), "127.0.0.2:8080", false},
		{ap("127.0.0.1:8080"), "localhost:8080", true},
		{ap("127.0.0.1:80"), "127.0.0.1:http", true},
		{ap("[::]:80"), ":80", true},
		{ap("0.0.0.0:80"), ":80", true},
		{ap("[::]:80"), "0.0.0.0:80", false},
		{ap("0.0.0.0:80"), "[::]:80", false},
		{ap("[::]:80"), "[::]:80", true},
		{ap("[2001:db8::1]:443"), "[2001:db8::1]:443", true},
		{ap("192.0.2.10:443"), "[::ffff:192.0.2.10]:443", true},
		{ap("127.0.0.1:41000"), "127.0.0.1:0", false},
		{ap("127.0.0.1:80"), "127.0.0.1", false},
		{ap("127.0.0.1:80"), "127.0.0.1:nope", false},
		{ap("127.0.0.1:80"), "no-such-host.invalid:80", false},
	}
	for _, tt := range tests {
		w, ok := parseWanted("tcp", tt.address)
		if got := ok && w.matches(tt.sock); got != tt.want {
			t.Errorf("%q matches %s = %v, want %v", tt.address, tt.sock, got, tt.want)
		}
	}
}
