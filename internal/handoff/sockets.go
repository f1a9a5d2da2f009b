package handoff

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/coreos/go-systemd/v22/activation"
	"golang.org/x/sys/unix"
)

// Sockets holds the listening sockets a process inherited until a listener
// claims them by address, and every listener it handed out, so an upgrade
// can pass them on. The zero value is not usable; use Inherit or Empty.
// Safe for concurrent use.
type Sockets struct {
	source    Source
	inherited []string      // what arrived, described for the log
	ready     *os.File      // upgrade child of a parent that passed a pipe: where to report readiness
	conv      *net.UnixConn // upgrade child: the conversation with the parent (conversation.go)
	reported  bool          // ReportReady wrote

	mu    sync.Mutex
	spare []*inherited    // not claimed yet, in fd order
	held  []*heldListener // handed out and not closed, in order
}

// inherited is one adopted socket waiting for its listener.
type inherited struct {
	ln   *net.TCPListener
	name string
	fd   int // the number it arrived as, for messages
	addr netip.AddrPort
}

func (in *inherited) String() string {
	s := "fd " + strconv.Itoa(in.fd) + " (" + in.addr.String()
	if in.name != "" {
		s += ", name " + strconv.Quote(in.name)
	}
	return s + ")"
}

// Empty returns a Sockets without inherited sockets: Listen binds
// everything.
func Empty() *Sockets { return &Sockets{} }

// OSProcess is the running process, for Inherit.
func OSProcess() Process {
	return Process{LookupEnv: os.LookupEnv, PID: os.Getpid(), PPID: os.Getppid()}
}

// Inherit adopts the sockets passed to this process (OSProcess), by systemd
// or by an upgrading parent, and clears the variables so nothing started
// later mistakes them for its own. It always returns a usable Sockets: with
// ErrOtherProcess it is empty and the caller may only warn; any other error
// is fatal at startup (a hostile or broken environment, or a descriptor that
// is not a listening TCP socket).
func Inherit(p Process) (*Sockets, error) {
	env, err := ParseEnv(p)
	switch {
	case errors.Is(err, ErrOtherProcess):
		clearEnv()
		return Empty(), err
	case err != nil:
		return Empty(), err
	case env.Source == None:
		return Empty(), nil
	}
	var files []*os.File
	if env.Source == Systemd {
		// activation checks LISTEN_PID again, marks the descriptors
		// close-on-exec and unsets the variables.
		files = activation.Files(true)
		if len(files) != env.Count {
			closeFiles(files)
			return Empty(), fmt.Errorf("%w: LISTEN_FDS=%d but %d descriptors were adopted", ErrEnvironment, env.Count, len(files))
		}
	} else {
		for fd := firstFD; fd < firstFD+env.Count; fd++ {
			syscall.CloseOnExec(fd)
			files = append(files, os.NewFile(uintptr(fd), "inherited"))
		}
	}
	s := &Sockets{source: env.Source}
	if env.ReadyFD != 0 {
		syscall.CloseOnExec(env.ReadyFD)
		f := os.NewFile(uintptr(env.ReadyFD), "upgrade ready")
		c, err := net.FileConn(f)
		if uc, ok := c.(*net.UnixConn); err == nil && ok {
			f.Close()
			s.conv = uc
		} else {
			if c != nil {
				c.Close()
			}
			s.ready = f // a pipe: the parent only waits for the ready byte
		}
	}
	clearEnv()
	if s.spare, err = adopt(files, env.Names, firstFD); err != nil {
		if s.ready != nil {
			s.ready.Close()
		}
		if s.conv != nil {
			s.conv.Close()
		}
		return Empty(), err
	}
	for _, in := range s.spare {
		s.inherited = append(s.inherited, in.String())
	}
	return s, nil
}

func clearEnv() {
	for _, v := range []string{envListenPID, envListenFDs, envListenFDNames, envUpgradeParent, envUpgradeFDs, envUpgradeFDNames, envUpgradeReadyFD} {
		_ = os.Unsetenv(v) // never fails on unix
	}
}

