//go:build linux

package integration

import (
	"errors"
	"net"
	"testing"
	"time"
)

// TestIPRestriction checks the ip-restriction stream plugin: a blocked
// client is closed with no byte (TCP) or gets no reply (UDP).
func TestIPRestriction(t *testing.T) {
	be := newBackend(t, "restricted")
	port := freePort(t)
	p := startCaddy(t, caddyConfig{Apisix: map[string]any{
		"stream_proxy": map[string]any{"tcp": []any{hostPort("127.0.0.1", port)}, "udp": []any{hostPort("127.0.0.1", port)}},
	}})
	addr := hostPort("127.0.0.1", port)
	tests := []struct {
		name    string
		plugin  map[string]any
		allowed []string
		blocked []string
	}{
		{"whitelist", map[string]any{"whitelist": []string{"127.0.0.2", "127.0.0.8/30"}},
			[]string{"127.0.0.2", "127.0.0.9"}, []string{"127.0.0.1", "127.0.0.12"}},
		{"blacklist", map[string]any{"blacklist": []string{"127.0.0.2"}},
			[]string{"127.0.0.1", "127.0.0.3"}, []string{"127.0.0.2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p.put(t, "stream_routes/1", map[string]any{"plugins": map[string]any{"ip-restriction": tc.plugin}, "upstream": upstreamOf(be)})
			for _, src := range tc.allowed {
				if got := whoTCP(t, src, addr); got != be.Name {
					t.Errorf("tcp from %s: answered by %q, want %q", src, got, be.Name)
				}
				if got := whoUDP(t, src, addr); got != be.Name {
					t.Errorf("udp from %s: answered by %q, want %q", src, got, be.Name)
				}
			}
			for _, src := range tc.blocked {
				if got := whoTCP(t, src, addr); got != "" {
					t.Errorf("tcp from %s: answered by %q, want a silent close", src, got)
				}
				expectNoUDPReply(t, src, addr)
			}
		})
	}
}

// TestLimitConn checks the limit-conn stream plugin over TCP: above
// conn+burst concurrent sessions per key a connection is closed, other
// keys are unaffected, and closing a session frees its slot.
func TestLimitConn(t *testing.T) {
	be := newBackend(t, "limited")
	port := freePort(t)
	p := startCaddy(t, caddyConfig{Apisix: map[string]any{
		"stream_proxy": map[string]any{"tcp": []any{hostPort("127.0.0.1", port)}},
	}})
	addr := hostPort("127.0.0.1", port)
	p.put(t, "stream_routes/1", map[string]any{
		"plugins": map[string]any{"limit-conn": map[string]any{
			"conn": 1, "burst": 1, "default_conn_delay": 0.1, "key": "remote_addr"}},
		"upstream": upstreamOf(be),
	})
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	// conn 1 + burst 1: two sessions (the second delayed 0.1 s), then refusals
	for i := range 2 {
		c, err := dialFrom("127.0.0.1", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		if name, err := greeting(c); err != nil || name != be.Name {
			t.Fatalf("session %d: greeting %q, %v", i+1, name, err)
		}
	}
	if got := whoTCP(t, "127.0.0.1", addr); got != "" {
		t.Fatalf("third concurrent session answered by %q, want it closed", got)
	}
	if got := whoTCP(t, "127.0.0.2", addr); got != be.Name {
		t.Fatalf("another client: answered by %q, want %q", got, be.Name)
	}
	held[0].Close()
	// the slot frees when the proxy sees the close: poll, bounded
	deadline := time.Now().Add(answerWait)
	for whoTCP(t, "127.0.0.1", addr) != be.Name {
		if time.Now().After(deadline) {
			t.Fatalf("no session slot freed %v after closing a session", answerWait)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestUDPDelayDoesNotStallOtherClients checks that a UDP session delayed
// by limit-conn (above conn, within burst) does not hold up the datagrams
// of other clients on the same listener: the other client's reply comes
// back while the delayed session still waits.
func TestUDPDelayDoesNotStallOtherClients(t *testing.T) {
	be := newBackend(t, "udp-limited")
	p, addr := udpProxy(t)
	p.put(t, "stream_routes/1", map[string]any{
		"plugins": map[string]any{"limit-conn": map[string]any{
			"conn": 1, "burst": 5, "default_conn_delay": 3, "key": "remote_addr"}},
		"upstream": upstreamOf(be),
	})
	if got := whoUDP(t, "127.0.0.2", addr); got != be.Name {
		t.Fatalf("first session: answered by %q", got)
	}
	// a second session of the same key (the first lives on: 10 min idle
	// timeout) is delayed 3 s by limit-conn
	delayed := udpFrom(t, "127.0.0.2", addr)
	if _, err := delayed.Write([]byte("delayed")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let the proxy read it first
	other := udpFrom(t, "127.0.0.3", addr)
	name, _, ok := udpAsk(t, other, []byte("other key"), answerWait)
	if !ok || name != be.Name {
		t.Fatalf("the other client got %q (ok %v)", name, ok)
	}
	_ = delayed.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	_, err := delayed.Read(make([]byte, 100))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("the delayed session was answered before the other client (read: %v): the UDP read loop waited for limit-conn's delay", err)
	}
	// the delayed session is still served in the end
	_ = delayed.SetReadDeadline(time.Now().Add(answerWait))
	if n, err := delayed.Read(make([]byte, 100)); err != nil || n == 0 {
		t.Fatalf("the delayed session got no reply: %v", err)
	}
}
