package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"
)

// newTestRuntime returns a runtime serving the given stream routes and
// upstreams (JSON bodies keyed by id).
func newTestRuntime(t *testing.T, routes, upstreams map[string]string) (*Runtime, *registry.Registry) {
	t.Helper()
	rt := NewRuntime(nil)
	t.Cleanup(rt.Close)
	reg := registry.New()
	if err := reg.SetCompile(rt.Compile); err != nil {
		t.Fatal(err)
	}
	putAll(t, reg, upstreams, routes)
	return rt, reg
}

func putAll(t *testing.T, reg *registry.Registry, upstreams, routes map[string]string) {
	t.Helper()
	err := reg.Update(func(tx *registry.Tx) error {
		for id, body := range upstreams {
			if _, _, err := tx.Put(model.Upstreams, id, []byte(body)); err != nil {
				return err
			}
		}
		for id, body := range routes {
			if _, _, err := tx.Put(model.StreamRoutes, id, []byte(body)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// udpEcho answers every datagram with prefix+datagram.
func udpEcho(t *testing.T, prefix string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, maxDatagram)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(append([]byte(prefix), buf[:n]...), from)
		}
	}()
	return pc.LocalAddr().String()
}

func udpAsk(t *testing.T, c net.Conn, msg []byte) ([]byte, error) {
	t.Helper()
	if _, err := c.Write(msg); err != nil {
		return nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, maxDatagram)
	n, err := c.Read(buf)
	return buf[:n], err
}

// A wildcard UDP listener learns each datagram's destination, so
// server_addr matches and replies leave from the address the client used.
func TestUDPWildcardServerAddr(t *testing.T) {
	if portableUDP {
		t.Skip("without IP_PKTINFO a wildcard listener's server_addr is its own address (README: Platforms)")
	}
	a, b := udpEcho(t, "A:"), udpEcho(t, "B:")
	rt, _ := newTestRuntime(t, map[string]string{
		"1": `{"server_addr":"127.0.0.2","upstream":{"nodes":{"` + a + `":1}}}`,
		"2": `{"server_addr":"127.0.0.3","upstream":{"nodes":{"` + b + `":1}}}`,
	}, nil)
	pc, err := net.ListenUDP("udp", &net.UDPAddr{Port: 0})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := rt.NewUDPServer(pc)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve() }()
	t.Cleanup(func() { pc.Close(); srv.Close() })
	port := pc.LocalAddr().(*net.UDPAddr).Port
	for _, tc := range []struct{ dst, want string }{{"127.0.0.2", "A:"}, {"127.0.0.3", "B:"}} {
		// a connected socket only accepts replies from the address it sent to
		c, err := net.Dial("udp", net.JoinHostPort(tc.dst, fmt.Sprint(port)))
		if err != nil {
			t.Fatal(err)
		}
		got, err := udpAsk(t, c, []byte("ping"))
		c.Close()
		if err != nil || string(got) != tc.want+"ping" {
			t.Errorf("via %s: got %q, %v; want %q", tc.dst, got, err, tc.want+"ping")
		}
	}
	// no route for 127.0.0.4: no reply
	c, _ := net.Dial("udp", fmt.Sprintf("127.0.0.4:%d", port))
	defer c.Close()
	if got, err := udpAsk(t, c, []byte("ping")); err == nil {
		t.Errorf("unmatched datagram got a reply %q", got)
	}
}

// The upstream's idle timeout ends UDP sessions and frees their sockets.
func TestUDPSessionIdle(t *testing.T) {
	a := udpEcho(t, "")
	rt, _ := newTestRuntime(t, map[string]string{
		"1": `{"upstream":{"nodes":{"` + a + `":1},"timeout":{"connect":1,"send":0.2,"read":0.2}}}`,
	}, nil)
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := rt.NewUDPServer(pc)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve() }()
	t.Cleanup(func() { pc.Close(); srv.Close() })
	c, _ := net.Dial("udp", pc.LocalAddr().String())
	defer c.Close()
	big := bytes.Repeat([]byte{'x'}, 60<<10)
	got, err := udpAsk(t, c, big)
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("60 KiB datagram: got %d bytes, %v", len(got), err)
	}
	if n := srv.Sessions(); n != 1 {
		t.Fatalf("sessions = %d, want 1", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for srv.Sessions() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := srv.Sessions(); n != 0 {
		t.Fatalf("session not ended after idle timeout: %d live", n)
	}
}

// A TCP connection with no route is closed without a byte written.
func TestTCPNoRouteSilentClose(t *testing.T) {
	rt, _ := newTestRuntime(t, map[string]string{`1`: `{"server_port":1,"upstream":{"nodes":{"127.0.0.1:1":1}}}`}, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = rt.ServeTCP(ln, ListenerOptions{}) }()
	t.Cleanup(func() { ln.Close() })
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	b, err := io.ReadAll(c)
	if len(b) != 0 {
		t.Errorf("read %q from an unmatched connection", b)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Errorf("connection was not closed: %v", err)
	}
}

// tcpEcho serves an echo backend until the test ends and returns its
// address.
func tcpEcho(t *testing.T) string {
	t.Helper()
	addr, stop := echoOn(t)
	t.Cleanup(stop)
	return addr
}

// echoOn serves an echo backend on a new loopback port until stop. It
// copies through a user-space buffer: io.Copy between two TCP
// connections splices through a pipe from the net package's sync.Pool,
// which only garbage collections close, and tests that count the
// process's descriptors (TestAutoCopyCalibrates) would see it.
func echoOn(t *testing.T) (addr string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(struct{ io.Writer }{c}, struct{ io.Reader }{c}); c.Close() }()
		}
	}()
	return ln.Addr().String(), func() { ln.Close() }
}

