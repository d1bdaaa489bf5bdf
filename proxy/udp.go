package proxy

import (
	"errors"
	"math"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/caddy-apisix/stream/router"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// maxDatagram is the largest UDP payload; datagrams are forwarded whole.
const maxDatagram = 65536

// UDPServer proxies the datagrams of one UDP listener. Each client
// address:port is a session, matched once, with its own connected upstream
// socket; sessions end after the upstream's idle timeout. The read loop
// never waits on a session: a slow upstream cannot stall other clients.
//
// A session is a socket, a timer and a small struct, not a goroutine: one
// reply loop per listener waits on every upstream socket at once through
// its own epoll instance, and forwards the replies in batches.
type UDPServer struct {
	rt *Runtime
	pc *net.UDPConn
	// wildcard listeners learn each datagram's destination address from
	// IP(V6)_PKTINFO, to match server_addr and to reply from it.
	wildcard bool
	is6      bool
	local    netip.AddrPort

	// pcRaw reaches the listening socket for raw recvmsg/sendmsg; fam is
	// its address family (AF_INET6 for dual-stack wildcard sockets).
	pcRaw syscall.RawConn
	fam   int
	// state of Serve's read callback
	rbuf, roob []byte
	rn, roobn  int
	rfrom      netip.AddrPort
	rerr       error
	recvFn     func(fd uintptr) bool
	// state of the reply loop's write callback
	wsess   *udpSession
	wbuf    []byte
	replyFn func(fd uintptr) bool

	// ep waits for replies; when it could not be made, epErr says why
	// and Serve returns it.
	ep    *os.File
	epRaw syscall.RawConn
	epErr error
	// events is the reply loop's epoll_wait buffer.
	events [64]unix.EpollEvent
	nev    int
	waitFn func(fd uintptr) bool

	mu       sync.Mutex
	sessions map[netip.AddrPort]*udpSession
	// pending holds the datagrams of sessions being set up aside (their
	// plugins may wait, their nodes may need a DNS lookup).
	pending map[netip.AddrPort]*pendingSession
	// byID finds a session from its epoll event; ids are never reused,
	// so an event for a session that just ended finds nothing.
	byID   map[uint32]*udpSession
	nextID uint32
}

// NewUDPServer prepares pc for serving (packet info on wildcard sockets).
func (rt *Runtime) NewUDPServer(pc *net.UDPConn) *UDPServer {
	s := &UDPServer{rt: rt, pc: pc, sessions: map[netip.AddrPort]*udpSession{}, byID: map[uint32]*udpSession{},
		pending: map[netip.AddrPort]*pendingSession{}}
	s.local = pc.LocalAddr().(*net.UDPAddr).AddrPort()
	s.is6 = s.local.Addr().Is6() && !s.local.Addr().Is4In6()
	s.wildcard = s.local.Addr().IsUnspecified()
	if s.wildcard {
		if raw, err := pc.SyscallConn(); err == nil {
			_ = raw.Control(func(fd uintptr) {
				if s.is6 {
					_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
				}
				_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
			})
		}
	}
	// the epoll fd is itself pollable: Go's netpoller tells the reply
	// loop when any upstream socket has a datagram
	reserveFDs()
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err == nil {
		if err = unix.SetNonblock(epfd, true); err == nil {
			s.ep = os.NewFile(uintptr(epfd), "udp-upstreams")
			s.epRaw, err = s.ep.SyscallConn()
		}
	}
	if err != nil {
		s.epErr = os.NewSyscallError("epoll", err)
	}
	if s.pcRaw, err = pc.SyscallConn(); err == nil {
		_ = s.pcRaw.Control(func(fd uintptr) {
			if sa, gerr := unix.Getsockname(int(fd)); gerr == nil {
				if _, ok := sa.(*unix.SockaddrInet6); ok {
					s.fam = unix.AF_INET6
				} else {
					s.fam = unix.AF_INET
				}
			}
		})
	} else if s.epErr == nil {
		s.epErr = err
	}
	s.waitFn, s.recvFn, s.replyFn = s.wait, s.recv, s.reply
	return s
}

// Serve reads datagrams until the socket is closed.
func (s *UDPServer) Serve() error {
	if s.epErr != nil {
		return s.epErr
	}
	go s.replies()
	s.rbuf = make([]byte, maxDatagram)
	s.roob = make([]byte, 128)
	for {
		s.rerr = nil
		if err := s.pcRaw.Read(s.recvFn); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		if s.rerr != nil {
			if s.rerr == unix.ECONNREFUSED || s.rerr == unix.ENOBUFS || s.rerr == unix.ENOMEM {
				continue // left by an earlier reply, or transient
			}
			return os.NewSyscallError("recvmsg", s.rerr)
		}
		buf, oob, n, oobn, from := s.rbuf, s.roob, s.rn, s.roobn, s.rfrom
		s.mu.Lock()
		sess := s.sessions[from]
		if sess == nil {
			if p := s.pending[from]; p != nil {
				p.add(buf[:n])
				s.mu.Unlock()
				continue
			}
		}
		s.mu.Unlock()
		if sess == nil || !sess.send(buf[:n]) {
			// new client, or its session just ended
			sess = s.newSession(from, oob[:oobn], buf[:n])
			if sess == nil {
				continue // set up aside, or no route, refused, no upstream: dropped silently
			}
			sess.send(buf[:n])
		}
	}
}

// Close ends every session and the reply loop. The caller closes the
// socket.
func (s *UDPServer) Close() {
	s.mu.Lock()
	list := make([]*udpSession, 0, len(s.sessions))
	for _, sess := range s.sessions {
		list = append(list, sess)
	}
	s.mu.Unlock()
	for _, sess := range list {
		sess.end()
	}
	if s.ep != nil {
		_ = s.ep.Close()
	}
}

// Sessions is the number of live sessions.
func (s *UDPServer) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// recv is the listening socket's read callback: one raw recvmsg (see
// rawSplice for why raw), or a wait for the next datagram.
func (s *UDPServer) recv(fd uintptr) bool {
	var (
		name unix.RawSockaddrInet6
		iov  = unix.Iovec{Base: unsafe.SliceData(s.rbuf)}
		msg  = unix.Msghdr{
			Name:    (*byte)(unsafe.Pointer(&name)),
			Namelen: unix.SizeofSockaddrInet6,
			Iov:     &iov,
			Iovlen:  1,
			Control: unsafe.SliceData(s.roob),
		}
	)
	iov.SetLen(len(s.rbuf))
	msg.SetControllen(len(s.roob))
	for {
		n, _, e := unix.RawSyscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&msg)), 0)
		switch e {
		case 0:
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			s.rerr = e
			return true
		}
		s.rn, s.roobn = int(n), int(msg.Controllen)
		s.rfrom = sockaddrToAddrPort(&name)
		return true
	}
}

