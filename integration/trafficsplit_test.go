//go:build linux

package integration

import (
	"net"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// TestTrafficSplit checks the traffic-split stream plugin as
// t/stream-plugin/traffic-split.t does: an inline upstream with weight 9
// and the route's own upstream with weight 1 take exactly 9 and 1 of 10
// sessions, over TCP and over UDP; a rule matching route_id sends that
// route's sessions to an upstream object, other routes keep their own.
func TestTrafficSplit(t *testing.T) {
	nine, one := newBackend(t, "nine"), newBackend(t, "one")
	ports := e2e.FreePorts(t, 3)
	tcpAddr, udpAddr, otherAddr := hostPort("127.0.0.1", ports[0]), hostPort("127.0.0.1", ports[1]), hostPort("127.0.0.1", ports[2])
	p := startCaddy(t, caddyConfig{Apisix: map[string]any{
		"stream_proxy": map[string]any{"tcp": []any{tcpAddr, otherAddr}, "udp": []any{udpAddr}},
	}})
	split := map[string]any{"rules": []any{map[string]any{"weighted_upstreams": []any{
		map[string]any{"upstream": upstreamOf(nine), "weight": 9},
		map[string]any{"weight": 1},
	}}}}

	t.Run("9:1 over TCP and UDP", func(t *testing.T) {
		for i, port := range ports[:2] {
			p.put(t, "stream_routes/split"+strconv.Itoa(i), map[string]any{
				"server_port": port, "plugins": map[string]any{"traffic-split": split}, "upstream": upstreamOf(one),
			})
		}
		for _, tc := range []struct {
			network string
			who     func() string
		}{
			{"tcp", func() string { return whoTCP(t, "127.0.0.1", tcpAddr) }},
			{"udp", func() string { return whoUDP(t, "127.0.0.1", udpAddr) }},
		} {
			counts := map[string]int{}
			for range 10 {
				counts[tc.who()]++
			}
			if counts["nine"] != 9 || counts["one"] != 1 {
				t.Errorf("%s: 10 sessions went %v, want nine 9 and one 1", tc.network, counts)
			}
		}
	})

	t.Run("match on route_id", func(t *testing.T) {
		p.put(t, "upstreams/u9", upstreamOf(nine))
		byRoute := map[string]any{"rules": []any{map[string]any{
			"match":              []any{map[string]any{"vars": []any{[]any{"route_id", "==", "3"}}}},
			"weighted_upstreams": []any{map[string]any{"upstream_id": "u9"}},
		}}}
		p.put(t, "stream_routes/3", map[string]any{
			"server_port": ports[0], "plugins": map[string]any{"traffic-split": byRoute}, "upstream": upstreamOf(one),
		})
		p.put(t, "stream_routes/4", map[string]any{
			"server_port": ports[2], "plugins": map[string]any{"traffic-split": byRoute}, "upstream": upstreamOf(one),
		})
		p.request(http.MethodDelete, "/apisix/admin/stream_routes/split0", nil)
		for range 3 {
			if got := whoTCP(t, "127.0.0.1", tcpAddr); got != "nine" {
				t.Fatalf("route 3: answered by %q, want nine (the rule's upstream_id)", got)
			}
			if got := whoTCP(t, "127.0.0.1", otherAddr); got != "one" {
				t.Fatalf("route 4: answered by %q, want one (its own upstream)", got)
			}
		}
	})
}

// TestLimitConnVarCombination checks limit-conn with key_type
// var_combination on "$remote_port $server_addr": two clients from
// different addresses but the same source port share one slot; another
// source port has its own.
func TestLimitConnVarCombination(t *testing.T) {
	be := newBackend(t, "combo")
	port := freePort(t)
	addr := hostPort("127.0.0.1", port)
	p := startCaddy(t, caddyConfig{Apisix: map[string]any{
		"stream_proxy": map[string]any{"tcp": []any{addr}},
	}})
	p.put(t, "stream_routes/1", map[string]any{
		"plugins": map[string]any{"limit-conn": map[string]any{
			"conn": 1, "burst": 0, "default_conn_delay": 0.1, "key": "$remote_port $server_addr", "key_type": "var_combination"}},
		"upstream": upstreamOf(be),
	})
	srcPort := freePort(t)
	dial := func(ip string, port int) net.Conn {
		d := net.Dialer{Timeout: answerWait, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip), Port: port}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial from %s:%d: %v", ip, port, err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	first := dial("127.0.0.2", srcPort)
	if name, err := greeting(first); err != nil || name != be.Name {
		t.Fatalf("first session: %q %v", name, err)
	}
	same := dial("127.0.0.3", srcPort)
	if name, err := greeting(same); err != nil || name != "" {
		t.Fatalf("same remote_port and server_addr from another address: answered by %q (%v), want a silent close", name, err)
	}
	other := dial("127.0.0.2", 0)
	if name, err := greeting(other); err != nil || name != be.Name {
		t.Fatalf("another source port: %q %v", name, err)
	}
}

// TestPacketSessionsObserved checks that UDP sessions a user's own layer4
// server hands to the apisix handler run the route's plugins and feed the
// metrics and the access log like a stream_proxy listener's.
func TestPacketSessionsObserved(t *testing.T) {
	be := newBackend(t, "l4-udp")
	port := freePort(t)
	addr := hostPort("127.0.0.1", port)
	p := startCaddy(t, caddyConfig{
		Apisix: map[string]any{"stream_proxy": map[string]any{"tcp": []any{hostPort("127.0.0.1", freePort(t))}}, "access_log": true},
		Apps: map[string]any{"layer4": map[string]any{"servers": map[string]any{
			"udp": map[string]any{"listen": []string{"udp/" + addr}, "routes": []any{
				map[string]any{"handle": []any{map[string]any{"handler": "apisix"}}},
			}},
		}}},
	})
	p.put(t, "stream_routes/l4", map[string]any{
		"server_port": port, "upstream": upstreamOf(be),
		"plugins": map[string]any{"ip-restriction": map[string]any{"blacklist": []string{"127.0.0.9"}}},
	})
	if got := whoUDP(t, "127.0.0.1", addr); got != be.Name {
		t.Fatalf("udp through the layer4 server: answered by %q, want %q", got, be.Name)
	}
	expectNoUDPReply(t, "127.0.0.9", addr)
	code, body, err := p.request(http.MethodGet, "/metrics", nil)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", code, err)
	}
	for _, re := range []string{
		`apisix_stream_connection_total\{route="l4"\} 2`,
		`apisix_stream_status\{code="403",listen_addr="` + regexp.QuoteMeta(addr) + `",node="",route="l4"\} 1`,
	} {
		if !regexp.MustCompile(re).Match(body) {
			t.Errorf("/metrics lacks %s", re)
		}
	}
	// the refused session's access log line is written when it ends
	deadline := time.Now().Add(answerWait)
	for !regexp.MustCompile(`"protocol":"UDP".*"route":"l4".*"status":403`).MatchString(p.Output()) {
		if time.Now().After(deadline) {
			t.Fatalf("no access log line for the refused UDP session:\n%s", p.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
