//go:build linux && !portable

package rawsock

import (
	"net"
	"net/netip"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// IsIPv4Socket reports whether the socket fd is AF_INET (as opposed to
// AF_INET6, which dual-stack wildcard sockets are).
func IsIPv4Socket(fd uintptr) bool {
	sa, err := unix.Getsockname(int(fd))
	if err != nil {
		return false
	}
	_, v4 := sa.(*unix.SockaddrInet4)
	return v4
}

// EnablePacketInfo asks for IP(V6)_PKTINFO on every datagram of a
// wildcard socket: its destination address.
func EnablePacketInfo(fd uintptr, sock6 bool) {
	if sock6 {
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
	}
	_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
}

// Sockaddr is a peer address encoded once for every sendmsg to it.
type Sockaddr struct {
	raw unix.RawSockaddrInet6
	n   uint32
}

// Set encodes ap for a socket of the given family (IPv4 clients of a
// dual-stack socket become IPv4-mapped).
func (sa *Sockaddr) Set(ap netip.AddrPort, v4Socket bool) {
	port := (*[2]byte)(unsafe.Pointer(&sa.raw.Port))
	port[0], port[1] = byte(ap.Port()>>8), byte(ap.Port())
	if v4Socket {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa.raw))
		sa4.Family = unix.AF_INET
		sa4.Addr = ap.Addr().Unmap().As4()
		sa.n = unix.SizeofSockaddrInet4
		return
	}
	sa.raw.Family = unix.AF_INET6
	sa.raw.Addr = ap.Addr().As16()
	sa.n = unix.SizeofSockaddrInet6
}

// addrPort decodes a sockaddr_in or sockaddr_in6, IPv4-mapped addresses
// unmapped.
func addrPort(sa *unix.RawSockaddrInet6) netip.AddrPort {
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		p := (*[2]byte)(unsafe.Pointer(&sa4.Port))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), uint16(p[0])<<8|uint16(p[1]))
	case unix.AF_INET6:
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(p[0])<<8|uint16(p[1]))
	}
	return netip.AddrPort{}
}

// RecvMsg reads one datagram into buf and its control messages into oob.
// syscall.EAGAIN means none is waiting.
func RecvMsg(fd uintptr, buf, oob []byte) (n, oobn int, from netip.AddrPort, err error) {
	var (
		name unix.RawSockaddrInet6
		iov  = unix.Iovec{Base: unsafe.SliceData(buf)}
		msg  = unix.Msghdr{
			Name:    (*byte)(unsafe.Pointer(&name)),
			Namelen: unix.SizeofSockaddrInet6,
			Iov:     &iov,
			Iovlen:  1,
			Control: unsafe.SliceData(oob),
		}
	)
	iov.SetLen(len(buf))
	msg.SetControllen(len(oob))
	r, e := rawCall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&msg)), 0)
	if e != 0 {
		return 0, 0, netip.AddrPort{}, e
	}
	return int(r), int(msg.Controllen), addrPort(&name), nil
}

// SendMsg sends buf to to, with the control messages oob (the source
// address). syscall.EAGAIN means the socket buffer is full.
func SendMsg(fd uintptr, buf []byte, to *Sockaddr, oob []byte) error {
	iov := unix.Iovec{Base: unsafe.SliceData(buf)}
	iov.SetLen(len(buf))
	msg := unix.Msghdr{
		Name:    (*byte)(unsafe.Pointer(&to.raw)),
		Namelen: to.n,
		Iov:     &iov,
		Iovlen:  1,
	}
	if len(oob) > 0 {
		msg.Control = &oob[0]
		msg.SetControllen(len(oob))
	}
	if _, e := rawCall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&msg)), 0); e != 0 {
		return e
	}
	return nil
}

// Read is a raw read(2) on a socket that never blocks; EINTR is retried.
func Read(fd int, b []byte) (int, error) { return rawIO(unix.SYS_READ, fd, b) }

// Write is a raw write(2) on a socket that never blocks; EINTR is
// retried.
func Write(fd int, b []byte) (int, error) { return rawIO(unix.SYS_WRITE, fd, b) }

func rawIO(trap uintptr, fd int, b []byte) (int, error) {
	n, e := rawCall(trap, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// rawCall makes a system call of three arguments that never blocks,
// again while a signal interrupts it (EINTR).
func rawCall(trap, a1, a2, a3 uintptr) (uintptr, unix.Errno) {
	for {
		r, _, e := unix.RawSyscall(trap, a1, a2, a3)
		if e != unix.EINTR {
			return r, e
		}
	}
}

// Close closes a raw socket.
func Close(fd int) error { return unix.Close(fd) }

// ConnectUDP returns a non-blocking UDP socket connected to addr
// (host:port; a host name is resolved).
func ConnectUDP(addr string) (int, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		ua, rerr := net.ResolveUDPAddr("udp", addr)
		if rerr != nil {
			return -1, rerr
		}
		ap = ua.AddrPort()
	}
	ip := ap.Addr().Unmap()
	var (
		family = unix.AF_INET
		sa     unix.Sockaddr
	)
	if ip.Is4() {
		sa = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ip.As4()}
	} else {
		family = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ip.As16()}
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	if err := unix.Connect(fd, sa); err != nil {
		_ = unix.Close(fd)
		return -1, &net.OpError{Op: "dial", Net: "udp", Addr: net.UDPAddrFromAddrPort(ap), Err: os.NewSyscallError("connect", err)}
	}
	return fd, nil
}

// PacketDst finds the destination address in IP_PKTINFO/IPV6_PKTINFO.
func PacketDst(oob []byte) (netip.Addr, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return netip.Addr{}, false
	}
	for _, m := range msgs {
		switch {
		case m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_PKTINFO && len(m.Data) >= unix.SizeofInet4Pktinfo:
			// struct in_pktinfo { int ifindex; in_addr spec_dst; in_addr addr; }
			var a [4]byte
			copy(a[:], m.Data[8:12])
			return netip.AddrFrom4(a), true
		case m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_PKTINFO && len(m.Data) >= unix.SizeofInet6Pktinfo:
			var a [16]byte
			copy(a[:], m.Data[:16])
			return netip.AddrFrom16(a).Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// SourceOOB builds the control message that makes a reply leave from
// src.
func SourceOOB(src netip.Addr, sock6 bool) []byte {
	if sock6 {
		b := make([]byte, unix.CmsgSpace(unix.SizeofInet6Pktinfo))
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
		h.SetLen(unix.CmsgLen(unix.SizeofInet6Pktinfo))
		a := src.As16() // v4 becomes v4-mapped, which Linux accepts
		copy(b[unix.CmsgLen(0):], a[:])
		return b
	}
	b := make([]byte, unix.CmsgSpace(unix.SizeofInet4Pktinfo))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
	h.SetLen(unix.CmsgLen(unix.SizeofInet4Pktinfo))
	a := src.As4()
	copy(b[unix.CmsgLen(0)+4:], a[:]) // spec_dst
	return b
}

// Common errors of the calls above, for comparisons.
var (
	EAGAIN       error = syscall.EAGAIN
	ECONNREFUSED error = syscall.ECONNREFUSED
	ENOBUFS      error = syscall.ENOBUFS
	ENOMEM       error = syscall.ENOMEM
)
