//go:build linux

package integration

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// TestIdleTimeout checks upstream timeout {connect, send, read} = 1 s: an
// idle proxied connection is closed (well within 5 s), while a connection
// with traffic more often than that stays open past the timeout.
func TestIdleTimeout(t *testing.T) {
	be := newBackend(t, "slow-talker")
	addr := proxyTo(t, map[string]any{"type": "roundrobin", "nodes": nodes(be),
		"timeout": map[string]any{"connect": 1, "send": 1, "read": 1}})

	t.Run("idle connection is closed", func(t *testing.T) {
		c, err := dialFrom("127.0.0.1", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if name, err := greeting(c); err != nil || name != be.Name {
			t.Fatalf("greeting %q, %v", name, err)
		}
		_ = c.SetReadDeadline(time.Now().Add(answerWait))
		n, err := c.Read(make([]byte, 1))
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("idle connection still open after %v; want it closed after the 1 s timeout", answerWait)
		}
		if n != 0 || !closedSilently(err) {
			t.Fatalf("read %d bytes, %v; want EOF or RST", n, err)
		}
	})
	t.Run("activity keeps it open", func(t *testing.T) {
		c, err := dialFrom("127.0.0.1", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if name, err := greeting(c); err != nil || name != be.Name {
			t.Fatalf("greeting %q, %v", name, err)
		}
		// 15 round trips 200 ms apart span 3 s, three idle timeouts.
		for range 15 {
			time.Sleep(200 * time.Millisecond)
			checkEcho(t, c, be.Name)
		}
	})
}

// TestHalfClose checks that a FIN travels through the proxy in both
// directions while the other direction keeps working.
func TestHalfClose(t *testing.T) {
	t.Run("client closes its write side first", func(t *testing.T) {
		got := make(chan string, 1)
		up := tcpServer(t, func(c *net.TCPConn) {
			_ = c.SetDeadline(time.Now().Add(answerWait))
			b, err := io.ReadAll(c) // returns at the client's FIN
			got <- fmt.Sprintf("%q %v", b, err)
			_, _ = fmt.Fprintf(c, "received %d bytes", len(b))
		})
		addr := proxyTo(t, map[string]any{"type": "roundrobin", "nodes": map[string]int{up: 1}})
		c, err := dialFrom("127.0.0.1", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(answerWait))
		if _, err := io.WriteString(c, "request"); err != nil {
			t.Fatal(err)
		}
		if err := c.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		reply, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("reading the reply after CloseWrite: %v", err)
		}
		if s := <-got; s != `"request" <nil>` {
			t.Fatalf("backend read %s, want the request and EOF", s)
		}
		if string(reply) != "received 7 bytes" {
			t.Fatalf("reply %q, want %q", reply, "received 7 bytes")
		}
	})
	t.Run("backend closes its write side first", func(t *testing.T) {
		got := make(chan string, 1)
		up := tcpServer(t, func(c *net.TCPConn) {
			_ = c.SetDeadline(time.Now().Add(answerWait))
			if _, err := io.WriteString(c, "bye"); err != nil {
				got <- err.Error()
				return
			}
			_ = c.CloseWrite()
			b, err := io.ReadAll(c)
			got <- fmt.Sprintf("%q %v", b, err)
		})
		addr := proxyTo(t, map[string]any{"type": "roundrobin", "nodes": map[string]int{up: 1}})
		c, err := dialFrom("127.0.0.1", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(answerWait))
		b, err := io.ReadAll(c)
		if err != nil || string(b) != "bye" {
			t.Fatalf("read %q, %v; want \"bye\" and EOF", b, err)
		}
		// the client's direction still works after the backend's FIN
		if _, err := io.WriteString(c, "late data"); err != nil {
			t.Fatalf("writing after the backend's FIN: %v", err)
		}
		_ = c.(*net.TCPConn).CloseWrite()
		if s := <-got; s != `"late data" <nil>` {
			t.Fatalf("backend read %s, want the late data and EOF", s)
		}
	})
}

// TestLargeTransfer moves 1 GiB each way at once through the proxy and
// compares SHA-256 sums at both ends, with each stream_proxy.tcp_copy.
func TestLargeTransfer(t *testing.T) {
	for _, mode := range []string{"buffer", "splice"} {
		t.Run("tcp_copy="+mode, func(t *testing.T) { largeTransfer(t, mode) })
	}
}

