//go:build !linux || portable

package proxy

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"
)

// maxDatagram is the largest UDP payload; datagrams are forwarded whole.
const maxDatagram = 65536

// sessionQueue bounds the datagrams waiting for one session's upstream
// write, as a socket buffer would; more are dropped, as UDP may.
const sessionQueue = 64

// maxReadErrors is how many failed reads in a row end Serve; one or a few
// (an ICMP error some systems report on the next read) are skipped.
const maxReadErrors = 100

// UDPServer proxies the datagrams of one UDP listener: the portable path,
// for systems other than Linux. Each client address:port is a session,
// served by ServePacketSession (the path of caddy-l4's UDP sessions) over
// a net.Conn that this server feeds the client's datagrams into and whose
// writes go out through the listening socket. It costs two goroutines
// per session, where Linux's epoll server (udpserver.go) costs none.
//
// Without IP(V6)_PKTINFO, a wildcard listener cannot learn the address a
// datagram was sent to: routes see the listener's own address as
// server_addr (0.0.0.0 or ::), and replies leave from whatever address
// the system picks. Bind a UDP listener to a specific address where
// routes match on server_addr or a multi-homed host must reply from the
// address it was asked on. The unanswered timeout (UDPUnansweredTimeout)
// and the descriptor reserve (FDReserve) are not applied here either.
type UDPServer struct {
	rt *Runtime
	pc *net.UDPConn
	// local is the listener's address.
	local netip.AddrPort

	mu       sync.Mutex
	sessions map[netip.AddrPort]*packetConn
	closed   bool
}

// NewUDPServer prepares pc for serving. It needs nothing beyond pc, so
// it does not fail; the error is the Linux server's (udpserver.go).
func (rt *Runtime) NewUDPServer(pc *net.UDPConn) (*UDPServer, error) {
	return &UDPServer{rt: rt, pc: pc, local: pc.LocalAddr().(*net.UDPAddr).AddrPort(),
		sessions: map[netip.AddrPort]*packetConn{}}, nil
}

// Serve reads datagrams until the socket is closed.
func (s *UDPServer) Serve() error {
	buf := make([]byte, maxDatagram)
	failures := 0
	for {
		n, from, err := s.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			if failures++; failures >= maxReadErrors {
				return err
			}
			continue
		}
		failures = 0
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		s.deliver(from, buf[:n])
	}
}

// deliver hands one datagram to its client's session, starting one for a
// new client.
func (s *UDPServer) deliver(from netip.AddrPort, b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if c := s.sessions[from]; c != nil {
		c.push(b)
		return
	}
	if m := s.rt.limits.udpPerListener.Load(); m > 0 && int64(len(s.sessions)) >= m {
		s.rt.refused(refusedUDPListener, m)
		return
	}
	c := &packetConn{srv: s, peer: from, in: make(chan []byte, sessionQueue),
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	s.sessions[from] = c
	first := append([]byte(nil), b...)
	go func() {
		s.rt.ServePacketSession(c, first)
		s.mu.Lock()
		if s.sessions[from] == c {
			delete(s.sessions, from)
		}
		s.mu.Unlock()
		c.Close()
	}()
}

// Close ends every session. The caller closes the socket.
func (s *UDPServer) Close() {
	s.mu.Lock()
	s.closed = true
	list := make([]*packetConn, 0, len(s.sessions))
	for _, c := range s.sessions {
		list = append(list, c)
	}
	s.mu.Unlock()
	for _, c := range list {
		c.Close()
	}
}

// Sessions is the number of live sessions.
func (s *UDPServer) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// packetConn is one client's side of a session as a net.Conn: every Read
// returns one datagram the client sent, every Write sends one back from
// the listening socket.
type packetConn struct {
	srv  *UDPServer
	peer netip.AddrPort
	in   chan []byte
	// wake interrupts a waiting Read when the deadline changes; done is
	// closed by Close.
	wake      chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	mu       sync.Mutex
	deadline time.Time
}

// push queues a copy of b, or drops it when the queue is full. The
// caller holds srv.mu.
func (c *packetConn) push(b []byte) {
	select {
	case c.in <- append([]byte(nil), b...):
	default:
	}
}

func (c *packetConn) Read(b []byte) (int, error) {
	for {
		c.mu.Lock()
		dl := c.deadline
		c.mu.Unlock()
		var t *time.Timer
		var expired <-chan time.Time
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return 0, os.ErrDeadlineExceeded
			}
			t = time.NewTimer(d)
			expired = t.C
		}
		n, again, err := c.wait(b, expired)
		if t != nil {
			t.Stop()
		}
		if !again {
			return n, err
		}
	}
}

// wait is one wait of Read: for a datagram, Close, the deadline, or a
// new deadline (again).
func (c *packetConn) wait(b []byte, expired <-chan time.Time) (n int, again bool, err error) {
	select {
	case p := <-c.in:
		return copy(b, p), false, nil
	case <-c.done:
		return 0, false, net.ErrClosed
	case <-expired:
		return 0, false, os.ErrDeadlineExceeded
	case <-c.wake:
		return 0, true, nil
	}
}

func (c *packetConn) Write(b []byte) (int, error) {
	select {
	case <-c.done:
		return 0, net.ErrClosed
	default:
	}
	return c.srv.pc.WriteToUDPAddrPort(b, c.peer)
}

func (c *packetConn) Close() error {
	c.closeOnce.Do(func() { close(c.done) })
	return nil
}

// LocalAddr is the listener's address: without packet info, a wildcard
// listener does not know which of its addresses the client wrote to.
func (c *packetConn) LocalAddr() net.Addr  { return c.srv.pc.LocalAddr() }
func (c *packetConn) RemoteAddr() net.Addr { return net.UDPAddrFromAddrPort(c.peer) }

func (c *packetConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

func (c *packetConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return nil
}

// SetWriteDeadline does nothing: a write to the listening socket does not
// wait for the client.
func (c *packetConn) SetWriteDeadline(time.Time) error { return nil }

var _ net.Conn = (*packetConn)(nil)