// adopt turns each file into a listener, closing every file. It refuses
// what is not a listening TCP socket and two sockets on one address (which
// listener would get which?). fd0 numbers the files in messages.
func adopt(files []*os.File, names []string, fd0 int) ([]*inherited, error) {
	defer closeFiles(files)
	var out []*inherited
	fail := func(err error) ([]*inherited, error) {
		for _, in := range out {
			in.ln.Close()
		}
		return nil, err
	}
	for i, f := range files {
		in := &inherited{fd: fd0 + i}
		if i < len(names) {
			in.name = names[i]
		}
		if err := checkListening(f); err != nil {
			return fail(fmt.Errorf("handoff: inherited %s: %w", in, err))
		}
		ln, err := net.FileListener(f)
		if err != nil {
			return fail(fmt.Errorf("handoff: inherited %s: %w", in, err))
		}
		tl, ok := ln.(*net.TCPListener)
		if !ok {
			ln.Close()
			return fail(fmt.Errorf("handoff: inherited %s: not a TCP listener", in))
		}
		in.ln = tl
		in.addr = tl.Addr().(*net.TCPAddr).AddrPort()
		in.addr = netip.AddrPortFrom(in.addr.Addr().Unmap(), in.addr.Port())
		for _, o := range out {
			if o.addr == in.addr {
				tl.Close()
				return fail(fmt.Errorf("handoff: inherited %s and %s listen on the same address", o, in))
			}
		}
		out = append(out, in)
	}
	return out, nil
}

// checkListening reports why f is not a listening TCP socket, if it is not.
func checkListening(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var typ, domain, accepting int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		if typ, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE); serr != nil {
			return
		}
		if domain, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN); serr != nil {
			return
		}
		accepting, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	}); err != nil {
		return err
	}
	switch {
	case errors.Is(serr, unix.ENOTSOCK):
		return errors.New("not a socket")
	case errors.Is(serr, unix.EBADF):
		return errors.New("not an open descriptor")
	case serr != nil:
		return serr
	case domain != unix.AF_INET && domain != unix.AF_INET6:
		return errors.New("not an IPv4 or IPv6 socket")
	case typ != unix.SOCK_STREAM:
		return errors.New("not a stream (TCP) socket")
	case accepting != 1:
		return errors.New("not listening")
	}
	return nil
}

// Source says where the inherited sockets came from.
func (s *Sockets) Source() Source { return s.source }

// Inherited describes the sockets that arrived ("fd 3 (127.0.0.1:80, name
// "web")"), for the log.
func (s *Sockets) Inherited() []string { return s.inherited }

// Listen returns the inherited socket listening on address, or binds a new
// one (with IP_FREEBIND, so an address this host does not hold yet, a VIP,
// is fine). It is the daemon's listen hook; what it returns, once closed,
// is no longer passed on at an upgrade. It is ListenNamed without a name.
func (s *Sockets) Listen(network, address string) (net.Listener, error) {
	return s.ListenNamed(network, address, "")
}

// ErrNameMismatch: a listener names a socket (listen: name:) that was not
// passed, or that listens on another address.
var ErrNameMismatch = errors.New("handoff: socket name mismatch")

// ListenNamed is Listen for a listener that names its socket (systemd's
// FileDescriptorName=). Given a name, the inherited socket of that name
// serves it and must listen on address; when none has it, a socket from
// systemd is an error (the socket unit and the configuration disagree),
// one from an upgrading parent is matched by address (the parent may have
// bound it unnamed), and without inherited sockets a new one is bound. The
// name is passed on at an upgrade.
func (s *Sockets) ListenNamed(network, address, name string) (net.Listener, error) {
	want, ok := parseWanted(network, address) // may resolve a name: not under the lock
	s.mu.Lock()
	defer s.mu.Unlock()
	if name != "" {
		var named []*inherited
		for _, in := range s.spare {
			if in.name == name {
				named = append(named, in)
			}
		}
		for _, in := range named {
			if ok && want.matches(in.addr) {
				return s.claimLocked(in), nil
			}
		}
		switch {
		case len(named) > 0:
			return nil, fmt.Errorf("%w: listener %s wants the socket named %q, but %s listens elsewhere; "+
				"give ListenStream= and the address the same value", ErrNameMismatch, address, name, named[0])
		case s.source == Systemd:
			return nil, fmt.Errorf("%w: listener %s wants the socket named %q, but systemd passed none of that name (%s); "+
				"set FileDescriptorName=%s in the socket unit or change the listener's name", ErrNameMismatch, address, name, s.spareLocked(), name)
		}
	}
	for _, in := range s.spare {
		if ok && want.matches(in.addr) {
			return s.claimLocked(in), nil
		}
	}
	lc := net.ListenConfig{Control: freebind}
	ln, err := lc.Listen(context.Background(), network, address)
	if err != nil {
		return nil, err
	}
	return s.holdLocked(ln.(*net.TCPListener), name), nil
}

