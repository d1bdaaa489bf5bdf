package proxy

import (
	"crypto/tls"
	"net"
	"strings"
	"time"

	"github.com/caddy-apisix/stream/listen"
	"github.com/caddy-apisix/stream/proxyproto"
	"github.com/caddy-apisix/stream/router"
	"github.com/caddy-apisix/stream/tlsx"
	"go.uber.org/zap"
)

// ListenerOptions are a TCP listener's options (tls, tls_passthrough,
// proxy_protocol, proxy_protocol_to_upstream), declared with their JSON
// and Caddyfile forms in package listen.
type ListenerOptions = listen.Options

// prereadTimeout bounds how long a client may take to send its PROXY
// header and ClientHello.
const prereadTimeout = 10 * time.Second

// ServeStream proxies one accepted stream connection and closes it. pre
// holds bytes already read from conn (by a caddy-l4 matcher) that belong
// before anything conn still has.
func (rt *Runtime) ServeStream(conn net.Conn, pre []byte, opts ListenerOptions) {
	if !rt.admitTCP() {
		conn.Close()
		return
	}
	rt.serveStream(conn, pre, opts, false)
}

// serveStream is ServeStream. With async (the listener's own
// connections) it returns once the bytes flow: the pump then ends the
// connection, so this goroutine and its deep stack are not kept for as
// long as the connection idles. Connections a caddy-l4 server hands over
// are served synchronously: it closes them when its handler returns. The
// caller has counted the session with admitTCP.
func (rt *Runtime) serveStream(conn net.Conn, pre []byte, opts ListenerOptions, async bool) {
	start := time.Now()
	remote := router.AddrPortOf(conn.RemoteAddr())
	local := router.AddrPortOf(conn.LocalAddr())
	logger := rt.Logger()
	drop := func() {
		conn.Close()
		rt.doneTCP()
	}

	var client net.Conn = conn
	// replay is copied into a variable of each branch that reads through
	// a prefixConn: one whose address is taken escapes to the heap, and
	// the plain path then allocates nothing for it
	replay := pre
	if opts.ProxyProtocol {
		_ = conn.SetReadDeadline(time.Now().Add(prereadTimeout))
		rest := replay
		hdr, err := proxyproto.ReadHeader(prefixConn{Conn: conn, pre: &rest})
		replay = rest
		if err != nil {
			logger.Debug("bad PROXY protocol header", zap.Stringer("remote", remote), zap.Error(err))
			drop()
			return
		}
		if !hdr.Local {
			remote = hdr.Src
		}
		_ = conn.SetReadDeadline(time.Time{})
	}

	snap := rt.Snapshot()
	sni := ""
	if tc, ok := conn.(interface{ ConnectionState() tls.ConnectionState }); ok {
		// already terminated by a caddy-l4 tls handler
		sni = tc.ConnectionState().ServerName
	}
	if opts.TLS || opts.TLSPassthrough {
		rest := replay
		hello, buffered, err := tlsx.PeekClientHello(prefixConn{Conn: conn, pre: &rest}, time.Now().Add(prereadTimeout))
		replay = rest
		if err != nil {
			logger.Debug("reading ClientHello", zap.Stringer("remote", remote), zap.Error(err))
			drop()
			return
		}
		// bytes a caddy-l4 matcher read beyond what the peek consumed
		// come after the hello, whichever way the connection goes
		buffered = append(buffered, replay...)
		replay = nil
		sni = hello.ServerName
		terminate := opts.TLS
		if opts.TLS && opts.TLSPassthrough {
			if r := snap.Match(snap.Query(remote, local, sni)); r != nil && r.Passthrough {
				terminate = false
			}
		}
		if terminate {
			tc := tls.Server(prefixConn{Conn: conn, pre: &buffered}, snap.Certs().ServerConfig())
			_ = conn.SetDeadline(time.Now().Add(prereadTimeout))
			if err := tc.Handshake(); err != nil {
				// no certificate for the SNI, a missing or bad client
				// certificate, a protocol the SSL object refuses
				if n, ok := rt.tlsWarn.Allow(time.Now()); ok {
					logger.Warn("TLS handshake failed", zap.Stringer("listener", local), zap.Stringer("remote", remote),
						zap.String("sni", sni), zap.Error(err), zap.Int64("failures_since_last_warning", n))
				}
				drop()
				return
			}
			_ = conn.SetDeadline(time.Time{})
			sni = tc.ConnectionState().ServerName
			client = tc
		} else {
			replay = buffered
		}
	}

	q := snap.Query(remote, local, sni)
	route := snap.Match(q)
	if route == nil {
		rt.warnUnmatched("tcp", remote, local, q.SNI)
		drop()
		return
	}
	s := rt.newStreamSession(remote, local, q.SNI, start)
	s.client, s.replay, s.proxyProtocol = client, replay, opts.ProxyProtocolToUpstream
	if len(route.prereaders) > 0 {
		s.BindClient(prefixConn{Conn: client, pre: &s.replay}, nil)
	}
	if !s.enter(route) {
		s.endStream()
		return
	}
	s.forward(async)
}

