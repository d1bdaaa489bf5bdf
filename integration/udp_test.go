//go:build linux

package integration

import (
	"bytes"
	"fmt"
	"net"
	"testing"
	"time"
)

// udpProxy starts Caddy with one UDP listener on 127.0.0.1 and returns
// the process and the listen address.
func udpProxy(t *testing.T) (*caddyProc, string) {
	t.Helper()
	port := freePort(t)
	p := startCaddy(t, caddyConfig{Apisix: map[string]any{
		"stream_proxy": map[string]any{"udp": []any{hostPort("127.0.0.1", port)}},
	}})
	return p, hostPort("127.0.0.1", port)
}

// TestUDPSessions checks that each client address:port is its own session
// with its own upstream socket, and replies reach the right client.
func TestUDPSessions(t *testing.T) {
	be := newBackend(t, "udp-echo")
	p, addr := udpProxy(t)
	p.put(t, "stream_routes/1", map[string]any{"upstream": upstreamOf(be)})

	clients := []struct {
		name string
		conn *net.UDPConn
	}{{"one", udpFrom(t, "127.0.0.1", addr)}, {"two", udpFrom(t, "127.0.0.1", addr)}}
	for i := range 5 {
		for _, c := range clients {
			msg := []byte(fmt.Sprintf("%s %d", c.name, i))
			name, echo, ok := udpAsk(t, c.conn, msg, answerWait)
			if !ok || name != be.Name || !bytes.Equal(echo, msg) {
				t.Fatalf("client %s datagram %d: reply %q %q (ok %v), want %q %q", c.name, i, name, echo, ok, be.Name, msg)
			}
		}
	}
	if n := be.Peers(); n != 2 {
		t.Fatalf("the backend saw %d upstream sockets, want 2 (one per client session)", n)
	}
}

// TestUDPLargeDatagram checks that a 60 KiB datagram arrives whole in
// both directions.
func TestUDPLargeDatagram(t *testing.T) {
	be := newBackend(t, "udp-big")
	p, addr := udpProxy(t)
	p.put(t, "stream_routes/1", map[string]any{"upstream": upstreamOf(be)})
	c := udpFrom(t, "127.0.0.1", addr)
	msg := make([]byte, 60<<10)
	if _, err := pattern(3).Read(msg); err != nil {
		t.Fatal(err)
	}
	name, echo, ok := udpAsk(t, c, msg, answerWait)
	if !ok {
		t.Fatal("no reply to a 60 KiB datagram")
	}
	if name != be.Name || !bytes.Equal(echo, msg) {
		t.Fatalf("reply from %q with %d bytes; want %q echoing all %d bytes", name, len(echo), be.Name, len(msg))
	}
}

// TestUDPSessionSurvivesRouteChange checks that a live UDP session keeps
// its upstream when the route changes, and a new session follows the new
// route.
func TestUDPSessionSurvivesRouteChange(t *testing.T) {
	oldBe, newBe := newBackend(t, "udp-old"), newBackend(t, "udp-new")
	p, addr := udpProxy(t)
	p.put(t, "stream_routes/1", map[string]any{"upstream": upstreamOf(oldBe)})
	live := udpFrom(t, "127.0.0.1", addr)
	if name, _, ok := udpAsk(t, live, []byte("first"), answerWait); !ok || name != "udp-old" {
		t.Fatalf("first datagram answered by %q (ok %v), want udp-old", name, ok)
	}
	p.put(t, "stream_routes/1", map[string]any{"upstream": upstreamOf(newBe)})
	for i := range 3 {
		if name, _, ok := udpAsk(t, live, []byte("again"), answerWait); !ok || name != "udp-old" {
			t.Fatalf("datagram %d of the live session answered by %q (ok %v), want udp-old", i, name, ok)
		}
	}
	if got := whoUDP(t, "127.0.0.1", addr); got != "udp-new" {
		t.Fatalf("a new session answered by %q, want udp-new", got)
	}
}

// TestUDPSessionIdleTimeout checks that a UDP session ends after the
// upstream's idle timeout (max of send and read): the same client socket
// then starts a new session, which follows the current route.
func TestUDPSessionIdleTimeout(t *testing.T) {
	oldBe, newBe := newBackend(t, "udp-before"), newBackend(t, "udp-after")
	p, addr := udpProxy(t)
	up := func(b *backend) map[string]any {
		return map[string]any{"type": "roundrobin", "nodes": nodes(b),
			"timeout": map[string]any{"connect": 1, "send": 1, "read": 1}}
	}
	p.put(t, "stream_routes/1", map[string]any{"upstream": up(oldBe)})
	c := udpFrom(t, "127.0.0.1", addr)
	if name, _, ok := udpAsk(t, c, []byte("one"), answerWait); !ok || name != oldBe.Name {
		t.Fatalf("first datagram answered by %q (ok %v)", name, ok)
	}
	p.put(t, "stream_routes/1", map[string]any{"upstream": up(newBe)})
	// poll, bounded, until the session has expired and a new one starts
	deadline := time.Now().Add(answerWait)
	for {
		name, _, ok := udpAsk(t, c, []byte("again"), answerWait)
		if !ok {
			t.Fatal("no reply")
		}
		if name == newBe.Name {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the session still goes to %q %v after a 1 s idle timeout", name, answerWait)
		}
		time.Sleep(1500 * time.Millisecond) // idle longer than the timeout
	}
}
