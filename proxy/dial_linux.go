//go:build linux && !portable

package proxy

import (
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/caddy-apisix/stream/rawsock"
	"golang.org/x/sys/unix"
)

// tcpConn is a plain TCP upstream connection dialled on a raw socket
// (dialTCP) instead of through net.Dialer: no address resolution or
// context per dial, and no getsockname/getpeername after the connect.
// The os.File polls it through Go's netpoller, so reads, writes and
// deadlines behave as a net.TCPConn's; the raw copy reaches its
// descriptor through SyscallConn.
type tcpConn struct {
	*os.File
	remote netip.AddrPort
	// fd is the socket, for the raw copy (valid until Close)
	fd int
}

var _ net.Conn = (*tcpConn)(nil)

// LocalAddr is read from the socket when asked for (the data path never
// does).
func (c *tcpConn) LocalAddr() net.Addr {
	var ap netip.AddrPort
	if rc, err := c.File.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			if sa, err := unix.Getsockname(int(fd)); err == nil {
				switch sa := sa.(type) {
				case *unix.SockaddrInet4:
					ap = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
				case *unix.SockaddrInet6:
					ap = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port))
				}
			}
		})
	}
	return net.TCPAddrFromAddrPort(ap)
}

// RemoteAddr is the node's address.
func (c *tcpConn) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(c.remote) }

// CloseWrite half-closes the connection.
func (c *tcpConn) CloseWrite() error {
	rc, err := c.File.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = rawsock.ShutdownWrite(fd) }); err != nil {
		return err
	}
	return serr
}

// dialTCP connects to addr, an IP literal and port, before deadline on a
// raw socket. ok is false when addr is a host name or carries an IPv6 zone:
// the caller then dials through net.
func dialTCP(addr string, deadline time.Time) (conn net.Conn, ok bool, err error) {
	ap, perr := netip.ParseAddrPort(addr)
	if perr != nil || ap.Addr().Zone() != "" {
		return nil, false, nil
	}
	fd, err := rawsock.ConnectTCP(ap)
	if err != nil {
		return nil, true, &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(ap), Err: err}
	}
	f := os.NewFile(uintptr(fd), "tcp")
	c := &tcpConn{File: f, remote: ap, fd: fd}
	rc, err := f.SyscallConn()
	if err == nil {
		// the connect's deadline is armed only before the first wait: a
		// connect that has finished by the first check (to a node on
		// this host) costs no timer. The callback may set it: it runs
		// holding the write lock, which deadlines do not take.
		var cerr error
		armed := false
		err = rc.Write(func(fd uintptr) bool {
			var done bool
			done, cerr = rawsock.ConnectDone(int(fd), ap)
			if !done && !armed {
				armed = true
				_ = f.SetWriteDeadline(deadline)
			}
			return done
		})
		if err == nil {
			err = cerr
		}
		if armed {
			_ = f.SetWriteDeadline(time.Time{})
		}
	}
	if err != nil {
		f.Close()
		return nil, true, &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(ap), Err: err}
	}
	return c, true, nil
}

// rawConnOf is the RawConn of a plain TCP connection, accepted (net) or
// dialled (tcpConn), and its descriptor when known without asking the
// RawConn (a tcpConn's), else -1; ok is false for anything else (TLS,
// wrappers).
func rawConnOf(c net.Conn) (rc syscall.RawConn, fd int, ok bool) {
	switch c := c.(type) {
	case *net.TCPConn:
		rc, err := c.SyscallConn()
		return rc, -1, err == nil
	case *tcpConn:
		rc, err := c.File.SyscallConn()
		return rc, c.fd, err == nil
	}
	return nil, -1, false
}
