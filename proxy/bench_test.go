package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime/metrics"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"
	"github.com/caddy-apisix/stream/router"
)

// benchIOTimeout bounds every blocking call of the benchmarks, so that a
// broken data path fails the benchmark instead of hanging it.
const benchIOTimeout = 10 * time.Second

// benchRuntime returns a runtime serving routes stream routes towards
// upstream: routes-1 that do not match a loopback client on port (each
// wants another server_port, or port and a 10.x client address), then the
// one that matches, last in APISIX order. idle > 0 sets the upstream's
// send/read timeouts (seconds).
func benchRuntime(tb testing.TB, upstream string, port, routes, idle int) *Runtime {
	tb.Helper()
	rt, reg := compiledRegistry(tb)
	err := reg.Update(func(tx *registry.Tx) error {
		up := fmt.Sprintf(`{"id":"1","type":"roundrobin","nodes":{%q:1}}`, upstream)
		if idle > 0 {
			up = fmt.Sprintf(`{"id":"1","type":"roundrobin","nodes":{%q:1},"timeout":{"connect":5,"send":%d,"read":%d}}`, upstream, idle, idle)
		}
		if _, _, err := tx.Put(model.Upstreams, "1", []byte(up)); err != nil {
			return err
		}
		for i := 1; i < routes; i++ {
			id := fmt.Sprintf("n%05d", i)
			var body string
			if i%2 == 1 {
				body = fmt.Sprintf(`{"id":%q,"server_port":%d,"remote_addr":"10.%d.%d.%d","upstream_id":"1"}`,
					id, port, i>>16&255, i>>8&255, i&255)
			} else {
				other := 20000 + i
				if other == port {
					other = 20000 + routes + 1
				}
				body = fmt.Sprintf(`{"id":%q,"server_port":%d,"upstream_id":"1"}`, id, other)
			}
			if _, _, err := tx.Put(model.StreamRoutes, id, []byte(body)); err != nil {
				return err
			}
		}
		body := fmt.Sprintf(`{"id":"x-bench","server_port":%d,"upstream_id":"1"}`, port)
		_, _, err := tx.Put(model.StreamRoutes, "x-bench", []byte(body))
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return rt
}

// benchTCPProxy starts a TCP stream_proxy listener on loopback routing to
// upstream and returns its address.
func benchTCPProxy(tb testing.TB, upstream string, routes int, mode CopyMode) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	rt := benchRuntime(tb, upstream, ln.Addr().(*net.TCPAddr).Port, routes, 0)
	rt.SetTCPCopy(mode)
	go func() { _ = rt.ServeTCP(ln, ListenerOptions{}) }()
	return ln.Addr().String()
}

// benchTCPServer runs serve for every connection accepted on a loopback
// listener and returns its address.
func benchTCPServer(tb testing.TB, serve func(net.Conn)) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(benchIOTimeout))
				serve(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// benchEcho answers everything it reads and half-closes on EOF.
func benchEcho(c net.Conn) {
	_, _ = io.Copy(c, c)
	_ = c.(*net.TCPConn).CloseWrite()
}

// benchRoundTrip connects to addr, sends msg, reads the echo and closes,
// as l4load connrate does.
func benchRoundTrip(addr string, msg, got []byte) error {
	c, err := net.DialTimeout("tcp", addr, benchIOTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(benchIOTimeout))
	if _, err := c.Write(msg); err != nil {
		return err
	}
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo mismatch: %q", got)
	}
	return nil
}

// benchConns runs b.N connections to addr, each a 64 B echo, and reports
// the goroutines created per connection (the echo server's one included:
// compare with direct), a figure that does not depend on the machine's
// load.
func benchConns(b *testing.B, addr string) {
	msg := bytes.Repeat([]byte{'x'}, 64)
	got := make([]byte, len(msg))
	created := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(created)
	before := created[0].Value.Uint64()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := benchRoundTrip(addr, msg, got); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	metrics.Read(created)
	b.ReportMetric(float64(created[0].Value.Uint64()-before)/float64(b.N), "goroutines/op")
}

// BenchmarkTCPConn measures one proxied connection's whole life (accept,
// match, dial, 64 B echo, close) and its allocations, which include the
// client's and the echo server's: compare with the direct sub-benchmark.
// routes=10000 puts 9,999 non-matching routes before the matching one.
func BenchmarkTCPConn(b *testing.B) {
	backend := benchTCPServer(b, benchEcho)
	for _, tc := range []struct {
		name   string
		routes int // 0: no proxy
	}{{"direct", 0}, {"routes=1", 1}, {"routes=10000", 10000}} {
		b.Run(tc.name, func(b *testing.B) {
			addr := backend
			if tc.routes > 0 {
				addr = benchTCPProxy(b, backend, tc.routes, CopyAuto)
			}
			benchConns(b, addr)
		})
	}
}

