package balancer

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Raw system calls on non-blocking sockets. Go's ordinary syscall path
// (syscall.Syscall) tells the scheduler that the thread may block: the P is
// marked as in a system call, sysmon may hand it to another thread when the
// call spans one of its ticks, and the returning thread must then find a P
// again or sleep on a futex. A read or write on a non-blocking socket never
// blocks, but on loopback a write runs the receiver's whole TCP input in the
// same call, long enough for such hand-offs on a busy machine: issue 16's
// profiles show sysmon, futex sleeps and wake-ups at a tenth of the proxy's
// CPU. These calls are therefore made raw, as an event loop would make
// them; the cost is that the P stays with its thread for the call's few
// microseconds.

// rawWrite is write(2) on a non-blocking descriptor without the scheduler's
// syscall bookkeeping; EINTR is retried.
func rawWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	for {
		n, _, e := syscall.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(n), 0
	}
}

// rawSock reads and writes a TCP connection with raw system calls, waiting
// through the connection's RawConn so that deadlines (the watchdog's) and
// Close wake it as they wake an ordinary Read or Write. Its callbacks are
// built once per connection (newRawSock), so reads and writes allocate
// nothing. One Read and one Write may run at once, as on a net.Conn.
type rawSock struct {
	raw syscall.RawConn
	rd  func(fd uintptr) bool
	wr  func(fd uintptr) bool

	// The read and the write in progress, for the callbacks.
	rp   []byte
	rn   int
	rerr syscall.Errno
	wp   []byte
	wn   int
	werr syscall.Errno
}

// newRawSock returns the raw I/O of c, or nil when c is not a plain TCP
// connection (a test's wrapper, a PROXY-protocol reader, a pipe).
func newRawSock(c net.Conn) *rawSock {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	s := &rawSock{raw: raw}
	s.rd = s.readFD
	s.wr = s.writeFD
	return s
}

// read is net.Conn.Read: what one read(2) returns, after waiting for bytes.
func (s *rawSock) read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.rp, s.rn, s.rerr = p, 0, 0
	err := s.raw.Read(s.rd) // a deadline or Close: *net.OpError, as Read's
	n, e := s.rn, s.rerr
	s.rp = nil
	switch {
	case err != nil:
		return 0, err
	case e != 0:
		return 0, &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", e)}
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// readFD: false (park until readable) while the socket has nothing.
func (s *rawSock) readFD(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&s.rp[0])), uintptr(len(s.rp)))
		switch e {
		case 0:
			s.rn = int(n)
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		s.rerr = e
		return true
	}
}

// write is net.Conn.Write: all of p, waiting for room as needed.
func (s *rawSock) write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.wp, s.wn, s.werr = p, 0, 0
	err := s.raw.Write(s.wr)
	n, e := s.wn, s.werr
	s.wp = nil
	switch {
	case e != 0:
		return n, &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", e)}
	case err != nil:
		return n, err
	}
	return n, nil
}

// writeFD: false (park until writable) while the socket's buffer is full.
func (s *rawSock) writeFD(fd uintptr) bool {
	for s.wn < len(s.wp) {
		m, e := rawWrite(fd, s.wp[s.wn:])
		switch e {
		case 0:
			s.wn += m
		case unix.EAGAIN:
			return false
		default:
			s.werr = e
			return true
		}
	}
	return true
}

// read and write go through the raw calls when the connection has them.
func (c *watchedConn) read(p []byte) (int, error) {
	if c.rs != nil {
		return c.rs.read(p)
	}
	return c.Conn.Read(p)
}

func (c *watchedConn) write(p []byte) (int, error) {
	if c.rs != nil {
		return c.rs.write(p)
	}
	return c.Conn.Write(p)
}
