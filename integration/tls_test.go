//go:build linux

package integration

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"strings"
	"testing"
	"time"
)

// TestTLSPassthrough checks tls_passthrough listeners: the ClientHello's
// SNI picks the route and the TLS bytes reach the backend untouched (the
// client verifies the backend's own certificate). On a mixed listener
// (tls and tls_passthrough) the matched route's tls_passthrough decides.
func TestTLSPassthrough(t *testing.T) {
	certA, certB := newTestCert(t, "a.test.com"), newTestCert(t, "b.test.com")
	proxyCert := newTestCert(t, "term.test.com")
	tlsA, tlsB := newTLSBackend(t, "tls-a", certA), newTLSBackend(t, "tls-b", certB)
	plainBe := newBackend(t, "terminated")
	pass, mixed := freePort(t), freePort(t)
	startCaddy(t, caddyConfig{Apisix: map[string]any{
		"stream_proxy": map[string]any{"tcp": []any{
			map[string]any{"addr": hostPort("127.0.0.1", pass), "tls_passthrough": true},
			map[string]any{"addr": hostPort("127.0.0.1", mixed), "tls": true, "tls_passthrough": true},
		}},
		"ssls": []any{sslObject(proxyCert, "term", "term.test.com")},
		"stream_routes": []any{
			map[string]any{"id": "1", "sni": "a.test.com", "tls_passthrough": true,
				"upstream": map[string]any{"nodes": map[string]int{tlsA: 1}}},
			map[string]any{"id": "2", "snis": []string{"b.test.com", "*.b.test.com"}, "tls_passthrough": true,
				"upstream": map[string]any{"nodes": map[string]int{tlsB: 1}}},
			map[string]any{"id": "3", "sni": "term.test.com", "server_port": mixed, "upstream": upstreamOf(plainBe)},
		},
	}})
	tests := []struct {
		name string
		port int
		sni  string
		cert testCert
		want string
	}{
		{"passthrough by exact sni", pass, "a.test.com", certA, "tls-a sni=a.test.com"},
		{"passthrough by snis", pass, "b.test.com", certB, "tls-b sni=b.test.com"},
		{"mixed listener, passthrough route", mixed, "a.test.com", certA, "tls-a sni=a.test.com"},
		{"mixed listener, terminating route", mixed, "term.test.com", proxyCert, "terminated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := whoTLS(t, "127.0.0.1", hostPort("127.0.0.1", tc.port), tc.sni, tc.cert.Pool()); got != tc.want {
				t.Fatalf("answered %q, want %q", got, tc.want)
			}
		})
	}
}

// TestUpstreamTLS checks scheme tls: the proxy speaks TLS to the node,
// sending the client's SNI, or "apisix_backend" for a plain client.
func TestUpstreamTLS(t *testing.T) {
	backendCert := newTestCert(t, "backend.internal")
	front := newTestCert(t, "front.test.com")
	up := newTLSBackend(t, "tls-up", backendCert)
	plain, tlsPort := freePort(t), freePort(t)
	startCaddy(t, caddyConfig{Apisix: map[string]any{
		"stream_proxy": map[string]any{"tcp": []any{
			hostPort("127.0.0.1", plain),
			map[string]any{"addr": hostPort("127.0.0.1", tlsPort), "tls": true},
		}},
		"ssls": []any{sslObject(front, "front", "front.test.com")},
		"stream_routes": []any{map[string]any{"id": "1",
			"upstream": map[string]any{"scheme": "tls", "nodes": map[string]int{up: 1}}}},
	}})
	if got := whoTCP(t, "127.0.0.1", hostPort("127.0.0.1", plain)); got != "tls-up sni=apisix_backend" {
		t.Errorf("plain client: answered %q, want %q", got, "tls-up sni=apisix_backend")
	}
	if got := whoTLS(t, "127.0.0.1", hostPort("127.0.0.1", tlsPort), "front.test.com", front.Pool()); got != "tls-up sni=front.test.com" {
		t.Errorf("TLS client: answered %q, want %q", got, "tls-up sni=front.test.com")
	}
}

