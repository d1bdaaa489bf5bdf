//go:build linux

package integration

import (
	"bytes"
	"errors"
	"io"
	"syscall"
	"testing"
	"time"
)

// route is a stream route object with an inline upstream to b.
func route(id string, filters map[string]any, b *backend) map[string]any {
	r := map[string]any{"id": id, "upstream": upstreamOf(b)}
	for k, v := range filters {
		r[k] = v
	}
	return r
}

// backendSet starts one named backend per name.
func backendSet(t *testing.T, names ...string) map[string]*backend {
	t.Helper()
	m := map[string]*backend{}
	for _, n := range names {
		m[n] = newBackend(t, n)
	}
	return m
}

// TestFilters checks remote_addr, server_addr and server_port, exact and
// CIDR, IPv4 and IPv6, on TCP and UDP, through listeners bound to a bare
// port (all interfaces), to an IPv4 address, to [::1], and to two
// loopback addresses with the same port.
func TestFilters(t *testing.T) {
	be := backendSet(t, "remote-exact", "remote-cidr", "remote-v6", "server-v6-cidr",
		"server-exact", "server-cidr", "server-port", "server-addr-port", "bound-2", "bound-any")
	bare, onV4, onV6, twin := freePort(t), freePort(t), freePort(t), freePort(t)
	// Non-sni routes match first-in-order, so each case below is built to
	// be caught by exactly the route it names.
	routes := []any{
		route("f01", map[string]any{"remote_addr": "127.0.0.2"}, be["remote-exact"]),
		route("f02", map[string]any{"remote_addr": "127.0.0.4/30"}, be["remote-cidr"]),
		route("f03", map[string]any{"remote_addr": "::1", "server_port": bare}, be["remote-v6"]),
		route("f04", map[string]any{"server_addr": "::1/128"}, be["server-v6-cidr"]),
		route("f05", map[string]any{"server_addr": "127.0.0.5"}, be["server-exact"]),
		route("f06", map[string]any{"server_addr": "127.0.1.0/24"}, be["server-cidr"]),
		route("f07", map[string]any{"server_port": onV4}, be["server-port"]),
		route("f08", map[string]any{"server_addr": "127.0.0.1", "server_port": bare}, be["server-addr-port"]),
		route("f09", map[string]any{"server_addr": "127.0.0.2", "server_port": twin}, be["bound-2"]),
		route("f10", map[string]any{"server_port": twin}, be["bound-any"]),
	}
	startCaddy(t, caddyConfig{Apisix: map[string]any{
		"stream_proxy": map[string]any{
			"tcp": []any{bare, hostPort("127.0.0.1", onV4), hostPort("::1", onV6),
				hostPort("127.0.0.1", twin), hostPort("127.0.0.2", twin)},
			"udp": []any{bare},
		},
		"stream_routes": routes,
	}})

	tests := []struct {
		name     string
		src, dst string
		udp      bool // also over UDP (only the bare port listens for UDP)
		want     string
	}{
		{"remote exact v4", "127.0.0.2", hostPort("127.0.0.1", bare), true, "remote-exact"},
		{"remote cidr v4 low", "127.0.0.4", hostPort("127.0.0.1", bare), true, "remote-cidr"},
		{"remote cidr v4 high", "127.0.0.7", hostPort("127.0.0.9", bare), true, "remote-cidr"},
		{"remote exact v6", "::1", hostPort("::1", bare), true, "remote-v6"},
		{"server cidr v6", "::1", hostPort("::1", onV6), false, "server-v6-cidr"},
		{"server exact v4 on a bare port", "127.0.0.1", hostPort("127.0.0.5", bare), true, "server-exact"},
		{"server cidr v4 on a bare port", "127.0.0.1", hostPort("127.0.1.9", bare), true, "server-cidr"},
		{"server port", "127.0.0.1", hostPort("127.0.0.1", onV4), false, "server-port"},
		{"server addr and port", "127.0.0.1", hostPort("127.0.0.1", bare), true, "server-addr-port"},
		{"same port, listener on 127.0.0.1", "127.0.0.1", hostPort("127.0.0.1", twin), false, "bound-any"},
		{"same port, listener on 127.0.0.2", "127.0.0.1", hostPort("127.0.0.2", twin), false, "bound-2"},
		{"no route: remote outside every filter", "127.0.0.8", hostPort("127.0.0.6", bare), true, ""},
		{"no route: remote just outside the cidr", "127.0.0.3", hostPort("127.0.0.3", bare), true, ""},
	}
	for _, tc := range tests {
		t.Run("tcp/"+tc.name, func(t *testing.T) {
			if got := whoTCP(t, tc.src, tc.dst); got != tc.want {
				t.Errorf("%s → %s: answered by %q, want %q", tc.src, tc.dst, got, tc.want)
			}
		})
		if !tc.udp {
			continue
		}
		t.Run("udp/"+tc.name, func(t *testing.T) {
			if tc.want == "" {
				expectNoUDPReply(t, tc.src, tc.dst)
				return
			}
			if got := whoUDP(t, tc.src, tc.dst); got != tc.want {
				t.Errorf("%s → %s: answered by %q, want %q", tc.src, tc.dst, got, tc.want)
			}
		})
	}
}

