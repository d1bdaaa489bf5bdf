//go:build linux

package integration

import (
	"fmt"
	"net"
	"testing"
	"time"
)

// proxyTo starts Caddy with one plain TCP listener and a catch-all stream
// route to upstream, PUT through the Admin API; it returns the listen
// address.
func proxyTo(t *testing.T, upstream map[string]any) string {
	t.Helper()
	return proxyToCopy(t, upstream, "")
}

// proxyToCopy is proxyTo with stream_proxy.tcp_copy set to tcpCopy
// (unless empty).
func proxyToCopy(t *testing.T, upstream map[string]any, tcpCopy string) string {
	t.Helper()
	port := freePort(t)
	sp := map[string]any{"tcp": []any{hostPort("127.0.0.1", port)}}
	if tcpCopy != "" {
		sp["tcp_copy"] = tcpCopy
	}
	p := startCaddy(t, caddyConfig{Apisix: map[string]any{"stream_proxy": sp}})
	p.put(t, "upstreams/u1", upstream)
	p.put(t, "stream_routes/1", map[string]any{"upstream_id": "u1"})
	return hostPort("127.0.0.1", port)
}

// TestWeightedRoundRobin checks weights 1:3 over 400 connections:
// weighted round robin is periodic, so every cycle of 4 connections holds
// one pick of the light node (±1 for where the cycle starts).
func TestWeightedRoundRobin(t *testing.T) {
	light, heavy := newBackend(t, "light"), newBackend(t, "heavy")
	addr := proxyTo(t, map[string]any{"type": "roundrobin",
		"nodes": map[string]int{light.Addr(): 1, heavy.Addr(): 3}})
	const conns, cycle = 400, 4
	counts := map[string]int{}
	lightInCycle := 0
	for i := range conns {
		name := whoTCP(t, "127.0.0.1", addr)
		counts[name]++
		if name == "light" {
			lightInCycle++
		}
		if (i+1)%cycle == 0 {
			if lightInCycle > 2 {
				t.Errorf("connections %d-%d: light picked %d times, want 1±1", i+1-cycle, i, lightInCycle)
			}
			lightInCycle = 0
		}
	}
	if len(counts) != 2 || counts["light"] < conns/cycle-1 || counts["light"] > conns/cycle+1 ||
		counts["heavy"] < 3*conns/cycle-1 || counts["heavy"] > 3*conns/cycle+1 {
		t.Fatalf("counts %v, want light %d±1 and heavy %d±1", counts, conns/cycle, 3*conns/cycle)
	}
}

// TestChashRemoteAddr checks chash on remote_addr: one source IP always
// reaches the same node; many source IPs spread over the nodes.
func TestChashRemoteAddr(t *testing.T) {
	bs := []*backend{newBackend(t, "h1"), newBackend(t, "h2"), newBackend(t, "h3")}
	addr := proxyTo(t, map[string]any{"type": "chash", "hash_on": "vars", "key": "remote_addr", "nodes": nodes(bs...)})
	for _, src := range []string{"127.0.0.2", "127.0.0.3"} {
		first := whoTCP(t, src, addr)
		if first == "" {
			t.Fatalf("%s: connection closed", src)
		}
		for i := range 49 {
			if got := whoTCP(t, src, addr); got != first {
				t.Fatalf("%s: connection %d went to %q, the first went to %q", src, i+2, got, first)
			}
		}
	}
	seen := map[string]bool{}
	for i := 10; i < 40; i++ {
		seen[whoTCP(t, fmt.Sprintf("127.0.0.%d", i), addr)] = true
	}
	if len(seen) < 2 || seen[""] {
		t.Fatalf("30 source IPs reached %v, want at least two nodes and no failures", seen)
	}
}