// roundTrip opens a connection to addr, echoes one message and returns
// the open connection.
func roundTrip(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("0123456789")
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo through %s: %q, %v", addr, got, err)
	}
	_ = c.SetReadDeadline(time.Time{})
	return c
}

// Each proxied connection shows in the route's metrics: matched, ended
// with status 200, and its bytes both ways.
func TestTCPMetrics(t *testing.T) {
	echo := tcpEcho(t)
	rt, _ := newTestRuntime(t, map[string]string{"metrics-route": `{"upstream":{"nodes":{"` + echo + `":1}}}`}, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = rt.ServeTCP(ln, ListenerOptions{}) }()
	t.Cleanup(func() { ln.Close() })
	rm := rt.metrics.route("metrics-route")
	em := rm.end(netip.MustParseAddrPort(ln.Addr().String()), echo)
	before := testutil.ToFloat64(em.ok)
	roundTrip(t, ln.Addr().String()).Close()
	deadline := time.Now().Add(2 * time.Second)
	for testutil.ToFloat64(em.ok) == before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := testutil.ToFloat64(em.ok) - before; n != 1 {
		t.Fatalf("status 200 count grew by %v, want 1", n)
	}
	for _, c := range []prometheus.Counter{em.fromClient, em.toClient, em.toUpstream, em.fromUpstream} {
		if n := testutil.ToFloat64(c); n < 10 {
			t.Errorf("bandwidth %v, want at least 10 on each type and side", n)
		}
	}
	if a := testutil.ToFloat64(em.active); a != 0 {
		t.Errorf("active = %v after the connection ended", a)
	}
}

// Scrapes while connections open, move bytes and close count each byte
// once: after the last one closed, the bandwidth series hold exactly the
// bytes sent (run with -race, this also checks the scrape's reads of open
// sessions).
func TestTCPBytesScrapedWhileOpen(t *testing.T) {
	echo := tcpEcho(t)
	rt, _ := newTestRuntime(t, map[string]string{"scraped": `{"upstream":{"nodes":{"` + echo + `":1}}}`}, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = rt.ServeTCP(ln, ListenerOptions{}) }()
	t.Cleanup(func() { ln.Close() })
	em := rt.metrics.route("scraped").end(netip.MustParseAddrPort(ln.Addr().String()), echo)
	const conns, rounds = 20, 5
	msg := []byte("0123456789")
	done := make(chan error, conns)
	for range conns {
		go func() {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				done <- err
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			got := make([]byte, len(msg))
			for range rounds {
				if _, err := c.Write(msg); err != nil {
					done <- err
					return
				}
				if _, err := io.ReadFull(c, got); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for i := 0; i < conns; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			i++
		default:
			rt.metrics.flushStreams()
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(em.ok) < conns && time.Now().Before(deadline) {
		rt.metrics.flushStreams()
		time.Sleep(10 * time.Millisecond)
	}
	want := float64(conns * rounds * len(msg))
	for _, c := range []prometheus.Counter{em.fromClient, em.toClient, em.toUpstream, em.fromUpstream} {
		if n := testutil.ToFloat64(c); n != want {
			t.Errorf("bandwidth %v, want %v on each type and side", n, want)
		}
	}
}

// The open connections a scrape counts stay counted while others close,
// whichever was opened first or last: a scrape during the connections'
// life sees exactly the bytes they moved so far.
func TestTCPBytesScrapedWhileOthersClose(t *testing.T) {
	echo := tcpEcho(t)
	rt, _ := newTestRuntime(t, map[string]string{"others": `{"upstream":{"nodes":{"` + echo + `":1}}}`}, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = rt.ServeTCP(ln, ListenerOptions{}) }()
	t.Cleanup(func() { ln.Close() })
	em := rt.metrics.route("others").end(netip.MustParseAddrPort(ln.Addr().String()), echo)
	echoOnce := func(c net.Conn) {
		t.Helper()
		msg := []byte("0123456789")
		got := make([]byte, len(msg))
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatal(err)
		}
	}
	// upstream bytes counted so far, once the ended sessions counted
	// theirs
	scraped := func(ended float64) float64 {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for testutil.ToFloat64(em.ok) < ended && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		rt.metrics.flushStreams()
		return testutil.ToFloat64(em.toUpstream)
	}
	// opened in this order; a, b, c are all open
	a, b, c := roundTrip(t, ln.Addr().String()), roundTrip(t, ln.Addr().String()), roundTrip(t, ln.Addr().String())
	defer a.Close()
	defer c.Close()
	waitActive := func(want float64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for testutil.ToFloat64(em.active) != want && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitActive(3)
	if n := scraped(0); n != 30 {
		t.Fatalf("three open connections: %v bytes scraped, want 30", n)
	}
	b.Close()
	echoOnce(a)
	echoOnce(c)
	if n := scraped(1); n != 50 {
		t.Fatalf("after the middle connection closed: %v bytes scraped, want 50", n)
	}
	c.Close()
	echoOnce(a)
	if n := scraped(2); n != 60 {
		t.Fatalf("after the last opened closed: %v bytes scraped, want 60", n)
	}
	a.Close()
	if n := scraped(3); n != 60 {
		t.Fatalf("after all closed: %v bytes, want 60", n)
	}
}
