//go:build linux && !portable

package rawsock

import (
	"net/netip"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ShutdownWrite half-closes a socket.
func ShutdownWrite(fd uintptr) error {
	if _, _, e := unix.RawSyscall(unix.SYS_SHUTDOWN, fd, unix.SHUT_WR, 0); e != 0 {
		return os.NewSyscallError("shutdown", e)
	}
	return nil
}

// ConnectTCP starts a non-blocking connect to ap on a new socket with
// TCP_NODELAY set (as Go's net does for every TCP connection) and returns
// the socket. The connect usually is still in progress: ConnectDone tells
// when it has finished. ap must not carry an IPv6 zone.
func ConnectTCP(ap netip.AddrPort) (int, error) {
	var sa Sockaddr
	v4 := ap.Addr().Unmap().Is4()
	sa.Set(ap, v4)
	family := unix.AF_INET6
	if v4 {
		family = unix.AF_INET
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	switch err := connect(fd, &sa); err {
	case nil, unix.EINPROGRESS, unix.EALREADY:
		return fd, nil
	default:
		_ = unix.Close(fd)
		return -1, os.NewSyscallError("connect", err)
	}
}

// ConnectDone reports whether the connect that ConnectTCP started on fd
// has finished, and its error if it failed. A second connect(2) answers
// both in one call: EALREADY while in progress, EISCONN once connected,
// the connect's own error otherwise.
func ConnectDone(fd int, ap netip.AddrPort) (bool, error) {
	var sa Sockaddr
	sa.Set(ap, ap.Addr().Unmap().Is4())
	switch err := connect(fd, &sa); err {
	case unix.EALREADY, unix.EINPROGRESS:
		return false, nil
	case unix.EISCONN, nil:
		return true, nil
	default:
		return true, os.NewSyscallError("connect", err)
	}
}

// connect starts a connect; after EINTR it goes on in the background and
// rawCall asks again.
func connect(fd int, sa *Sockaddr) error {
	if _, e := rawCall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa.raw)), uintptr(sa.n)); e != 0 {
		return e
	}
	return nil
}
