package proxy

import (
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-apisix/stream/balancer"
	"github.com/caddy-apisix/stream/plugin"
)

// session is one TCP connection or UDP session on its way through the
// one admission pipeline, whichever way it arrived (a stream_proxy
// listener, TLS terminated or passed through, a UDP listener, a caddy-l4
// server's connection or packet session, layer4.handlers.apisix_proxy):
//
//	match → enter: plugins' preread → upstream choice
//	→ dial: one loop with retries and retry_timeout
//	→ copy → finish: metrics, access log, plugins' log phase,
//	  passive health, balancer release
//
// as APISIX's stream_preread_phase, balancer phase and stream_log_phase
// (apisix/init.lua).
type session struct {
	// Session holds the variables and the plugins' hooks.
	plugin.Session

	rt      *Runtime
	route   *Route
	up      *Upstream
	metrics *routeMetrics
	// em are the series of the node reached or tried last (nil
	// before), held until finish (routeMetrics.hold)
	em    *endMetrics
	start time.Time
	bctx  balancer.Context

	// node is the upstream node dialled, connect how long that took.
	node    *balancer.Node
	connect time.Duration
	// datagrams is true for UDP sessions, which count their bytes as
	// they go (upstreamBytes, clientBytes)
	datagrams bool
	// lastTried is the node tried last when none was reached.
	lastTried string
	// active is whether the session counts in active connections.
	active bool
	status int
	// c counts the bytes moved: Sent from the client to the upstream,
	// Received back.
	c Counters
	// flushedSent and flushedReceived are the parts of c a stream has
	// counted in the bandwidth series (flushBytes, under metrics.mu);
	// counting reports whether open counted it (closed then counts the
	// rest)
	flushedSent, flushedReceived int64
	counting                     bool
	// prevStream and nextStream link the route's open streams
	// (routeMetrics.streams, under its mu); listed is whether s is in
	// that list
	prevStream, nextStream *session
	listed                 bool

	// a stream session's connections, the bytes to send upstream before
	// the client's own (read ahead by a caddy-l4 matcher or a TLS peek),
	// and whether a PROXY header goes first
	client, upConn net.Conn
	replay         []byte
	proxyProtocol  bool
	// link copies a stream session's bytes; allocated with the session
	// (newStreamSession)
	link *link

	ended atomic.Bool
}

// newSession starts a session of protocol ("TCP" or "UDP") from remote
// to local with the server name sni (already normalized, fallback applied).
func (rt *Runtime) newSession(protocol string, remote, local netip.AddrPort, sni string, start time.Time) *session {
	s := new(session)
	s.init(rt, protocol, remote, local, sni, start)
	return s
}

// streamSession is a stream session and its link, allocated together.
type streamSession struct {
	session
	link link
}

// newStreamSession is newSession for a TCP connection: the session and
// the link that will copy its bytes are one allocation.
func (rt *Runtime) newStreamSession(remote, local netip.AddrPort, sni string, start time.Time) *session {
	ss := new(streamSession)
	ss.init(rt, "TCP", remote, local, sni, start)
	ss.session.link = &ss.link
	return &ss.session
}

// init is newSession for a session embedded in another struct.
func (s *session) init(rt *Runtime, protocol string, remote, local netip.AddrPort, sni string, start time.Time) {
	s.rt, s.start = rt, start
	s.Protocol, s.Remote, s.Local, s.ServerName = protocol, remote, local, sni
	s.datagrams = protocol == "UDP"
	s.bctx.Vars = &s.Set
}

// enter admits the matched session: it runs the route's preread plugins
// and the upstream choice. It reports false, with the status set, when
// the session must close; the caller then calls finish.
func (s *session) enter(r *Route) bool {
	s.route, s.metrics, s.RouteID, s.ServiceID = r, r.metrics, r.ID, r.ServiceID
	s.metrics.connections.Inc()
	for _, p := range r.prereaders {
		if err := p.Preread(&s.Session); err != nil {
			s.refuse(err)
			return false
		}
	}
	s.up = r.Upstream
	for _, c := range r.choosers {
		u, err := c.ChooseUpstream(&s.Session)
		if err != nil {
			s.refuse(err)
			return false
		}
		if u != nil {
			s.up, _ = u.(*Upstream)
			break
		}
	}
	if s.up == nil {
		s.rt.Logger().Warn("failed to set upstream: missing upstream configuration in Route or Service", zap.String("route", r.ID))
		s.status = http503
		return false
	}
	return true
}

// refuse records the status of a plugin's refusal: an *plugin.Exit's
// code, 503 otherwise.
func (s *session) refuse(err error) {
	s.status = http503
	var exit *plugin.Exit
	if errors.As(err, &exit) {
		s.status = exit.Code
	}
}