// sockaddrToAddrPort decodes a sockaddr_in or sockaddr_in6, IPv4-mapped
// addresses unmapped.
func sockaddrToAddrPort(sa *unix.RawSockaddrInet6) netip.AddrPort {
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

// wait is the epoll fd's read callback: it collects ready upstream
// sockets, or asks Go's netpoller to wait when there are none.
func (s *UDPServer) wait(fd uintptr) bool {
	for {
		n, err := unix.EpollWait(int(fd), s.events[:], 0)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			s.nev = 0
			return true
		case n == 0:
			return false
		}
		s.nev = n
		return true
	}
}

// replies forwards upstream datagrams to their clients until Close. One
// buffer serves every session.
func (s *UDPServer) replies() {
	buf := make([]byte, maxDatagram)
	for {
		s.nev = 0
		if err := s.epRaw.Read(s.waitFn); err != nil {
			return // Close
		}
		for i := range s.events[:s.nev] {
			id := uint32(s.events[i].Fd)
			s.mu.Lock()
			sess := s.byID[id]
			s.mu.Unlock()
			if sess != nil && !sess.relay(buf) {
				sess.end()
			}
		}
	}
}

// udpSession is one client address's flow to its upstream socket.
type udpSession struct {
	session

	srv      *UDPServer
	id       uint32
	peer     netip.AddrPort
	replyOOB []byte
	idle     time.Duration
	// unanswered is the idle timeout until the upstream first answers.
	unanswered time.Duration
	answered   atomic.Bool
	timer      *time.Timer
	// last is when a datagram last passed, in Unix nanoseconds.
	last atomic.Int64
	// registered is set once the session is in the server's tables (and
	// counts in admitUDP's total).
	registered bool

	// to is the client's address as the listening socket's family wants
	// it, built once for every reply.
	to    unix.RawSockaddrInet6
	toLen uint32

	// mu guards fd: sends, relays and end never race with the close, so
	// a reused fd number is never written to by mistake.
	mu     sync.Mutex
	fd     int
	closed bool
}

