//go:build linux

package tlse2e

import (
	"testing"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// TestLayer4TLSUpstreamSNI checks a hand-written layer4 route: caddy-l4's
// tls handler terminates with a certificate of Caddy's tls app, then
// layer4.handlers.apisix_proxy forwards to a scheme "tls" upstream with
// the client's SNI, or "apisix_backend" when the client sent none
// (default_sni picks the certificate but is not the client's SNI).
func TestLayer4TLSUpstreamSNI(t *testing.T) {
	backend := selfSignedBackend(t)
	cert := e2e.NewLeaf(t, "l4", e2e.NewCA(t, "l4 CA"), "l4.test.com")
	port := freePorts(t, 1)[0]
	startCaddyApps(t, "", obj{
		"apisix": obj{},
		"tls":    obj{"certificates": obj{"load_pem": list(obj{"certificate": cert.CertPEM, "key": cert.KeyPEM})}},
		"layer4": obj{"servers": obj{"s": obj{
			"listen": []string{addr(port)},
			"routes": list(obj{"handle": list(
				obj{"handler": "tls", "connection_policies": list(obj{"default_sni": "l4.test.com"})},
				obj{"handler": "apisix_proxy", "upstream": upstream(backend, obj{"scheme": "tls"})},
			)}),
		}}},
	}, true)

	tests := []struct{ sni, want string }{
		{"l4.test.com", "hello l4.test.com"},
		{"", "hello apisix_backend"},
	}
	for _, tt := range tests {
		t.Run("SNI "+tt.sni, func(t *testing.T) {
			got, cs, err := tlsRoundTrip(addr(port), clientCfg(tt.sni))
			if err != nil || got != tt.want || peerCN(cs) != "l4" {
				t.Errorf("certificate %q, reply %q (%v); want %q, %q", peerCN(cs), got, err, "l4", tt.want)
			}
		})
	}
}

// TestLayer4Dispatcher checks layer4.handlers.apisix in a hand-written
// layer4 server behind caddy-l4's tls matcher, which has already read the
// ClientHello: with tls_passthrough the stream route's backend gets the
// client's own hello, with tls the SSL object's certificate terminates.
func TestLayer4Dispatcher(t *testing.T) {
	backend, ca := passthroughBackend(t)
	front := e2e.NewLeaf(t, "term", e2e.NewCA(t, "front CA"), "term.test.com")
	p := freePorts(t, 2)
	server := func(port int, sni string, handler obj) obj {
		return obj{
			"listen": []string{addr(port)},
			"routes": list(obj{
				"match":  list(obj{"tls": obj{"sni": []string{sni}}}),
				"handle": list(handler),
			}),
		}
	}
	startCaddyApps(t, "", obj{
		"apisix": obj{
			"ssls": list(sslObj("term", front, "term.test.com")),
			"stream_routes": list(
				obj{"id": "pt", "sni": "pt.test.com", "upstream": upstream(backend, nil)},
				obj{"id": "term", "sni": "term.test.com", "upstream": upstream(lineServer(t, "term"), nil)},
			),
		},
		"layer4": obj{"servers": obj{
			"pt":   server(p[0], "pt.test.com", obj{"handler": "apisix", "tls_passthrough": true}),
			"term": server(p[1], "term.test.com", obj{"handler": "apisix", "tls": true}),
		}},
	}, true)

	t.Run("passthrough", func(t *testing.T) {
		got, cs, err := tlsRoundTrip(addr(p[0]), verifyingClient("pt.test.com", ca))
		if err != nil {
			t.Fatal(err)
		}
		checkPassthrough(t, got, cs, "pt.test.com")
	})
	t.Run("terminate", func(t *testing.T) {
		got, cs, err := tlsRoundTrip(addr(p[1]), clientCfg("term.test.com"))
		if err != nil || peerCN(cs) != "term" || got != "term:ping" {
			t.Errorf("certificate %q, reply %q (%v); want %q, %q", peerCN(cs), got, err, "term", "term:ping")
		}
	})
}