// TestNoMatchClosesSilently checks APISIX's "not hit any route": the
// session ends with no byte written. A TCP client sees EOF (or RST when
// it had sent unread data); a UDP datagram gets no reply; a TLS client on
// a tls listener gets the handshake and then EOF.
func TestNoMatchClosesSilently(t *testing.T) {
	be := newBackend(t, "only-127.0.0.3")
	cert := newTestCert(t, "a.test.com")
	plain, tlsPort := freePort(t), freePort(t)
	p := startCaddy(t, caddyConfig{Apisix: map[string]any{
		"stream_proxy": map[string]any{
			"tcp": []any{hostPort("127.0.0.1", plain), map[string]any{"addr": hostPort("127.0.0.1", tlsPort), "tls": true}},
			"udp": []any{hostPort("127.0.0.1", plain)},
		},
		"ssls":          []any{sslObject(cert, "s1", "a.test.com")},
		"stream_routes": []any{route("1", map[string]any{"remote_addr": "127.0.0.3"}, be)},
	}})
	_ = p

	t.Run("tcp idle client", func(t *testing.T) {
		if got := whoTCP(t, "127.0.0.1", hostPort("127.0.0.1", plain)); got != "" {
			t.Fatalf("answered by %q, want a silent close", got)
		}
	})
	t.Run("tcp client sending first", func(t *testing.T) {
		c, err := dialFrom("127.0.0.1", hostPort("127.0.0.1", plain))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(answerWait))
		if _, err := c.Write(bytes.Repeat([]byte("x"), 4096)); err != nil && !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
			t.Fatalf("write: %v", err)
		}
		n, err := io.ReadFull(c, make([]byte, 1))
		if n != 0 || !closedSilently(err) {
			t.Fatalf("read %d bytes, err %v; want 0 bytes and EOF or RST", n, err)
		}
	})
	t.Run("udp", func(t *testing.T) {
		expectNoUDPReply(t, "127.0.0.1", hostPort("127.0.0.1", plain))
	})
	t.Run("tls", func(t *testing.T) {
		if got := whoTLS(t, "127.0.0.1", hostPort("127.0.0.1", tlsPort), "a.test.com", cert.Pool()); got != "" {
			t.Fatalf("answered by %q, want a silent close", got)
		}
	})
	t.Run("the route itself works", func(t *testing.T) {
		if got := whoTCP(t, "127.0.0.3", hostPort("127.0.0.1", plain)); got != be.Name {
			t.Fatalf("answered by %q, want %q", got, be.Name)
		}
		if got := whoTLS(t, "127.0.0.3", hostPort("127.0.0.1", tlsPort), "a.test.com", cert.Pool()); got != be.Name {
			t.Fatalf("tls: answered by %q, want %q", got, be.Name)
		}
		if got := whoUDP(t, "127.0.0.3", hostPort("127.0.0.1", plain)); got != be.Name {
			t.Fatalf("udp: answered by %q, want %q", got, be.Name)
		}
	})
}
