package proxy

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/caddy-apisix/stream/balancer"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// maxDatagram is the largest UDP payload; datagrams are forwarded whole.
const maxDatagram = 65536

// UDPServer proxies the datagrams of one UDP listener. Each client
// address:port is a session, matched once, with its own connected upstream
// socket; sessions end after the upstream's idle timeout. The read loop
// never waits on a session: a slow upstream cannot stall other clients.
type UDPServer struct {
	rt *Runtime
	pc *net.UDPConn
	// wildcard listeners learn each datagram's destination address from
	// IP(V6)_PKTINFO, to match server_addr and to reply from it.
	wildcard bool
	is6      bool
	local    netip.AddrPort

	mu       sync.Mutex
	sessions map[netip.AddrPort]*udpSession
}

// NewUDPServer prepares pc for serving (packet info on wildcard sockets).
func (rt *Runtime) NewUDPServer(pc *net.UDPConn) *UDPServer {
	s := &UDPServer{rt: rt, pc: pc, sessions: map[netip.AddrPort]*udpSession{}}
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
	return s
}

// Serve reads datagrams until the socket is closed.
func (s *UDPServer) Serve() error {
	buf := make([]byte, maxDatagram)
	oob := make([]byte, 128)
	for {
		n, oobn, _, from, err := s.pc.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		s.mu.Lock()
		sess := s.sessions[from]
		s.mu.Unlock()
		if sess == nil {
			sess = s.newSession(from, oob[:oobn])
			if sess == nil {
				continue // no route, refused, or no upstream: dropped silently
			}
		}
		sess.last.Store(time.Now().UnixNano())
		if _, err := sess.up.Write(buf[:n]); err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
			sess.rt.Logger().Debug("udp write to upstream", zap.Error(err))
		}
	}
}

// Close ends every session. The caller closes the socket.
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
}

// Sessions is the number of live sessions.
func (s *UDPServer) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

type udpSession struct {
	rt       *Runtime
	srv      *UDPServer
	client   netip.AddrPort
	replyOOB []byte
	up       *net.UDPConn
	upRaw    syscall.RawConn
	u        *Upstream
	node     *balancer.Node
	idle     time.Duration
	releases []func()
	last     atomic.Int64
	once     sync.Once
}

func (s *UDPServer) newSession(from netip.AddrPort, oob []byte) *udpSession {
	local := s.local.Addr()
	var replyOOB []byte
	if s.wildcard {
		if dst, ok := packetDst(oob); ok {
			local = dst
			replyOOB = srcOOB(dst, s.is6)
		}
	}
	snap := s.rt.Snapshot()
	q := query(from, netip.AddrPortFrom(local, s.local.Port()), snap.FallbackSNI())
	route := snap.Match(q)
	logger := s.rt.Logger()
	if route == nil {
		logger.Debug("not hit any route", zap.Stringer("remote", from), zap.String("network", "udp"))
		return nil
	}
	sess := &udpSession{rt: s.rt, srv: s, client: from, replyOOB: replyOOB}
	ps := Session{Remote: q.Remote, Local: q.Local, Port: q.Port, SNI: q.SNI, RouteID: route.ID}
	for _, p := range route.Plugins {
		ok, release := p.Preread(&ps)
		if release != nil {
			sess.releases = append(sess.releases, release)
		}
		if !ok {
			sess.release()
			return nil
		}
	}
	u := route.Upstream
	if u == nil {
		sess.release()
		logger.Warn("failed to set upstream: missing upstream configuration in Route or Service", zap.String("route", route.ID))
		return nil
	}
	bctx := balancer.Context{
		RemoteAddr: q.Remote.String(), RemotePort: strconv.Itoa(int(from.Port())),
		ServerAddr: q.Local.String(), ServerPort: strconv.Itoa(int(q.Port)), ServerName: q.SNI,
	}
	d, err := u.dial("udp", &bctx, nil, "")
	if err != nil {
		sess.release()
		logger.Warn("failed to connect to upstream", zap.String("route", route.ID), zap.Error(err))
		return nil
	}
	sess.up = d.conn.(*net.UDPConn)
	sess.upRaw, _ = sess.up.SyscallConn()
	sess.u, sess.node, sess.idle = u, d.node, u.idleTimeout
	sess.last.Store(time.Now().UnixNano())
	s.mu.Lock()
	s.sessions[from] = sess
	s.mu.Unlock()
	go sess.replies()
	return sess
}

