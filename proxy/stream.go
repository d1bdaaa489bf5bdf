package proxy

import (
	"crypto/tls"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/caddy-apisix/stream/proxyproto"
	"github.com/caddy-apisix/stream/router"
	"github.com/caddy-apisix/stream/tlsx"
	"go.uber.org/zap"
)

// ListenerOptions are a stream_proxy.tcp entry's options.
type ListenerOptions struct {
	// TLS terminates TLS with the SSL objects' certificates.
	TLS bool
	// TLSPassthrough routes by the ClientHello's SNI without
	// terminating. With TLS too, the matched route decides.
	TLSPassthrough bool
	// ProxyProtocol expects a PROXY v1 or v2 header from the client.
	ProxyProtocol bool
	// ProxyProtocolToUpstream sends a PROXY v1 header to the upstream.
	ProxyProtocolToUpstream bool
}

// prereadTimeout bounds how long a client may take to send its PROXY
// header and ClientHello.
const prereadTimeout = 10 * time.Second

// upstreamSNI is APISIX's dummy SNI for TLS upstreams of plain clients.
const upstreamSNI = "apisix_backend"

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
	// end runs once the connection is over: on an early return here, or
	// from forward
	var releases []func()
	end := func() {
		for i := len(releases) - 1; i >= 0; i-- {
			releases[i]()
		}
		conn.Close()
		rt.doneTCP()
	}
	handedOver := false
	defer func() {
		if !handedOver {
			end()
		}
	}()
	start := time.Now()
	remote := router.AddrPortOf(conn.RemoteAddr())
	local := router.AddrPortOf(conn.LocalAddr())
	logger := rt.Logger()

	var client net.Conn = conn
	replay := pre
	if opts.ProxyProtocol || opts.TLS || opts.TLSPassthrough {
		_ = conn.SetReadDeadline(time.Now().Add(prereadTimeout))
		src := prefixConn{Conn: conn, pre: &replay}
		if opts.ProxyProtocol {
			hdr, err := proxyproto.ReadHeader(src)
			if err != nil {
				logger.Debug("bad PROXY protocol header", zap.Stringer("remote", remote), zap.Error(err))
				return
			}
			if !hdr.Local {
				remote = hdr.Src
			}
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
		hello, buffered, err := tlsx.PeekClientHello(prefixConn{Conn: conn, pre: &replay}, time.Now().Add(prereadTimeout))
		if err != nil {
			logger.Debug("reading ClientHello", zap.Stringer("remote", remote), zap.Error(err))
			return
		}
		// bytes a caddy-l4 matcher read beyond what the peek consumed
		// come after the hello, whichever way the connection goes
		buffered = append(buffered, replay...)
		replay = nil
		sni = hello.ServerName
		terminate := opts.TLS
		if opts.TLS && opts.TLSPassthrough {
			if r := snap.Match(router.NewQuery(remote, local, sni)); r != nil && r.Passthrough {
				terminate = false
			}
		}
		if terminate {
			tc := tls.Server(prefixConn{Conn: conn, pre: &buffered}, snap.Certs().ServerConfig())
			_ = conn.SetDeadline(time.Now().Add(prereadTimeout))
			if err := tc.Handshake(); err != nil {
				logger.Debug("TLS handshake", zap.Stringer("remote", remote), zap.String("sni", sni), zap.Error(err))
				return
			}
			_ = conn.SetDeadline(time.Time{})
			sni = tc.ConnectionState().ServerName
			client = tc
		} else {
			replay = buffered
		}
	}
	if sni == "" {
		sni = snap.FallbackSNI()
	}
	sni = normalizeSNI(sni)

	q := router.NewQuery(remote, local, sni)
	route := snap.Match(q)
	if route == nil {
		logger.Debug("not hit any route", zap.Stringer("remote", remote), zap.Stringer("local", local), zap.String("sni", sni))
		return
	}
	fi := forwardInfo{
		routeID: route.ID, remote: remote, local: local, sni: sni,
		proxyProtocol: opts.ProxyProtocolToUpstream, metrics: route.metrics, start: start,
	}
	fi.metrics.connections.Inc()
	var ok bool
	releases, ok = route.preread(&Session{Remote: q.Remote, Local: q.Local, Port: q.Port, SNI: sni, RouteID: route.ID})
	if !ok {
		fi.metrics.deny.Inc()
		rt.accessLog(fi, 503, "", 0, 0)
		return
	}
	if route.Upstream == nil {
		logger.Warn("failed to set upstream: missing upstream configuration in Route or Service", zap.String("route", route.ID))
		fi.metrics.deny.Inc()
		rt.accessLog(fi, 503, "", 0, 0)
		return
	}
	handedOver = true
	rt.forward(client, replay, route.Upstream, fi, end, async)
}

