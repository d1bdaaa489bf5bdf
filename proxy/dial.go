package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-apisix/stream/balancer"
	"github.com/caddy-apisix/stream/tlsx"

	"github.com/caddy-apisix/stream/rawsock"
)

// dialKind is what a dial opens.
type dialKind uint8

const (
	// dialStream is a TCP connection (TLS for scheme tls).
	dialStream dialKind = iota
	// dialPacket is a connected UDP net.Conn (caddy-l4 packet sessions).
	dialPacket
	// dialRawUDP is a connected non-blocking UDP socket the UDP server
	// polls itself.
	dialRawUDP
)

// dialed is an upstream connection (or raw socket) and the node it goes
// to.
type dialed struct {
	conn    net.Conn
	fd      int
	node    *balancer.Node
	connect time.Duration
}

// dial is the one dial loop of every session: it connects to a node of
// u, trying up to retries further nodes on connect failures and timeouts
// (and, for scheme tls, failed handshakes) while retry_timeout allows,
// higher priority tiers first, invisibly to the client. preface is
// written before any TLS (a PROXY protocol header). sni is the name sent
// to a TLS upstream. On failure the result names the last node tried
// (already released), for the status metric's node label.
//
// Each failed node is logged at WARN with the session's route, the
// upstream and the error, as nginx logs every failed upstream connect
// ("connect() failed ... while connecting to upstream"): a node that
// retries hide from the client is still visible.
func (u *Upstream) dial(kind dialKind, s *session, preface []byte, sni string) (dialed, error) {
	bctx := &s.bctx
	start := time.Now()
	var lastErr error
	var last *balancer.Node
	for attempt := 0; attempt <= u.retries; attempt++ {
		if attempt > 0 && u.retryTimeout > 0 && time.Since(start) > u.retryTimeout {
			return dialed{node: last}, fmt.Errorf("proxy retry timeout, retry count: %d: %w", attempt-1, lastErr)
		}
		node, err := u.balancer.Pick(bctx)
		if err != nil {
			if lastErr != nil {
				return dialed{node: last}, lastErr
			}
			return dialed{}, err
		}
		var d dialed
		switch kind {
		case dialRawUDP:
			t0 := time.Now()
			d.fd, err = rawsock.ConnectUDP(node.Addr)
			d.node, d.connect = node, time.Since(t0)
		default:
			d, err = u.dialNode(kind, node, preface, sni)
		}
		if err == nil {
			return d, nil
		}
		lastErr, last = err, node
		s.rt.Logger().Warn("upstream node failed", zap.String("route", s.RouteID), zap.String("upstream", u.ID()),
			zap.String("node", node.Addr), zap.Int("attempt", attempt+1), zap.Bool("retrying", attempt < u.retries), zap.Error(err))
		u.balancer.Done(node, 0, true)
		if u.checker != nil {
			u.checker.ReportFailure(node.Addr, isTimeout(err))
		}
	}
	if lastErr == nil {
		lastErr = balancer.ErrNoNode
	}
	return dialed{node: last}, lastErr
}

func (u *Upstream) dialNode(kind dialKind, node *balancer.Node, preface []byte, sni string) (dialed, error) {
	t0 := time.Now()
	deadline := t0.Add(u.connectTimeout)
	var conn net.Conn
	if kind == dialStream && !u.tls {
		// the plain path: a raw socket when the node is an IP address
		c, ok, err := dialTCP(node.Addr, deadline)
		if err != nil {
			return dialed{}, err
		}
		if ok {
			conn = c
		}
	}
	var ctx context.Context
	if conn == nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(context.Background(), deadline)
		defer cancel()
		network := "tcp"
		if kind == dialPacket {
			network = "udp"
		}
		// no TCP keepalive towards upstreams (nginx proxy_socket_keepalive off)
		d := net.Dialer{KeepAlive: -1}
		c, err := d.DialContext(ctx, network, node.Addr)
		if err != nil {
			return dialed{}, err
		}
		conn = c
	}
	if len(preface) > 0 {
		_ = conn.SetWriteDeadline(deadline)
		if _, err := conn.Write(preface); err != nil {
			conn.Close()
			return dialed{}, err
		}
		_ = conn.SetWriteDeadline(time.Time{})
	}
	if u.tls && kind == dialStream {
		// dialled through net above (dialTCP is for plain TCP): ctx is set
		cfg := tlsx.UpstreamConfig(sni, u.tlsVerify, u.clientCert)
		cfg.ClientSessionCache = u.sessions
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return dialed{}, fmt.Errorf("tls handshake with %s: %w", node.Addr, err)
		}
		conn = tc
	}
	return dialed{conn: conn, fd: -1, node: node, connect: time.Since(t0)}, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