func largeTransfer(t *testing.T, tcpCopy string) {
	const size = 1 << 30
	type result struct {
		sum [32]byte
		n   int64
		err error
	}
	upRecv, upSent := make(chan result, 1), make(chan result, 1)
	up := tcpServer(t, func(c *net.TCPConn) {
		_ = c.SetDeadline(time.Now().Add(time.Minute))
		done := make(chan struct{})
		go func() {
			defer close(done)
			sum, n, err := hashedCopy(c, pattern(2), size)
			if err == nil {
				err = c.CloseWrite()
			}
			upSent <- result{sum, n, err}
		}()
		sum, n, err := drainHash(c)
		upRecv <- result{sum, n, err}
		<-done // the connection closes when the handler returns
	})
	addr := proxyToCopy(t, map[string]any{"type": "roundrobin", "nodes": map[string]int{up: 1}}, tcpCopy)
	c, err := dialFrom("127.0.0.1", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	sentCh := make(chan result, 1)
	go func() {
		sum, n, err := hashedCopy(c, pattern(1), size)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		sentCh <- result{sum, n, err}
	}()
	recvSum, recvN, recvErr := drainHash(c)
	sent := <-sentCh
	var ur, us result
	for _, ch := range []struct {
		c   chan result
		dst *result
	}{{upRecv, &ur}, {upSent, &us}} {
		select {
		case *ch.dst = <-ch.c:
		case <-time.After(time.Minute):
			t.Fatal("backend did not finish within a minute")
		}
	}
	for _, r := range []struct {
		what string
		err  error
		n    int64
	}{{"client send", sent.err, sent.n}, {"client receive", recvErr, recvN}, {"backend send", us.err, us.n}, {"backend receive", ur.err, ur.n}} {
		if r.err != nil || r.n != size {
			t.Errorf("%s: %d bytes, %v; want %d bytes", r.what, r.n, r.err, size)
		}
	}
	if sent.sum != ur.sum {
		t.Errorf("client → backend: SHA-256 differs (sent %x, received %x)", sent.sum[:8], ur.sum[:8])
	}
	if us.sum != recvSum {
		t.Errorf("backend → client: SHA-256 differs (sent %x, received %x)", us.sum[:8], recvSum[:8])
	}
}

// TestRouteChangeKeepsOpenConnections checks that a route change leaves
// an open TCP connection on its old upstream while the next connection
// uses the new route.
func TestRouteChangeKeepsOpenConnections(t *testing.T) {
	oldBe, newBe := newBackend(t, "old"), newBackend(t, "new")
	port := freePort(t)
	p := startCaddy(t, caddyConfig{Apisix: map[string]any{
		"stream_proxy": map[string]any{"tcp": []any{hostPort("127.0.0.1", port)}},
	}})
	addr := hostPort("127.0.0.1", port)
	p.put(t, "stream_routes/1", map[string]any{"upstream": upstreamOf(oldBe)})
	c, err := dialFrom("127.0.0.1", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if name, err := greeting(c); err != nil || name != "old" {
		t.Fatalf("greeting %q, %v; want old", name, err)
	}
	p.put(t, "stream_routes/1", map[string]any{"upstream": upstreamOf(newBe)})
	checkEcho(t, c, "old")
	if got := whoTCP(t, "127.0.0.1", addr); got != "new" {
		t.Fatalf("next connection answered by %q, want new", got)
	}
	checkEcho(t, c, "old")
	// deleting the route leaves the open connection alone too
	if code, body, err := p.request("DELETE", "/apisix/admin/stream_routes/1", nil); err != nil || code != 200 {
		t.Fatalf("DELETE: %d %s %v", code, body, err)
	}
	checkEcho(t, c, "old")
	if got := whoTCP(t, "127.0.0.1", addr); got != "" {
		t.Fatalf("after DELETE a new connection was answered by %q, want a silent close", got)
	}
}

// TestHalfCloseTLS checks half-close through a TLS-terminating listener:
// the client's close_notify reaches the backend as EOF, and the backend's
// reply and FIN (as close_notify) still reach the client.
func TestHalfCloseTLS(t *testing.T) {
	cert := newTestCert(t, "half.test.com")
	got := make(chan string, 1)
	up := tcpServer(t, func(c *net.TCPConn) {
		_ = c.SetDeadline(time.Now().Add(answerWait))
		b, err := io.ReadAll(c)
		got <- fmt.Sprintf("%q %v", b, err)
		_, _ = fmt.Fprintf(c, "received %d bytes", len(b))
	})
	port := freePort(t)
	startCaddy(t, caddyConfig{Apisix: map[string]any{
		"stream_proxy":  map[string]any{"tcp": []any{map[string]any{"addr": hostPort("127.0.0.1", port), "tls": true}}},
		"ssls":          []any{sslObject(cert, "h", "half.test.com")},
		"stream_routes": []any{map[string]any{"id": "1", "upstream": map[string]any{"nodes": map[string]int{up: 1}}}},
	}})
	raw, err := dialFrom("127.0.0.1", hostPort("127.0.0.1", port))
	if err != nil {
		t.Fatal(err)
	}
	c := tls.Client(raw, &tls.Config{ServerName: "half.test.com", RootCAs: cert.Pool(), MinVersion: tls.VersionTLS12})
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(answerWait))
	if _, err := io.WriteString(c, "tls request"); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	reply, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the reply after CloseWrite: %v", err)
	}
	if s := <-got; s != `"tls request" <nil>` {
		t.Fatalf("backend read %s, want the request and EOF", s)
	}
	if string(reply) != "received 11 bytes" {
		t.Fatalf("reply %q, want %q", reply, "received 11 bytes")
	}
}
