package balancer

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Before a pooled node connection carries a request, nodeConn.stale looks
// whether the node sent anything while it sat idle (issue 11). That look is
// a system call per proxied request, and on this project's machines system
// calls dominate the proxy's CPU (docs/benchmarks.md, issue 16), so it is
// made as cheap as the kernel allows:
//
//   - recv(MSG_PEEK|MSG_DONTWAIT) of one byte instead of poll(2) with a zero
//     timeout: the socket's receive queue is looked at directly, without
//     poll's wait-queue setup, and nothing is consumed;
//   - through RawConn.Control, not RawConn.Read: Read would also take the
//     read lock and reset the descriptor's readiness in the netpoller,
//     which a look that never waits does not need;
//   - as a raw system call (syscall.RawSyscall6): the call cannot block
//     (MSG_DONTWAIT), so telling the Go scheduler about it (entersyscall,
//     exitsyscall, sysmon retaking the P) is pure cost.
//
// poll(2) also returned EINTR now and then under the runtime's preemption
// signals, which made a healthy connection look stale; a non-blocking recv
// does not sleep, so it is not interrupted.

// peekFD is the RawConn.Control callback of stale: readable is set when the
// socket holds a byte, an end of stream or a pending error (a reset), i.e.
// everything but "nothing to read yet" (EAGAIN).
func (c *nodeConn) peekFD(fd uintptr) {
	c.readable = peekReadable(fd, &c.peekByte)
}

// peekReadable is that look on one descriptor; buf receives the peeked byte
// (MSG_PEEK leaves it in the socket).
func peekReadable(fd uintptr, buf *byte) bool {
	for {
		_, _, e := syscall.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(buf)), 1,
			unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case unix.EAGAIN:
			return false
		case unix.EINTR:
			continue
		}
		// A byte (n = 1), an end of stream (n = 0) or an error (ECONNRESET...).
		return true
	}
}