// TestTLSTermination checks certificate selection on a tls listener:
// single-label certificate wildcards, no certificate for the SNI (the
// handshake fails), no SNI with fallback_sni (its certificate and its
// routes), and a plain client (closed, never proxied).
func TestTLSTermination(t *testing.T) {
	wild := newTestCert(t, "*.test.com")
	def := newTestCert(t, "default.test.com")
	be := backendSet(t, "any-test", "by-fallback")
	port := freePort(t)
	startCaddy(t, caddyConfig{Apisix: map[string]any{
		"stream_proxy": map[string]any{"tcp": []any{map[string]any{"addr": hostPort("127.0.0.1", port), "tls": true}}},
		"fallback_sni": "default.test.com",
		"ssls":         []any{sslObject(wild, "wild", "*.test.com"), sslObject(def, "def", "default.test.com")},
		"stream_routes": []any{
			route("1", map[string]any{"sni": "default.test.com"}, be["by-fallback"]),
			route("2", map[string]any{"sni": "*.test.com"}, be["any-test"]),
		},
	}})
	addr := hostPort("127.0.0.1", port)
	handshake := func(sni string, pool *x509.CertPool) (*tls.Conn, error) {
		raw, err := dialFrom("127.0.0.1", addr)
		if err != nil {
			return nil, err
		}
		cfg := &tls.Config{ServerName: sni, RootCAs: pool, MinVersion: tls.VersionTLS12}
		if sni == "" {
			// no SNI: check the certificate by hand, as for an IP address
			cfg.InsecureSkipVerify = true
			cfg.VerifyConnection = func(cs tls.ConnectionState) error {
				_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{DNSName: "default.test.com", Roots: pool})
				return err
			}
		}
		c := tls.Client(raw, cfg)
		_ = c.SetDeadline(time.Now().Add(answerWait))
		if err := c.Handshake(); err != nil {
			c.Close()
			return nil, err
		}
		_ = c.SetDeadline(time.Time{})
		return c, nil
	}
	t.Run("wildcard certificate, one label", func(t *testing.T) {
		if got := whoTLS(t, "127.0.0.1", addr, "a.test.com", wild.Pool()); got != "any-test" {
			t.Fatalf("answered by %q", got)
		}
	})
	t.Run("wildcard certificate does not cover two labels", func(t *testing.T) {
		if c, err := handshake("a.b.test.com", wild.Pool()); err == nil {
			c.Close()
			t.Fatal("handshake for a.b.test.com succeeded; no certificate matches it")
		}
	})
	t.Run("no certificate for the SNI", func(t *testing.T) {
		if c, err := handshake("other.org", wild.Pool()); err == nil {
			c.Close()
			t.Fatal("handshake for other.org succeeded; no certificate matches it")
		}
	})
	t.Run("no SNI uses fallback_sni", func(t *testing.T) {
		c, err := handshake("", def.Pool())
		if err != nil {
			t.Fatalf("handshake without SNI: %v", err)
		}
		defer c.Close()
		if name, err := greeting(c); err != nil || name != "by-fallback" {
			t.Fatalf("answered by %q, %v; want by-fallback", name, err)
		}
	})
	t.Run("plain client is not proxied", func(t *testing.T) {
		before := be["any-test"].Accepted.Load() + be["by-fallback"].Accepted.Load()
		c, err := dialFrom("127.0.0.1", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(answerWait))
		_, _ = io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
		b, err := io.ReadAll(c)
		if err != nil && !closedSilently(err) {
			t.Fatalf("read: %v", err)
		}
		if strings.Contains(string(b), "any-test") || strings.Contains(string(b), "by-fallback") {
			t.Fatalf("a plain client reached a backend: %q", b)
		}
		if after := be["any-test"].Accepted.Load() + be["by-fallback"].Accepted.Load(); after != before {
			t.Fatal("a plain client on a tls listener caused an upstream connection")
		}
	})
}