// TestNodeFailover covers priority tiers and retries: a dead node in a
// higher tier or beside live nodes never shows to the client; with
// retries 0 a connection that picks the dead node is closed.
func TestNodeFailover(t *testing.T) {
	tests := []struct {
		name     string
		upstream func(dead int, a, b *backend) map[string]any
		conns    int
		// want is the set of backends that may answer; closed counts
		// silently closed connections: -1 means at least one, else exact.
		want   []string
		closed int
	}{
		{
			name: "priority 1 dead, priority 0 used",
			upstream: func(dead int, a, _ *backend) map[string]any {
				return map[string]any{"type": "roundrobin", "nodes": []any{
					map[string]any{"host": "127.0.0.1", "port": dead, "weight": 1, "priority": 1},
					map[string]any{"host": "127.0.0.1", "port": a.Port, "weight": 1, "priority": 0},
				}}
			},
			conns: 10, want: []string{"a"},
		},
		{
			name: "live higher tier preferred",
			upstream: func(_ int, a, b *backend) map[string]any {
				return map[string]any{"type": "roundrobin", "nodes": []any{
					map[string]any{"host": "127.0.0.1", "port": a.Port, "weight": 1, "priority": 0},
					map[string]any{"host": "127.0.0.1", "port": b.Port, "weight": 1, "priority": 5},
				}}
			},
			conns: 10, want: []string{"b"},
		},
		{
			name: "retry past a dead node",
			upstream: func(dead int, a, b *backend) map[string]any {
				return map[string]any{"type": "roundrobin",
					"nodes": map[string]int{hostPort("127.0.0.1", dead): 1, a.Addr(): 1, b.Addr(): 1}}
			},
			conns: 30, want: []string{"a", "b"},
		},
		{
			name: "retries 0: the dead node's connections are closed",
			upstream: func(dead int, a, _ *backend) map[string]any {
				return map[string]any{"type": "roundrobin", "retries": 0,
					"nodes": map[string]int{hostPort("127.0.0.1", dead): 1, a.Addr(): 1}}
			},
			conns: 10, want: []string{"a"}, closed: -1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newBackend(t, "a"), newBackend(t, "b")
			addr := proxyTo(t, tc.upstream(deadPort(t), a, b))
			allowed := map[string]bool{}
			for _, w := range tc.want {
				allowed[w] = true
			}
			closed := 0
			for range tc.conns {
				got := whoTCP(t, "127.0.0.1", addr)
				switch {
				case got == "":
					closed++
				case !allowed[got]:
					t.Fatalf("answered by %q, want one of %v", got, tc.want)
				}
			}
			switch {
			case tc.closed < 0 && closed == 0:
				t.Fatalf("no connection was closed; want the dead node's connections closed")
			case tc.closed < 0 && closed == tc.conns:
				t.Fatalf("every connection was closed; want the live node used too")
			case tc.closed >= 0 && closed != tc.closed:
				t.Fatalf("%d of %d connections closed, want %d", closed, tc.conns, tc.closed)
			}
		})
	}
}

// TestLeastConn checks least_conn: with connections held open, each new
// connection goes to the node with the fewest active connections.
func TestLeastConn(t *testing.T) {
	a, b := newBackend(t, "lc-a"), newBackend(t, "lc-b")
	addr := proxyTo(t, map[string]any{"type": "least_conn", "nodes": nodes(a, b)})
	counts := map[string]int{}
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := range 6 {
		c, err := dialFrom("127.0.0.1", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		name, err := greeting(c)
		if err != nil || name == "" {
			t.Fatalf("connection %d: greeting %q, %v", i, name, err)
		}
		counts[name]++
	}
	if counts["lc-a"] != 3 || counts["lc-b"] != 3 {
		t.Fatalf("6 held connections spread %v, want 3 and 3", counts)
	}
}

// TestActiveHealthCheck checks tcp active health checks: they start with
// the upstream (before any traffic), and once the dead node is marked
// unhealthy every connection avoids it even with retries 0.
func TestActiveHealthCheck(t *testing.T) {
	a := newBackend(t, "healthy")
	dead := deadPort(t)
	addr := proxyTo(t, map[string]any{"type": "roundrobin", "retries": 0,
		"nodes": map[string]int{a.Addr(): 1, hostPort("127.0.0.1", dead): 1},
		"checks": map[string]any{"active": map[string]any{"type": "tcp",
			"healthy":   map[string]any{"interval": 1, "successes": 1},
			"unhealthy": map[string]any{"interval": 1, "tcp_failures": 1}}},
	})
	// wait, bounded, for 10 connections in a row to succeed: round robin
	// over two nodes would fail every other one while the dead node counts
	deadline := time.Now().Add(10 * time.Second)
	for streak := 0; streak < 10; {
		if time.Now().After(deadline) {
			t.Fatal("the dead node was not taken out by the active health check within 10 s")
		}
		if whoTCP(t, "127.0.0.1", addr) == a.Name {
			streak++
		} else {
			streak = 0
			time.Sleep(100 * time.Millisecond)
		}
	}
}
