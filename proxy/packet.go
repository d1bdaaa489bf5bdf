package proxy

import (
	"errors"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/caddy-apisix/stream/router"
)

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
		rt.warnUnmatched("udp", remote, local, "")
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
	d, err := u.dial(dialPacket, s, nil, "")
	if err != nil {
		s.failed(d.node, err)
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
			s.clientBytes(n)
			if _, err := conn.Write(buf[:n]); err != nil {
				return
			}
		}
	}()
	if len(pre) > 0 {
		n, _ := d.conn.Write(pre)
		s.upstreamBytes(n)
	}
	buf := make([]byte, maxDatagram)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return
		}
		last.Store(time.Now().UnixNano())
		w, _ := d.conn.Write(buf[:n])
		s.upstreamBytes(w)
	}
}