// pendingSession queues a new client's datagrams while its session is set
// up; a bounded number, as a socket buffer would.
type pendingSession struct {
	queue [][]byte
}

const maxPendingDatagrams = 64

func (p *pendingSession) add(b []byte) {
	if len(p.queue) < maxPendingDatagrams {
		p.queue = append(p.queue, append([]byte(nil), b...))
	}
}

// newSession matches a new client's first datagram. When the session can
// be set up without waiting it returns it; when its route has plugins
// (limit-conn may delay) or a node is a host name, it sets it up in a
// goroutine of its own, queueing the client's datagrams meanwhile, and
// returns nil: the read loop never waits for one client.
func (s *UDPServer) newSession(from netip.AddrPort, oob, first []byte) *udpSession {
	local := s.local.Addr()
	var replyOOB []byte
	if s.wildcard {
		if dst, ok := packetDst(oob); ok {
			local = dst
			replyOOB = srcOOB(dst, s.is6)
		}
	}
	if m := s.rt.limits.udpPerListener.Load(); m > 0 {
		s.mu.Lock()
		n := len(s.sessions) + len(s.pending)
		s.mu.Unlock()
		if int64(n) >= m {
			s.rt.refused(refusedUDPListener, m)
			return nil
		}
	}
	if !s.rt.admitUDP() {
		return nil
	}
	snap := s.rt.Snapshot()
	q := snap.Query(from, netip.AddrPortFrom(local, s.local.Port()), "")
	route := snap.Match(q)
	logger := s.rt.Logger()
	if route == nil {
		s.rt.doneUDP()
		logger.Debug("not hit any route", zap.Stringer("remote", from), zap.String("network", "udp"))
		return nil
	}
	if route.hasPlugins() || (route.Upstream != nil && route.Upstream.hostNames) {
		p := &pendingSession{}
		p.add(first)
		s.mu.Lock()
		s.pending[from] = p
		s.mu.Unlock()
		go func() {
			if s.establish(from, q, route, replyOOB, p) == nil {
				s.mu.Lock()
				if s.pending[from] == p {
					delete(s.pending, from)
				}
				s.mu.Unlock()
			}
		}()
		return nil
	}
	return s.establish(from, q, route, replyOOB, nil)
}

// establish runs the plugins, dials the upstream and registers the session.
// The caller counted it with admitUDP: establish gives the count back when
// it fails, the session's end when it ends.
// With p, the session replaces the pending entry in the same step and
// sends the queued datagrams before any later one (it holds the session's
// lock until then), so none is lost or overtaken.
func (s *UDPServer) establish(from netip.AddrPort, q router.Query, route *Route, replyOOB []byte, p *pendingSession) *udpSession {
	logger := s.rt.Logger()
	sess := &udpSession{srv: s, peer: from, replyOOB: replyOOB, fd: -1}
	sess.session.init(s.rt, "UDP", from, netip.AddrPortFrom(q.Local, q.Port), q.SNI, time.Now())
	sess.toLen = putSockaddr(&sess.to, from, s.fam)
	if p != nil && len(route.prereaders) > 0 {
		s.mu.Lock()
		first := p.queue[0]
		s.mu.Unlock()
		sess.BindClient(nil, first)
	}
	fail := func() *udpSession {
		s.rt.doneUDP()
		sess.finish()
		return nil
	}
	if !sess.enter(route) {
		return fail()
	}
	u := sess.up
	d, err := u.dial(dialRawUDP, &sess.bctx, nil, "")
	if err != nil {
		sess.status = http502
		logger.Warn("failed to connect to upstream", zap.String("route", route.ID), zap.Error(err))
		return fail()
	}
	if !s.rt.fdAllowed(d.fd) {
		_ = unix.Close(d.fd)
		u.balancer.Done(d.node, 0, false)
		sess.status = http503
		return fail()
	}
	sess.fd, sess.idle = d.fd, u.idleTimeout
	sess.unanswered = min(s.rt.limits.unansweredTimeout(), sess.idle)
	sess.last.Store(time.Now().UnixNano())
	// the timer exists before the session is visible (end reads it); it
	// is armed once the session is complete
	sess.timer = time.AfterFunc(time.Duration(math.MaxInt64), sess.check)
	sess.reached(d.node, d.connect)
	sess.registered = true
	var queued [][]byte
	if p != nil {
		sess.mu.Lock()
	}
	s.mu.Lock()
	s.nextID++
	sess.id = s.nextID
	s.sessions[from] = sess
	s.byID[sess.id] = sess
	if p != nil && s.pending[from] == p {
		delete(s.pending, from)
		queued, p.queue = p.queue, nil
	}
	s.mu.Unlock()
	if p != nil {
		for _, d := range queued {
			sess.sendLocked(d)
		}
		sess.mu.Unlock()
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(sess.id)}
	if err := unix.EpollCtl(int(s.ep.Fd()), unix.EPOLL_CTL_ADD, d.fd, &ev); err != nil {
		logger.Warn("udp session", zap.Error(os.NewSyscallError("epoll_ctl", err)))
		sess.end()
		return nil
	}
	sess.timer.Reset(sess.unanswered)
	return sess
}