// forward dials the session's upstream and pumps bytes until the
// connection ends, or with async only until the pump has started. The
// bytes a plugin read, then replay, are sent upstream first.
func (s *session) forward(async bool) {
	var preface []byte
	if s.proxyProtocol {
		preface = proxyproto.AppendV1(nil, s.Remote, s.Local)
	}
	// a TLS client without SNI (caddy-l4 terminated it with a default
	// certificate) still gets the dummy name: an empty ServerName would
	// send no SNI, and fail every handshake with tls.verify
	upSNI := tlsx.DefaultUpstreamSNI
	if s.ServerName != "" {
		upSNI = s.ServerName
	}
	u := s.up
	d, err := u.dial(dialStream, s, preface, upSNI)
	if err != nil {
		s.failed(d.node, err)
		s.endStream()
		return
	}
	if logger := s.rt.Logger(); logger.Core().Enabled(zap.DebugLevel) {
		logger.Debug("proxy request to "+d.node.Addr, zap.String("route", s.RouteID), zap.Stringer("remote", s.Remote))
	}
	s.upConn = d.conn
	// reached before the replayed bytes: a failed write is then a 502 of
	// this node, released to the balancer like any other session's
	s.reached(d.node, d.connect)
	for _, b := range [][]byte{s.Captured(), s.replay} {
		if len(b) == 0 {
			continue
		}
		_ = d.conn.SetWriteDeadline(time.Now().Add(u.idleTimeout))
		n, err := d.conn.Write(b)
		s.c.Sent.Add(int64(n))
		if err != nil {
			s.status = http502
			s.endStream()
			return
		}
	}
	s.replay = nil
	if async {
		s.link.start(s.client, d.conn, u.idleTimeout, s.rt.TCPCopy(), &s.rt.copies, &s.c, s)
		return
	}
	s.link.pump(s.client, d.conn, u.idleTimeout, s.rt.TCPCopy(), &s.rt.copies, &s.c)
	s.endStream()
}

// linkDone ends the session once both directions of its link have
// ended (the async forward).
func (s *session) linkDone() { s.endStream() }

// endStream closes a stream session's connections and finishes it.
func (s *session) endStream() {
	if s.upConn != nil {
		s.upConn.Close()
	}
	s.client.Close()
	s.rt.doneTCP()
	s.finish()
}

// ServeUpstream proxies conn straight to u, without matching: the data
// path of layer4.handlers.apisix_proxy. It closes conn.
func (rt *Runtime) ServeUpstream(conn net.Conn, pre []byte, u *Upstream) {
	if !rt.admitTCP() {
		conn.Close()
		return
	}
	sni := ""
	if tc, ok := conn.(interface{ ConnectionState() tls.ConnectionState }); ok {
		sni = normalizeSNI(tc.ConnectionState().ServerName)
	}
	s := rt.newStreamSession(router.AddrPortOf(conn.RemoteAddr()), router.AddrPortOf(conn.LocalAddr()), sni, time.Now())
	s.client, s.replay = conn, pre
	s.enter(u.static)
	s.forward(false)
}

func normalizeSNI(s string) string {
	s = strings.TrimSuffix(s, ".")
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// prefixConn reads *pre before the connection itself, consuming it.
type prefixConn struct {
	net.Conn
	pre *[]byte
}

func (c prefixConn) Read(p []byte) (int, error) {
	if len(*c.pre) > 0 {
		n := copy(p, *c.pre)
		*c.pre = (*c.pre)[n:]
		if len(*c.pre) == 0 {
			*c.pre = nil // drained: let the peek buffer go
		}
		return n, nil
	}
	return c.Conn.Read(p)
}
