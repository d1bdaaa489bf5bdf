//go:build linux

package integration

import (
	"testing"
)

// TestPriority checks APISIX's match order (docs/apisix/stream-routes.md#matching-priority) on TLS
// listeners that terminate with a static SSL object: exact sni over
// "*.suffix" over "*", longer wildcards first, multi-level route
// wildcards, an sni route whose address filter fails falling through to
// the next candidate, sni routes over non-sni routes, fallback to the
// non-sni routes (first match in order), and plain TCP never matching an
// sni route.
func TestPriority(t *testing.T) {
	be := backendSet(t, "exact-a", "wild-test", "wild-deep", "b-from-9", "star-on-tls1",
		"plain-from-3", "on-tls2", "on-plain")
	cert := newTestCert(t, "a.test.com", "b.test.com", "c.test.com", "a.b.test.com",
		"x.deep.test.com", "other.org", "A.TEST.COM")
	plain, tls1, tls2 := freePort(t), freePort(t), freePort(t)
	routes := []any{
		route("r01", map[string]any{"sni": "a.test.com"}, be["exact-a"]),
		route("r02", map[string]any{"sni": "*.test.com"}, be["wild-test"]),
		route("r03", map[string]any{"sni": "b.test.com", "remote_addr": "127.0.0.9"}, be["b-from-9"]),
		route("r04", map[string]any{"sni": "*", "server_port": tls1}, be["star-on-tls1"]),
		route("r05", map[string]any{"sni": "*.deep.test.com"}, be["wild-deep"]),
		route("r06", map[string]any{"remote_addr": "127.0.0.3"}, be["plain-from-3"]),
		route("r07", map[string]any{"server_port": tls2}, be["on-tls2"]),
		route("r08", map[string]any{"server_port": plain}, be["on-plain"]),
	}
	startCaddy(t, caddyConfig{Apisix: map[string]any{
		"stream_proxy": map[string]any{"tcp": []any{
			hostPort("127.0.0.1", plain),
			map[string]any{"addr": hostPort("127.0.0.1", tls1), "tls": true},
			map[string]any{"addr": hostPort("127.0.0.1", tls2), "tls": true},
		}},
		"ssls":          []any{sslObject(cert, "cert-all", "*")},
		"stream_routes": routes,
	}})

	tests := []struct {
		name string
		src  string
		port int
		sni  string // "" means plain TCP
		want string
	}{
		{"exact beats wildcard", "127.0.0.1", tls1, "a.test.com", "exact-a"},
		{"wildcard beats star", "127.0.0.1", tls1, "c.test.com", "wild-test"},
		{"route wildcard is multi-level", "127.0.0.1", tls1, "a.b.test.com", "wild-test"},
		{"longer wildcard first", "127.0.0.1", tls1, "x.deep.test.com", "wild-deep"},
		{"client SNI is lowercased", "127.0.0.1", tls1, "A.TEST.COM", "exact-a"},
		{"exact route with passing address filter", "127.0.0.9", tls1, "b.test.com", "b-from-9"},
		{"failing address filter falls through to the wildcard", "127.0.0.1", tls1, "b.test.com", "wild-test"},
		{"star catches other names", "127.0.0.1", tls1, "other.org", "star-on-tls1"},
		{"star filter fails: non-sni routes", "127.0.0.1", tls2, "other.org", "on-tls2"},
		{"non-sni routes in order", "127.0.0.3", tls2, "other.org", "plain-from-3"},
		{"sni routes beat non-sni routes", "127.0.0.3", tls2, "a.test.com", "exact-a"},
		{"plain TCP never matches sni routes", "127.0.0.1", plain, "", "on-plain"},
		{"plain TCP, non-sni order", "127.0.0.3", plain, "", "plain-from-3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := hostPort("127.0.0.1", tc.port)
			var got string
			if tc.sni == "" {
				got = whoTCP(t, tc.src, dst)
			} else {
				got = whoTLS(t, tc.src, dst, tc.sni, cert.Pool())
			}
			if got != tc.want {
				t.Errorf("%s → %s sni %q: answered by %q, want %q", tc.src, dst, tc.sni, got, tc.want)
			}
		})
	}
}

// TestFallbackSNI checks that fallback_sni counts as the SNI of plain TCP
// connections for route matching (docs/apisix/tls.md#fallback-sni).
func TestFallbackSNI(t *testing.T) {
	be := backendSet(t, "sni-route", "plain-route")
	plain := freePort(t)
	startCaddy(t, caddyConfig{Apisix: map[string]any{
		"stream_proxy": map[string]any{"tcp": []any{hostPort("127.0.0.1", plain)}},
		"fallback_sni": "default.example.com",
		"stream_routes": []any{
			route("1", map[string]any{"sni": "default.example.com"}, be["sni-route"]),
			route("2", nil, be["plain-route"]),
		},
	}})
	if got := whoTCP(t, "127.0.0.1", hostPort("127.0.0.1", plain)); got != "sni-route" {
		t.Fatalf("plain TCP with fallback_sni: answered by %q, want sni-route", got)
	}
}

// TestCatchAll checks that a route without filters catches every
// listener: plain TCP, TLS (any SNI) and UDP, on every address.
func TestCatchAll(t *testing.T) {
	be := newBackend(t, "catch-all")
	cert := newTestCert(t, "any.example")
	tcpPort, tlsPort, udpPort, udpBare := freePort(t), freePort(t), freePort(t), freePort(t)
	startCaddy(t, caddyConfig{Apisix: map[string]any{
		"stream_proxy": map[string]any{
			"tcp": []any{tcpPort, map[string]any{"addr": hostPort("127.0.0.1", tlsPort), "tls": true}},
			"udp": []any{hostPort("127.0.0.1", udpPort), udpBare},
		},
		"ssls":          []any{sslObject(cert, "c", "*")},
		"stream_routes": []any{route("1", nil, be)},
	}})
	tests := []struct {
		name, network, src, dst string
	}{
		{"tcp v4", "tcp", "127.0.0.1", hostPort("127.0.0.1", tcpPort)},
		{"tcp v4 other source and address", "tcp", "127.0.0.77", hostPort("127.0.0.99", tcpPort)},
		{"tcp v6", "tcp", "::1", hostPort("::1", tcpPort)},
		{"tls", "tls", "127.0.0.1", hostPort("127.0.0.1", tlsPort)},
		{"udp bound", "udp", "127.0.0.1", hostPort("127.0.0.1", udpPort)},
		{"udp bare v4", "udp", "127.0.0.44", hostPort("127.0.0.55", udpBare)},
		{"udp bare v6", "udp", "::1", hostPort("::1", udpBare)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			switch tc.network {
			case "tcp":
				got = whoTCP(t, tc.src, tc.dst)
			case "tls":
				got = whoTLS(t, tc.src, tc.dst, "any.example", cert.Pool())
			case "udp":
				got = whoUDP(t, tc.src, tc.dst)
			}
			if got != be.Name {
				t.Errorf("answered by %q, want %q", got, be.Name)
			}
		})
	}
}