const (
	http200 = 200
	http502 = 502
	http503 = 503
)

// reached records the node the session reached; from then on it counts
// as active.
func (s *session) reached(node *balancer.Node, connect time.Duration) {
	s.node, s.connect, s.active = node, connect, true
	if s.datagrams {
		s.metrics.hold(s, s.Local, node.Addr)
	} else {
		s.metrics.open(s, node.Addr)
	}
	s.em.active.Inc()
}

// failed records and logs a dial that reached no node; last is the last
// node tried, if any, for the metrics and the access log.
func (s *session) failed(last *balancer.Node, err error) {
	s.status = http502
	node := ""
	if last != nil {
		node = last.Addr
		s.tried(last)
	}
	s.rt.Logger().Warn("failed to connect to upstream", zap.String("route", s.RouteID), zap.String("upstream", s.up.ID()),
		zap.String("node", node), zap.Stringer("remote", s.Remote), zap.Error(err))
}

// upstreamBytes counts n bytes of a datagram sent to the upstream;
// clientBytes n bytes of one sent back to the client. UDP sessions count
// their bytes in the bandwidth series at once, datagram by datagram: a
// session lasts until its idle timeout (ten minutes by default), and a
// count at its end would show no traffic meanwhile.
func (s *session) upstreamBytes(n int) {
	s.c.Sent.Add(int64(n))
	if em := s.em; em != nil && n > 0 {
		em.sent(int64(n))
	}
}

func (s *session) clientBytes(n int) {
	s.c.Received.Add(int64(n))
	if em := s.em; em != nil && n > 0 {
		em.received(int64(n))
	}
}

// flushBytes counts in the bandwidth series the bytes the stream moved
// since its last flush; the caller holds s.metrics.mu.
func (s *session) flushBytes() {
	em := s.em
	if d := s.c.Sent.Load() - s.flushedSent; d > 0 {
		s.flushedSent += d
		em.sent(d)
	}
	if d := s.c.Received.Load() - s.flushedReceived; d > 0 {
		s.flushedReceived += d
		em.received(d)
	}
}

// tried records the node the session tried last without reaching it (a
// failed dial, a socket refused by fd_reserve), for the metrics and the
// access log.
func (s *session) tried(last *balancer.Node) {
	s.lastTried = last.Addr
	s.metrics.hold(s, s.Local, last.Addr)
}

// finish ends the session: it is idempotent, and the last step of every
// session that matched a route.
func (s *session) finish() {
	if s.ended.Swap(true) {
		return
	}
	if s.status == 0 {
		s.status = http200
	}
	if s.em == nil {
		s.metrics.hold(s, s.Local, "")
	}
	em := s.em
	if s.counting {
		// the bytes not counted by a scrape yet, before the session
		// counts as ended: a scrape that sees it ended sees all its bytes
		s.metrics.closed(s)
	}
	if s.active {
		em.active.Dec()
	}
	switch s.status {
	case http200:
		em.ok.Inc()
	case http502:
		em.failed.Inc()
	case http503:
		em.deny.Inc()
	default:
		s.metrics.status(s.status, em)
	}
	// counted: the series may go now if no route reaches them any more
	s.metrics.release(em)
	received, sent := s.c.Sent.Load(), s.c.Received.Load()
	node := s.lastTried
	if s.node != nil {
		node = s.node.Addr
		s.up.balancer.Done(s.node, s.connect, false)
		if s.status == http200 && s.up.checker != nil {
			s.up.checker.ReportSuccess(node)
		}
	}
	if s.rt.logAccess.Load() {
		s.accessLog(node, received, sent)
	}
	if s.route != nil && len(s.route.loggers) > 0 {
		e := &plugin.Entry{Start: s.start, Duration: time.Since(s.start), Status: s.status, Upstream: node,
			BytesReceived: received, BytesSent: sent}
		for _, l := range s.route.loggers {
			l.Log(&s.Session, e)
		}
	}
	s.RunEnds()
}

// accessLog writes one line per ended session when access_log is on,
// like APISIX's stream access log ($remote_addr $protocol $status
// $bytes_sent $bytes_received $session_time), plus the route and the
// upstream node.
func (s *session) accessLog(node string, received, sent int64) {
	s.rt.Logger().Named("access").Info("stream session",
		zap.Stringer("remote", s.Remote),
		zap.Stringer("local", s.Local),
		zap.String("protocol", s.Protocol),
		zap.String("sni", s.ServerName),
		zap.String("route", s.RouteID),
		zap.String("upstream", node),
		zap.Int("status", s.status),
		zap.Int64("bytes_received", received),
		zap.Int64("bytes_sent", sent),
		zap.Duration("session_time", time.Since(s.start)),
	)
}