// connectUDP returns a non-blocking UDP socket connected to addr
// (host:port; a host name is resolved).
func connectUDP(addr string) (int, error) {
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

// putSockaddr encodes ap as a sockaddr of the given family (IPv4 clients
// of a dual-stack socket become IPv4-mapped) and returns its length.
func putSockaddr(sa *unix.RawSockaddrInet6, ap netip.AddrPort, fam int) uint32 {
	port := (*[2]byte)(unsafe.Pointer(&sa.Port))
	port[0], port[1] = byte(ap.Port()>>8), byte(ap.Port())
	if fam == unix.AF_INET {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		sa4.Family = unix.AF_INET
		sa4.Addr = ap.Addr().Unmap().As4()
		return unix.SizeofSockaddrInet4
	}
	sa.Family = unix.AF_INET6
	sa.Addr = ap.Addr().As16()
	return unix.SizeofSockaddrInet6
}

// rawIO is a raw read(2) or write(2) on a socket that never blocks (see
// rawSplice for why raw).
func rawIO(trap uintptr, fd int, b []byte) (int, error) {
	n, _, e := unix.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// send forwards a client datagram upstream. It reports false when the
// session has ended. A full socket buffer drops the datagram, as UDP may.
func (sess *udpSession) send(b []byte) bool {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.sendLocked(b)
}

// sendLocked is send with sess.mu held.
func (sess *udpSession) sendLocked(b []byte) bool {
	if sess.closed {
		return false
	}
	sess.last.Store(time.Now().UnixNano())
	for {
		n, err := rawIO(unix.SYS_WRITE, sess.fd, b)
		if err == unix.EINTR {
			continue
		}
		sess.c.Sent.Add(int64(n))
		if err != nil && err != unix.EAGAIN && err != unix.ECONNREFUSED {
			sess.srv.rt.Logger().Debug("udp write to upstream", zap.Error(err))
		}
		return true
	}
}

// relay forwards one waiting upstream datagram to the client. One per
// event: epoll is level-triggered and reports the socket again while more
// wait, so no read is spent only to learn that the socket is empty, and a
// busy upstream cannot starve the others. It reports false when the
// session must end (a socket error).
func (sess *udpSession) relay(buf []byte) bool {
	sess.mu.Lock()
	if sess.closed {
		sess.mu.Unlock()
		return true
	}
	for {
		n, err := rawIO(unix.SYS_READ, sess.fd, buf)
		switch err {
		case nil:
		case unix.EINTR:
			continue
		case unix.EAGAIN, unix.ECONNREFUSED:
			// nothing after all, or ICMP unreachable from the upstream:
			// keep the session
			sess.mu.Unlock()
			return true
		default:
			sess.mu.Unlock()
			return false
		}
		// the fd is done with: a full listener socket must not hold the
		// lock that the read loop's send for this client takes
		sess.mu.Unlock()
		sess.last.Store(time.Now().UnixNano())
		sess.c.Received.Add(int64(n))
		if !sess.answered.Load() {
			sess.answered.Store(true)
		}
		s := sess.srv
		s.wsess, s.wbuf = sess, buf[:n]
		return s.pcRaw.Write(s.replyFn) == nil // an error: the listener is closed
	}
}

// reply is the listening socket's write callback: a raw sendmsg of
// s.wbuf to s.wsess's client, from the address it wrote to.
func (s *UDPServer) reply(fd uintptr) bool {
	sess := s.wsess
	iov := unix.Iovec{Base: unsafe.SliceData(s.wbuf)}
	iov.SetLen(len(s.wbuf))
	msg := unix.Msghdr{
		Name:    (*byte)(unsafe.Pointer(&sess.to)),
		Namelen: sess.toLen,
		Iov:     &iov,
		Iovlen:  1,
	}
	if len(sess.replyOOB) > 0 {
		msg.Control = &sess.replyOOB[0]
		msg.SetControllen(len(sess.replyOOB))
	}
	for {
		_, _, e := unix.RawSyscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&msg)), 0)
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false // wait until the socket can take it
		}
		return true // sent, or lost as a datagram may be
	}
}