// BenchmarkTCPPingPong measures the added latency of one 64 B round trip
// on a persistent proxied connection (l4load pingpong).
func BenchmarkTCPPingPong(b *testing.B) {
	backend := benchTCPServer(b, benchEcho)
	for _, proxied := range []bool{false, true} {
		name := "direct"
		if proxied {
			name = "proxy"
		}
		b.Run(name, func(b *testing.B) {
			addr := backend
			if proxied {
				addr = benchTCPProxy(b, backend, 1, CopyAuto)
			}
			c, err := net.DialTimeout("tcp", addr, benchIOTimeout)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			msg := bytes.Repeat([]byte{'p'}, 64)
			got := make([]byte, len(msg))
			_ = c.SetDeadline(time.Now().Add(benchIOTimeout))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, got); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTCPThroughput pushes bulk data client → proxy → sink (the raw
// copy of plain TCP, with each copy mode) and reports bytes/s; the sink's
// count must match.
func BenchmarkTCPThroughput(b *testing.B) {
	for _, m := range []struct {
		name string
		mode CopyMode
	}{{"buffer", CopyBuffer}, {"splice", CopySplice}} {
		b.Run("copy="+m.name, func(b *testing.B) { benchTCPThroughput(b, m.mode) })
	}
}

func benchTCPThroughput(b *testing.B, mode CopyMode) {
	const chunk = 256 << 10
	var received atomic.Int64
	done := make(chan struct{}, 1)
	sink := benchTCPServer(b, func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(time.Minute))
		n, _ := io.Copy(io.Discard, c)
		received.Store(n)
		done <- struct{}{}
	})
	addr := benchTCPProxy(b, sink, 1, mode)
	c, err := net.DialTimeout("tcp", addr, benchIOTimeout)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	buf := make([]byte, chunk)
	b.SetBytes(chunk)
	b.ReportAllocs()
	var sent int64
	b.ResetTimer()
	for b.Loop() {
		n, err := c.Write(buf)
		sent += int64(n)
		if err != nil {
			b.Fatal(err)
		}
	}
	_ = c.(*net.TCPConn).CloseWrite()
	select {
	case <-done:
	case <-time.After(benchIOTimeout):
		b.Fatal("sink did not see EOF")
	}
	b.StopTimer()
	if got := received.Load(); got != sent {
		b.Fatalf("sink received %d bytes, sent %d", got, sent)
	}
}

// benchUDP starts a UDP echo backend and a UDP stream_proxy listener in
// front of it, and returns the listener's address. Sessions idle out
// after 1 s, so that new-session runs do not pile up sockets.
func benchUDP(b *testing.B) string {
	b.Helper()
	be, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { be.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := be.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = be.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	rt := benchRuntime(b, be.LocalAddr().String(), pc.LocalAddr().(*net.UDPAddr).Port, 1, 1)
	srv, err := rt.NewUDPServer(pc)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		pc.Close()
		srv.Close()
	})
	go func() { _ = srv.Serve() }()
	return pc.LocalAddr().String()
}

// benchUDPExchange sends msg on c and waits for its echo.
func benchUDPExchange(c net.Conn, msg, got []byte) error {
	_ = c.SetDeadline(time.Now().Add(benchIOTimeout))
	if _, err := c.Write(msg); err != nil {
		return err
	}
	n, err := c.Read(got)
	if err != nil {
		return err
	}
	if !bytes.Equal(got[:n], msg) {
		return fmt.Errorf("echo mismatch: %q", got[:n])
	}
	return nil
}

// BenchmarkUDP measures UDP request/response through the proxy: "flow"
// reuses one client socket (one session), "new-session" opens a fresh
// socket per request, so every request sets up a session (match, dial,
// reply goroutine), as DNS clients with random source ports do.
func BenchmarkUDP(b *testing.B) {
	addr := benchUDP(b)
	msg := bytes.Repeat([]byte{'u'}, 64)
	got := make([]byte, 2048)
	b.Run("flow", func(b *testing.B) {
		c, err := net.Dial("udp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if err := benchUDPExchange(c, msg, got); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("new-session", func(b *testing.B) {
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			c, err := net.Dial("udp", addr)
			if err != nil {
				b.Fatal(err)
			}
			err = benchUDPExchange(c, msg, got)
			c.Close()
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkMatch measures route matching alone with the matching route
// last behind routes-1 others.
func BenchmarkMatch(b *testing.B) {
	for _, routes := range []int{1, 10000} {
		b.Run("routes="+strconv.Itoa(routes), func(b *testing.B) {
			rt := benchRuntime(b, "127.0.0.1:9", 19030, routes, 0)
			snap := rt.Snapshot()
			local := netip.MustParseAddrPort("127.0.0.1:19030")
			remote := netip.MustParseAddrPort("127.0.0.1:40000")
			q := router.NewQuery(remote, local, "")
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if r := snap.Match(q); r == nil || r.ID != "x-bench" {
					b.Fatalf("matched %v, want x-bench", r)
				}
			}
		})
	}
}
