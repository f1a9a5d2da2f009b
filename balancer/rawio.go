package balancer

import (
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