// forwardInfo is what forward needs to know of the client side.
type forwardInfo struct {
	routeID       string
	remote, local netip.AddrPort
	sni           string
	proxyProtocol bool
	metrics       *routeMetrics
	start         time.Time
}

// forward dials u and pumps bytes until the connection ends, or with
// async only until the pump has started. replay is sent upstream first.
// end releases the client side; forward calls it when the connection is
// over.
func (rt *Runtime) forward(client net.Conn, replay []byte, u *Upstream, fi forwardInfo, end func(), async bool) {
	handedOver := false
	defer func() {
		if !handedOver {
			end()
		}
	}()
	logger := rt.Logger()
	var preface []byte
	if fi.proxyProtocol {
		preface = proxyproto.AppendV1(nil, fi.remote, fi.local)
	}
	// a TLS client without SNI (caddy-l4 terminated it with a default
	// certificate) still gets the dummy name: an empty ServerName would
	// send no SNI, and fail every handshake with tls.verify
	upSNI := upstreamSNI
	if fi.sni != "" {
		upSNI = fi.sni
	}
	bctx := u.varsContext(fi.remote, fi.local, fi.sni)
	d, err := u.dial("tcp", &bctx, preface, upSNI)
	if err != nil {
		logger.Warn("failed to connect to upstream", zap.String("route", fi.routeID), zap.Stringer("remote", fi.remote), zap.Error(err))
		fi.metrics.failed.Inc()
		rt.accessLog(fi, 502, "", 0, 0)
		return
	}
	if logger.Core().Enabled(zap.DebugLevel) {
		logger.Debug("proxy request to "+d.node.Addr, zap.String("route", fi.routeID), zap.Stringer("remote", fi.remote))
	}
	c := &Counters{}
	if len(replay) > 0 {
		_ = d.conn.SetWriteDeadline(time.Now().Add(u.idleTimeout))
		n, err := d.conn.Write(replay)
		c.Sent.Add(int64(n))
		if err != nil {
			d.conn.Close()
			u.balancer.Done(d.node, d.connect, false)
			fi.metrics.failed.Inc()
			rt.accessLog(fi, 502, d.node.Addr, int64(n), 0)
			return
		}
	}
	fi.metrics.active.Inc()
	tail := func() {
		d.conn.Close()
		fi.metrics.active.Dec()
		u.balancer.Done(d.node, d.connect, false)
		sent, received := c.Sent.Load(), c.Received.Load()
		fi.metrics.ok.Inc()
		fi.metrics.ingress.Add(float64(sent))
		fi.metrics.egress.Add(float64(received))
		rt.accessLog(fi, 200, d.node.Addr, sent, received)
		end()
	}
	handedOver = true
	if async {
		startPump(client, d.conn, u.idleTimeout, c, tail)
		return
	}
	pump(client, d.conn, u.idleTimeout, c)
	tail()
}

// ServeUpstream proxies conn straight to u, without matching: the data
// path of layer4.handlers.apisix_proxy. It closes conn.
func (rt *Runtime) ServeUpstream(conn net.Conn, pre []byte, u *Upstream) {
	if !rt.admitTCP() {
		conn.Close()
		return
	}
	fi := forwardInfo{
		routeID: "apisix_proxy", remote: router.AddrPortOf(conn.RemoteAddr()), local: router.AddrPortOf(conn.LocalAddr()),
		metrics: Collectors.route("apisix_proxy"), start: time.Now(),
	}
	fi.metrics.connections.Inc()
	if tc, ok := conn.(interface{ ConnectionState() tls.ConnectionState }); ok {
		fi.sni = normalizeSNI(tc.ConnectionState().ServerName)
	}
	rt.forward(conn, pre, u, fi, func() { conn.Close(); rt.doneTCP() }, false)
}

// accessLog writes one line per ended session when access_log is on, like
// APISIX's stream access log ($remote_addr $protocol $status $bytes_sent
// $bytes_received $session_time), plus the route and the upstream node.
func (rt *Runtime) accessLog(fi forwardInfo, status int, node string, sent, received int64) {
	if !rt.logAccess.Load() {
		return
	}
	rt.Logger().Named("access").Info("stream session",
		zap.Stringer("remote", fi.remote),
		zap.Stringer("local", fi.local),
		zap.String("protocol", "TCP"),
		zap.String("sni", fi.sni),
		zap.String("route", fi.routeID),
		zap.String("upstream", node),
		zap.Int("status", status),
		zap.Int64("bytes_received", sent),
		zap.Int64("bytes_sent", received),
		zap.Duration("session_time", time.Since(fi.start)),
	)
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
