//go:build linux

package tlse2e

import (
	"crypto/tls"
	"fmt"
	"net"
	"path/filepath"
	"testing"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// selfSignedBackend is a TLS backend with a self-signed certificate that
// answers "hello <sni>", as APISIX's upstream-tls.t backend.
func selfSignedBackend(t testing.TB) string {
	cert := e2e.NewLeaf(t, "self-signed", nil, "self.test.com")
	return tlsServer(t, &tls.Config{Certificates: []tls.Certificate{cert.TLS()}}, helloSNI)
}

// TestUpstreamTLSSNI checks the SNI sent to a scheme "tls" upstream: the
// client's SNI after termination, fallback_sni for plain clients when set,
// else "apisix_backend".
func TestUpstreamTLSSNI(t *testing.T) {
	backend := selfSignedBackend(t)
	front := e2e.NewLeaf(t, "front", e2e.NewCA(t, "front CA"), "test.com")
	p := freePorts(t, 3)
	plain, tlsPort, fbPlain := p[0], p[1], p[2]
	route := obj{"id": "1", "upstream": upstream(backend, obj{"scheme": "tls"})}
	startCaddy(t, obj{
		"stream_proxy":  obj{"tcp": list(tcpEntry(plain), tcpEntry(tlsPort, "tls"))},
		"ssls":          list(sslObj("1", front, "test.com")),
		"stream_routes": list(route),
	}, true)
	startCaddy(t, obj{
		"stream_proxy":  obj{"tcp": list(tcpEntry(fbPlain))},
		"fallback_sni":  "fb.test.com",
		"stream_routes": list(route),
	}, true)

	t.Run("plain client", func(t *testing.T) {
		got, err := plainRoundTrip(addr(plain), "ping")
		if err != nil || got != "hello apisix_backend" {
			t.Errorf("reply %q (%v), want %q", got, err, "hello apisix_backend")
		}
	})
	t.Run("TLS client", func(t *testing.T) {
		got, _, err := tlsRoundTrip(addr(tlsPort), clientCfg("test.com"))
		if err != nil || got != "hello test.com" {
			t.Errorf("reply %q (%v), want %q", got, err, "hello test.com")
		}
	})
	t.Run("plain client with fallback_sni", func(t *testing.T) {
		got, err := plainRoundTrip(addr(fbPlain), "ping")
		if err != nil || got != "hello fb.test.com" {
			t.Errorf("reply %q (%v), want %q", got, err, "hello fb.test.com")
		}
	})
}

// TestUpstreamClientCert checks upstream mTLS: a backend requiring a
// client certificate gets the inline client_cert/client_key, or the
// type "client" SSL object of client_cert_id; without one the upstream
// handshake fails and the client is closed without data.
func TestUpstreamClientCert(t *testing.T) {
	ca := e2e.NewCA(t, "upstream client CA")
	inline := e2e.NewLeaf(t, "inline client", ca)
	byID := e2e.NewLeaf(t, "by-id client", ca)
	server := e2e.NewLeaf(t, "mtls backend", nil, "backend.test.com")
	backend := tlsServer(t, &tls.Config{
		Certificates: []tls.Certificate{server.TLS()},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.Pool(),
	}, func(cs tls.ConnectionState, _ string) string {
		return fmt.Sprintf("hello %s cn=%s", cs.ServerName, cs.PeerCertificates[0].Subject.CommonName)
	})
	p := freePorts(t, 3)
	startCaddy(t, obj{
		"stream_proxy": obj{"tcp": list(tcpEntry(p[0]), tcpEntry(p[1]), tcpEntry(p[2]))},
		"ssls":         list(obj{"id": "cc", "type": "client", "cert": byID.CertPEM, "key": byID.KeyPEM}),
		"upstreams": list(obj{"id": "by-id", "type": "roundrobin", "nodes": obj{backend: 1},
			"scheme": "tls", "tls": obj{"client_cert_id": "cc"}}),
		"stream_routes": list(
			obj{"id": "inline", "server_port": p[0], "upstream": upstream(backend, obj{"scheme": "tls",
				"tls": obj{"client_cert": inline.CertPEM, "client_key": inline.KeyPEM}})},
			obj{"id": "by-id", "server_port": p[1], "upstream_id": "by-id"},
			obj{"id": "none", "server_port": p[2], "upstream": upstream(backend, obj{"scheme": "tls"})},
		),
	}, true)

	tests := []struct {
		name string
		port int
		want string // "" means closed without data
	}{
		{"inline client_cert", p[0], "hello apisix_backend cn=inline client"},
		{"client_cert_id", p[1], "hello apisix_backend cn=by-id client"},
		{"no client certificate", p[2], ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want == "" {
				c, err := net.DialTimeout("tcp", addr(tt.port), ioTimeout)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if _, err := c.Write([]byte("ping\n")); err != nil {
					t.Fatal(err)
				}
				expectClosed(t, c)
				return
			}
			got, err := plainRoundTrip(addr(tt.port), "ping")
			if err != nil || got != tt.want {
				t.Errorf("reply %q (%v), want %q", got, err, tt.want)
			}
		})
	}
}

// TestUpstreamVerify checks tls.verify: true refuses a self-signed
// upstream (the client is closed without data) and accepts one whose CA
// the process trusts (SSL_CERT_FILE), while verify false accepts anything.
func TestUpstreamVerify(t *testing.T) {
	self := selfSignedBackend(t)
	ca := e2e.NewCA(t, "trusted upstream CA")
	trusted := e2e.NewLeaf(t, "trusted", ca, "v.test.com")
	trustedBackend := tlsServer(t, &tls.Config{Certificates: []tls.Certificate{trusted.TLS()}}, helloSNI)
	caFile, _ := ca.Files(t, t.TempDir(), "ca")
	front := e2e.NewLeaf(t, "front", e2e.NewCA(t, "front CA"), "v.test.com")
	p := freePorts(t, 3)
	startCaddy(t, obj{
		"stream_proxy": obj{"tcp": list(tcpEntry(p[0]), tcpEntry(p[1]), tcpEntry(p[2], "tls"))},
		"ssls":         list(sslObj("1", front, "v.test.com")),
		"stream_routes": list(
			obj{"id": "verify", "server_port": p[0], "upstream": upstream(self, obj{"scheme": "tls", "tls": obj{"verify": true}})},
			obj{"id": "noverify", "server_port": p[1], "upstream": upstream(self, obj{"scheme": "tls", "tls": obj{"verify": false}})},
			obj{"id": "trusted", "server_port": p[2], "upstream": upstream(trustedBackend, obj{"scheme": "tls", "tls": obj{"verify": true}})},
		),
	}, true, "SSL_CERT_FILE="+filepath.Clean(caFile))

	t.Run("verify true, self-signed", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", addr(p[0]), ioTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("ping\n")); err != nil {
			t.Fatal(err)
		}
		expectClosed(t, c)
	})
	t.Run("verify false, self-signed", func(t *testing.T) {
		got, err := plainRoundTrip(addr(p[1]), "ping")
		if err != nil || got != "hello apisix_backend" {
			t.Errorf("reply %q (%v), want %q", got, err, "hello apisix_backend")
		}
	})
	t.Run("verify true, trusted CA and matching SNI", func(t *testing.T) {
		got, _, err := tlsRoundTrip(addr(p[2]), clientCfg("v.test.com"))
		if err != nil || got != "hello v.test.com" {
			t.Errorf("reply %q (%v), want %q", got, err, "hello v.test.com")
		}
	})
}
