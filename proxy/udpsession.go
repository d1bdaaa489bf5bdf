//go:build linux && !portable

package proxy

import (
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-apisix/stream/rawsock"
	"github.com/caddy-apisix/stream/router"
)

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
	to rawsock.Sockaddr

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
		if dst, ok := rawsock.PacketDst(oob); ok {
			local = dst
			replyOOB = rawsock.SourceOOB(dst, s.is6)
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
	if route == nil {
		s.rt.doneUDP()
		s.rt.warnUnmatched("udp", from, netip.AddrPortFrom(q.Local, q.Port), "")
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
	sess.to.Set(from, s.v4)
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
	d, err := u.dial(dialRawUDP, &sess.session, nil, "")
	if err != nil {
		sess.failed(d.node, err)
		return fail()
	}
	if !s.rt.fdAllowed(d.fd) {
		_ = rawsock.Close(d.fd)
		u.balancer.Done(d.node, 0, false)
		sess.tried(d.node)
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
	if err := s.ep.Add(d.fd, sess.id); err != nil {
		logger.Warn("udp session", zap.Error(err))
		sess.end()
		return nil
	}
	sess.timer.Reset(sess.unanswered)
	return sess
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
	n, err := rawsock.Write(sess.fd, b)
	sess.upstreamBytes(n)
	if err != nil && err != rawsock.EAGAIN && err != rawsock.ECONNREFUSED {
		sess.srv.rt.Logger().Debug("udp write to upstream", zap.Error(err))
	}
	return true
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
	n, err := rawsock.Read(sess.fd, buf)
	// the fd is done with: a full listener socket must not hold the
	// lock that the read loop's send for this client takes
	sess.mu.Unlock()
	switch err {
	case nil:
	case rawsock.EAGAIN, rawsock.ECONNREFUSED:
		// nothing after all, or ICMP unreachable from the upstream:
		// keep the session
		return true
	default:
		return false
	}
	sess.last.Store(time.Now().UnixNano())
	sess.clientBytes(n)
	if !sess.answered.Load() {
		sess.answered.Store(true)
	}
	s := sess.srv
	s.wsess, s.wbuf = sess, buf[:n]
	return s.pcRaw.Write(s.replyFn) == nil // an error: the listener is closed
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
		_ = rawsock.Close(fd) // leaves the epoll set with its last reference
	}
	if sess.registered {
		s.rt.doneUDP()
	}
	sess.finish()
}
