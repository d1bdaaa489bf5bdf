//go:build linux

package integration

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// pickyUDP is a UDP backend that answers, with its name and the
// datagram, only datagrams starting with "hello": a flood's datagrams
// are never answered, as a spoofed sweep's would not be.
func pickyUDP(t *testing.T, name string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if bytes.HasPrefix(buf[:n], []byte("hello")) {
				_, _ = pc.WriteTo(append([]byte(name+"\n"), buf[:n]...), from)
			}
		}
	}()
	return pc.LocalAddr().String()
}

// floodUDP sends one datagram to dst from each of n fresh sockets on
// 127.0.0.2-127.0.0.9 (distinct source ports), closing each at once, and
// returns how many went out.
func floodUDP(t *testing.T, dst string, n int) int {
	t.Helper()
	raddr, err := net.ResolveUDPAddr("udp", dst)
	if err != nil {
		t.Fatal(err)
	}
	sent := 0
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; i < n && time.Now().Before(deadline); i++ {
		src := &net.UDPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%8))}
		c, err := net.DialUDP("udp", src, raddr)
		if err != nil {
			continue
		}
		if _, err := c.Write([]byte("flood")); err == nil {
			sent++
		}
		c.Close()
	}
	return sent
}

// refusedMetric reads apisix_stream_sessions_refused_total{reason} from
// the admin endpoint's /metrics.
func refusedMetric(t *testing.T, p *caddyProc, reason string) float64 {
	t.Helper()
	code, body, err := p.request(http.MethodGet, "/metrics", nil)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", code, err)
	}
	re := regexp.MustCompile(`(?m)^apisix_stream_sessions_refused_total\{reason="` + regexp.QuoteMeta(reason) + `"\} (\S+)$`)
	m := re.FindSubmatch(body)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// TestUDPFloodLeavesTheProcessServing floods a UDP listener with
// datagrams from thousands of source ports, more than the gateway's
// descriptor limit (RLIMIT_NOFILE 256, which it cannot raise), and checks
// that new TCP connections, the Admin API and new UDP sessions of a
// well-behaved client still work: the session caps and the descriptor
// reserve refuse the flood's excess, which is counted and warned about,
// and the flood's unanswered sessions expire after udp_unanswered_timeout
// instead of 10 minutes.
func TestUDPFloodLeavesTheProcessServing(t *testing.T) {
	tests := []struct {
		name string
		// limits are the stream_proxy fields besides the listeners
		limits map[string]any
		reason string
		// otherListener is whether another UDP listener serves new
		// sessions during the flood (a per-listener cap leaves the
		// others alone; the descriptor reserve is the process's)
		otherListener bool
	}{
		{"per-listener cap", map[string]any{"udp_max_sessions": 100}, "udp_max_sessions", true},
		{"total cap", map[string]any{"udp_max_sessions_total": 100}, "udp_max_sessions_total", false},
		{"descriptor reserve only", map[string]any{}, "fd_reserve", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			be := newBackend(t, "tcp-echo")
			picky := pickyUDP(t, "picky")
			ports := e2e.FreePorts(t, 3)
			tcpAddr, floodAddr, otherAddr := hostPort("127.0.0.1", ports[0]), hostPort("127.0.0.1", ports[1]), hostPort("127.0.0.1", ports[2])
			sp := map[string]any{
				"tcp":                    []any{tcpAddr},
				"udp":                    []any{floodAddr, otherAddr},
				"udp_unanswered_timeout": "1s",
			}
			for k, v := range tt.limits {
				sp[k] = v
			}
			p := startCaddy(t, caddyConfig{Apisix: map[string]any{"stream_proxy": sp}, LogLevel: "INFO", Nofile: 256})
			p.put(t, "stream_routes/tcp", map[string]any{"server_port": ports[0], "upstream": upstreamOf(be)})
			for i, port := range ports[1:] {
				p.put(t, fmt.Sprintf("stream_routes/udp%d", i), map[string]any{
					"server_port": port,
					"upstream":    map[string]any{"nodes": map[string]int{picky: 1}},
				})
			}

			sent := floodUDP(t, floodAddr, 2000)
			if sent < 1000 {
				t.Fatalf("only %d flood datagrams went out", sent)
			}
			if name := whoTCP(t, "127.0.0.1", tcpAddr); name != be.Name {
				t.Fatalf("TCP connection during the flood answered by %q, want %q", name, be.Name)
			}
			if code, body, err := p.request(http.MethodGet, "/apisix/admin/stream_routes", nil); err != nil || code != http.StatusOK {
				t.Fatalf("Admin API during the flood: %d %s %v", code, body, err)
			}
			if tt.otherListener {
				if name := whoUDP(t, "127.0.0.1", otherAddr); name != "picky" {
					t.Fatalf("new UDP session on another listener during the flood: reply from %q, want picky", name)
				}
			}
			if got := refusedMetric(t, p, tt.reason); got < 1 {
				t.Fatalf("apisix_stream_sessions_refused_total{reason=%q} = %v, want > 0", tt.reason, got)
			}
			if n := strings.Count(p.Output(), `"session refused: limit reached"`); n < 1 || n > 3 {
				t.Fatalf("%d warnings about refused sessions, want one per 10 s:\n%s", n, p.Output())
			}
			// the flood's sessions expire after 1 s unanswered: new
			// sessions on the flooded listener are served again
			deadline := time.Now().Add(answerWait)
			for {
				c := udpFrom(t, "127.0.0.1", floodAddr)
				name, _, ok := udpAsk(t, c, []byte("hello again"), 500*time.Millisecond)
				c.Close()
				if ok && name == "picky" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no new UDP session on the flooded listener %v after the flood", answerWait)
				}
			}
		})
	}
}

// TestTCPConnectionCap checks stream_proxy.tcp_max_connections: beyond
// the cap a new connection is closed at once, counted and warned about;
// once a session ends a new one is served again.
func TestTCPConnectionCap(t *testing.T) {
	be := newBackend(t, "capped")
	port := freePort(t)
	addr := hostPort("127.0.0.1", port)
	p := startCaddy(t, caddyConfig{Apisix: map[string]any{
		"stream_proxy": map[string]any{"tcp": []any{addr}, "tcp_max_connections": 2},
	}, LogLevel: "INFO"})
	p.put(t, "stream_routes/1", map[string]any{"upstream": upstreamOf(be)})
	var held []net.Conn
	for i := range 2 {
		c, err := dialFrom("127.0.0.1", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		if name, err := greeting(c); err != nil || name != be.Name {
			t.Fatalf("session %d: %q %v", i+1, name, err)
		}
	}
	if got := whoTCP(t, "127.0.0.1", addr); got != "" {
		t.Fatalf("a third concurrent connection was answered by %q, want it closed", got)
	}
	if got := refusedMetric(t, p, "tcp_max_connections"); got != 1 {
		t.Fatalf(`apisix_stream_sessions_refused_total{reason="tcp_max_connections"} = %v, want 1`, got)
	}
	if !strings.Contains(p.Output(), `"reason":"tcp_max_connections"`) {
		t.Fatalf("no warning names the limit:\n%s", p.Output())
	}
	held[0].Close()
	deadline := time.Now().Add(answerWait)
	for whoTCP(t, "127.0.0.1", addr) != be.Name {
		if time.Now().After(deadline) {
			t.Fatalf("no connection served %v after a session ended", answerWait)
		}
		time.Sleep(50 * time.Millisecond)
	}
	held[1].Close()
}