var udpBufPool = sync.Pool{New: func() any {
	b := make([]byte, maxDatagram)
	return &b
}}

// replies forwards upstream datagrams to the client. It holds a buffer
// only while a datagram is ready, so idle sessions cost a goroutine and a
// socket.
func (sess *udpSession) replies() {
	defer sess.end()
	deadline := time.Time{}
	for {
		lastAt := time.Unix(0, sess.last.Load())
		if d := lastAt.Add(sess.idle); !d.Equal(deadline) {
			deadline = d
			_ = sess.up.SetReadDeadline(deadline)
		}
		var (
			n    int
			rerr error
			buf  *[]byte
		)
		err := sess.upRaw.Read(func(fd uintptr) bool {
			if buf == nil {
				buf = udpBufPool.Get().(*[]byte)
			}
			n, rerr = unix.Read(int(fd), *buf)
			if rerr == unix.EAGAIN || rerr == unix.EINTR {
				udpBufPool.Put(buf)
				buf = nil
				return false
			}
			return true
		})
		if err != nil {
			if buf != nil {
				udpBufPool.Put(buf)
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if time.Since(time.Unix(0, sess.last.Load())) < sess.idle {
					continue
				}
			}
			return
		}
		if rerr != nil {
			udpBufPool.Put(buf)
			if rerr == unix.ECONNREFUSED {
				continue // ICMP unreachable from the upstream: keep the session
			}
			return
		}
		sess.last.Store(time.Now().UnixNano())
		_, _, werr := sess.srv.pc.WriteMsgUDPAddrPort((*buf)[:n], sess.replyOOB, sess.client)
		udpBufPool.Put(buf)
		if werr != nil && errors.Is(werr, net.ErrClosed) {
			return
		}
	}
}

func (sess *udpSession) release() {
	for _, r := range sess.releases {
		r()
	}
	sess.releases = nil
}

// end removes the session and frees its socket; safe to call twice.
func (sess *udpSession) end() {
	sess.once.Do(func() {
		s := sess.srv
		s.mu.Lock()
		if s.sessions[sess.client] == sess {
			delete(s.sessions, sess.client)
		}
		s.mu.Unlock()
		sess.up.Close()
		sess.u.balancer.Done(sess.node, 0, false)
		sess.release()
	})
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
	defer conn.Close()
	remote, local := addrPortOf(conn.RemoteAddr()), addrPortOf(conn.LocalAddr())
	snap := rt.Snapshot()
	q := query(remote, local, snap.FallbackSNI())
	route := snap.Match(q)
	if route == nil || route.Upstream == nil {
		return
	}
	ps := Session{Remote: q.Remote, Local: q.Local, Port: q.Port, SNI: q.SNI, RouteID: route.ID}
	for _, p := range route.Plugins {
		ok, release := p.Preread(&ps)
		if release != nil {
			defer release()
		}
		if !ok {
			return
		}
	}
	u := route.Upstream
	bctx := balancer.Context{RemoteAddr: q.Remote.String(), RemotePort: strconv.Itoa(int(remote.Port())),
		ServerAddr: q.Local.String(), ServerPort: strconv.Itoa(int(q.Port)), ServerName: q.SNI}
	d, err := u.dial("udp", &bctx, nil, "")
	if err != nil {
		rt.Logger().Warn("failed to connect to upstream", zap.String("route", route.ID), zap.Error(err))
		return
	}
	defer d.conn.Close()
	defer u.balancer.Done(d.node, 0, false)
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
			if _, err := conn.Write(buf[:n]); err != nil {
				return
			}
		}
	}()
	if len(pre) > 0 {
		_, _ = d.conn.Write(pre)
	}
	buf := make([]byte, maxDatagram)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return
		}
		last.Store(time.Now().UnixNano())
		_, _ = d.conn.Write(buf[:n])
	}
}