// check runs when the idle timer fires: the session ends if no datagram
// passed either way for idle, or for unanswered while the upstream has
// not answered yet.
func (sess *udpSession) check() {
	idle := sess.idle
	if !sess.answered.Load() {
		idle = sess.unanswered
	}
	quiet := time.Duration(time.Now().UnixNano() - sess.last.Load())
	if quiet < idle {
		sess.timer.Reset(idle - quiet)
		return
	}
	sess.end()
}

// end removes the session and frees its socket; safe to call twice.
func (sess *udpSession) end() {
	sess.mu.Lock()
	if sess.closed {
		sess.mu.Unlock()
		return
	}
	sess.closed = true
	fd := sess.fd
	sess.fd = -1
	sess.mu.Unlock()
	s := sess.srv
	s.mu.Lock()
	if s.sessions[sess.peer] == sess {
		delete(s.sessions, sess.peer)
	}
	delete(s.byID, sess.id)
	s.mu.Unlock()
	if sess.timer != nil {
		sess.timer.Stop()
	}
	if fd >= 0 {
		_ = unix.Close(fd) // leaves the epoll set with its last reference
	}
	if sess.registered {
		s.rt.doneUDP()
	}
	sess.finish()
}

// packetDst finds the destination address in IP_PKTINFO/IPV6_PKTINFO.
func packetDst(oob []byte) (netip.Addr, bool) {
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

// srcOOB builds the control message that makes a reply leave from src.
func srcOOB(src netip.Addr, sock6 bool) []byte {
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

// ServePacketSession proxies one UDP session that a caddy-l4 server hands
// over as a net.Conn whose every Read returns one datagram (its packet
// conn). pre is a first datagram already read by a matcher. The session
// ends when conn's Read fails (caddy-l4's idle timeout) or when the
// upstream is idle for its timeout.
func (rt *Runtime) ServePacketSession(conn net.Conn, pre []byte) {
	// caddy-l4 closes conn when the handler returns; closing it here too
	// would send its session table a second close for the same client
	remote, local := router.AddrPortOf(conn.RemoteAddr()), router.AddrPortOf(conn.LocalAddr())
	snap := rt.Snapshot()
	q := snap.Query(remote, local, "")
	route := snap.Match(q)
	if route == nil {
		rt.Logger().Debug("not hit any route", zap.Stringer("remote", remote), zap.String("network", "udp"))
		return
	}
	if !rt.admitUDP() {
		return
	}
	defer rt.doneUDP()
	s := rt.newSession("UDP", remote, local, q.SNI, time.Now())
	defer s.finish()
	s.BindClient(nil, pre)
	if !s.enter(route) {
		return
	}
	u := s.up
	d, err := u.dial(dialPacket, &s.bctx, nil, "")
	if err != nil {
		rt.Logger().Warn("failed to connect to upstream", zap.String("route", route.ID), zap.Error(err))
		s.status = http502
		return
	}
	s.reached(d.node, d.connect)
	defer d.conn.Close()
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	go func() {
		buf := make([]byte, maxDatagram)
		for {
			_ = d.conn.SetReadDeadline(time.Unix(0, last.Load()).Add(u.idleTimeout))
			n, err := d.conn.Read(buf)
			if err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) && time.Since(time.Unix(0, last.Load())) < u.idleTimeout {
					continue
				}
				if errors.Is(err, syscall.ECONNREFUSED) {
					continue
				}
				_ = conn.SetReadDeadline(time.Unix(1, 0))
				return
			}
			last.Store(time.Now().UnixNano())
			s.c.Received.Add(int64(n))
			if _, err := conn.Write(buf[:n]); err != nil {
				return
			}
		}
	}()
	if len(pre) > 0 {
		n, _ := d.conn.Write(pre)
		s.c.Sent.Add(int64(n))
	}
	buf := make([]byte, maxDatagram)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return
		}
		last.Store(time.Now().UnixNano())
		w, _ := d.conn.Write(buf[:n])
		s.c.Sent.Add(int64(w))
	}
}
