//go:build linux && !portable

package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"

	"github.com/caddy-apisix/stream/rawsock"
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

	// pcRaw reaches the listening socket for raw recvmsg/sendmsg; v4 is
	// whether it is an AF_INET socket (dual-stack wildcard sockets are
	// AF_INET6).
	pcRaw syscall.RawConn
	v4    bool
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

	// ep waits for replies
	ep     *rawsock.Epoll
	epRaw  syscall.RawConn
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
// It fails when the listener could not serve: without its epoll instance
// (out of descriptors) no reply would ever be forwarded.
func (rt *Runtime) NewUDPServer(pc *net.UDPConn) (*UDPServer, error) {
	s := &UDPServer{rt: rt, pc: pc, sessions: map[netip.AddrPort]*udpSession{}, byID: map[uint32]*udpSession{},
		pending: map[netip.AddrPort]*pendingSession{}}
	s.local = pc.LocalAddr().(*net.UDPAddr).AddrPort()
	s.is6 = s.local.Addr().Is6() && !s.local.Addr().Is4In6()
	s.wildcard = s.local.Addr().IsUnspecified()
	// the epoll fd is itself pollable: Go's netpoller tells the reply
	// loop when any upstream socket has a datagram
	rawsock.ReserveFDs()
	var err error
	if s.ep, err = rawsock.NewEpoll("udp-upstreams"); err != nil {
		return nil, fmt.Errorf("udp %s: reply poller: %w", s.local, err)
	}
	if s.epRaw, err = s.ep.File.SyscallConn(); err != nil {
		_ = s.ep.File.Close()
		return nil, fmt.Errorf("udp %s: reply poller: %w", s.local, err)
	}
	s.waitFn = s.ep.Wait
	if s.pcRaw, err = pc.SyscallConn(); err != nil {
		_ = s.ep.File.Close()
		return nil, fmt.Errorf("udp %s: %w", s.local, err)
	}
	_ = s.pcRaw.Control(func(fd uintptr) {
		s.v4 = rawsock.IsIPv4Socket(fd)
		if s.wildcard {
			rawsock.EnablePacketInfo(fd, s.is6)
		}
	})
	s.recvFn, s.replyFn = s.recv, s.reply
	return s, nil
}

// Serve reads datagrams until the socket is closed.
func (s *UDPServer) Serve() error {
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
			if s.rerr == rawsock.ECONNREFUSED || s.rerr == rawsock.ENOBUFS || s.rerr == rawsock.ENOMEM {
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
		_ = s.ep.File.Close()
	}
}

// Sessions is the number of live sessions.
func (s *UDPServer) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// recv is the listening socket's read callback: one raw recvmsg, or a
// wait for the next datagram.
func (s *UDPServer) recv(fd uintptr) bool {
	n, oobn, from, err := rawsock.RecvMsg(fd, s.rbuf, s.roob)
	switch err {
	case nil:
		s.rn, s.roobn, s.rfrom = n, oobn, from
	case rawsock.EAGAIN:
		return false
	default:
		s.rerr = err
	}
	return true
}

// replies forwards upstream datagrams to their clients until Close. One
// buffer serves every session.
func (s *UDPServer) replies() {
	buf := make([]byte, maxDatagram)
	ids := make([]uint32, 0, 64)
	for {
		if err := s.epRaw.Read(s.waitFn); err != nil {
			return // Close
		}
		ids = s.ep.Ready(ids[:0])
		for _, id := range ids {
			s.mu.Lock()
			sess := s.byID[id]
			s.mu.Unlock()
			if sess != nil && !sess.relay(buf) {
				sess.end()
			}
		}
	}
}

// reply is the listening socket's write callback: a raw sendmsg of
// s.wbuf to s.wsess's client, from the address it wrote to.
func (s *UDPServer) reply(fd uintptr) bool {
	// false waits until the socket can take it; anything else is sent,
	// or lost as a datagram may be
	return rawsock.SendMsg(fd, s.wbuf, &s.wsess.to, s.wsess.replyOOB) != rawsock.EAGAIN
}