// claimLocked takes in out of the spare sockets and hands it out.
func (s *Sockets) claimLocked(in *inherited) net.Listener {
	for i, o := range s.spare {
		if o == in {
			s.spare = append(s.spare[:i], s.spare[i+1:]...)
			break
		}
	}
	return s.holdLocked(in.ln, in.name)
}

// spareLocked describes the sockets not claimed yet, for messages.
func (s *Sockets) spareLocked() string {
	if len(s.spare) == 0 {
		return "no socket left"
	}
	d := make([]string, len(s.spare))
	for i, in := range s.spare {
		d[i] = in.String()
	}
	return strings.Join(d, ", ")
}

// Unclaimed closes the inherited sockets no Listen call took and reports
// them: after startup each one is an address the configuration no longer
// serves while systemd (or the parent) still directs clients to it.
func (s *Sockets) Unclaimed() error {
	s.mu.Lock()
	spare := s.spare
	s.spare = nil
	s.mu.Unlock()
	if len(spare) == 0 {
		return nil
	}
	names := make([]string, len(spare))
	for i, in := range spare {
		in.ln.Close()
		names[i] = in.String()
	}
	return fmt.Errorf("handoff: inherited socket(s) %s match no listen: address nor admin.listen; "+
		"list the same addresses in the socket unit and the configuration", strings.Join(names, ", "))
}

func (s *Sockets) holdLocked(ln *net.TCPListener, name string) *heldListener {
	h := &heldListener{TCPListener: ln, owner: s, name: name}
	s.held = append(s.held, h)
	return h
}

// handover duplicates every held listener for a child, with its name.
func (s *Sockets) handover() ([]*os.File, []string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	files := make([]*os.File, 0, len(s.held))
	names := make([]string, 0, len(s.held))
	for _, h := range s.held {
		f, err := h.File()
		if err != nil {
			closeFiles(files)
			return nil, nil, fmt.Errorf("handoff: %s: %w", h.Addr(), err)
		}
		files = append(files, f)
		names = append(names, h.name)
	}
	return files, names, nil
}

// heldListener is a listener handed out by Listen; closing it takes it out
// of what an upgrade passes on.
type heldListener struct {
	*net.TCPListener
	owner *Sockets
	name  string
}

func (h *heldListener) Close() error {
	s := h.owner
	s.mu.Lock()
	for i, o := range s.held {
		if o == h {
			s.held = append(s.held[:i], s.held[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	return h.TCPListener.Close()
}

// wanted is a configured address as matching needs it.
type wanted struct {
	ip   netip.Addr // invalid for an empty host
	port uint16
}

// parseWanted resolves a configured address the way net.Listen would. It
// reports false for what no inherited socket can serve: an unparsable
// address, or port 0, which asks for a new port.
func parseWanted(network, address string) (wanted, bool) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return wanted{}, false
	}
	p, err := net.LookupPort(network, port)
	if err != nil || p == 0 {
		return wanted{}, false
	}
	w := wanted{port: uint16(p)}
	if host == "" {
		return w, true
	}
	if w.ip, err = netip.ParseAddr(host); err != nil {
		ta, err := net.ResolveTCPAddr(network, address)
		if err != nil {
			return wanted{}, false
		}
		w.ip = ta.AddrPort().Addr()
	}
	w.ip = w.ip.Unmap()
	return w, true
}

// matches reports whether a socket bound to addr serves w: the same port,
// and the same IP, where an empty host (":80") takes an unspecified socket
// of either family (systemd's ListenStream=80 is a dual-stack [::]:80).
func (w wanted) matches(addr netip.AddrPort) bool {
	if w.port != addr.Port() {
		return false
	}
	if !w.ip.IsValid() {
		return addr.Addr().IsUnspecified()
	}
	return w.ip == addr.Addr()
}

// freebind lets the socket bind an address not (yet) on this host, as the
// balancer does for the listeners it binds itself.
func freebind(network, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if network == "tcp6" {
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_FREEBIND, 1); serr != nil {
				return
			}
		}
		serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// Interface guards.
var _ net.Listener = (*heldListener)(nil)
