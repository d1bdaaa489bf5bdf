//go:build linux

package tlse2e

import (
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// exporterLabel derives keying material that only the two ends of one
// TLS session share: equal values on client and backend prove the session
// was not terminated in between.
const exporterLabel = "EXPORTER-tlse2e"

func exported(cs tls.ConnectionState) string {
	b, err := cs.ExportKeyingMaterial(exporterLabel, nil, 16)
	if err != nil {
		return "error: " + err.Error()
	}
	return hex.EncodeToString(b)
}

// passthroughBackend is a TLS backend with its own certificate (CN
// "backend", for pt.test.com, from the returned CA). It answers one line
// with what it saw of the client's ClientHello and session:
// "sni=S alpn=A ekm=HEX".
func passthroughBackend(t testing.TB) (string, *e2e.Cert) {
	ca := e2e.NewCA(t, "backend CA")
	cert := e2e.NewLeaf(t, "backend", ca, "pt.test.com")
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert.TLS()},
		NextProtos:   []string{"tlse2e-proto"},
	}
	return tlsServer(t, cfg, func(cs tls.ConnectionState, _ string) string {
		return fmt.Sprintf("sni=%s alpn=%s ekm=%s", cs.ServerName, cs.NegotiatedProtocol, exported(cs))
	}), ca
}

// verifyingClient sends sni and ALPN "tlse2e-proto" and verifies the
// server's certificate against ca for sni.
func verifyingClient(sni string, ca *e2e.Cert) *tls.Config {
	return &tls.Config{ServerName: sni, RootCAs: ca.Pool(), NextProtos: []string{"tlse2e-proto"}}
}

// checkPassthrough asserts the reply of passthroughBackend shows the
// client's own session: its SNI, its ALPN and the same exported keys.
func checkPassthrough(t *testing.T, reply string, cs tls.ConnectionState, sni string) {
	t.Helper()
	want := fmt.Sprintf("sni=%s alpn=tlse2e-proto ekm=%s", sni, exported(cs))
	if reply != want {
		t.Errorf("backend saw %q, want %q", reply, want)
	}
	if cn := peerCN(cs); cn != "backend" {
		t.Errorf("client got certificate %q, want the backend's own", cn)
	}
}

// TestPassthrough checks a tls_passthrough listener: it routes by the
// ClientHello's SNI and forwards the bytes untouched, so the client
// verifies the backend's own certificate and shares its TLS session;
// an SNI without a route, or no SNI, is closed.
func TestPassthrough(t *testing.T) {
	backend, ca := passthroughBackend(t)
	port := freePorts(t, 1)[0]
	startCaddy(t, obj{
		"stream_proxy":  obj{"tcp": list(tcpEntry(port, "tls_passthrough"))},
		"stream_routes": list(obj{"id": "1", "sni": "pt.test.com", "upstream": upstream(backend, nil)}),
	}, true)

	t.Run("routed by SNI", func(t *testing.T) {
		got, cs, err := tlsRoundTrip(addr(port), verifyingClient("pt.test.com", ca))
		if err != nil {
			t.Fatal(err)
		}
		checkPassthrough(t, got, cs, "pt.test.com")
	})
	for _, sni := range []string{"other.test.com", ""} {
		t.Run("no route for SNI "+sni, func(t *testing.T) {
			_, _, err := tlsRoundTrip(addr(port), clientCfg(sni))
			if err == nil {
				t.Fatal("handshake succeeded, want the connection closed")
			}
		})
	}
	t.Run("plain client", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", addr(port), ioTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte(strings.Repeat("not tls\n", 8))); err != nil {
			t.Fatal(err)
		}
		expectClosed(t, c)
	})
}

// TestMixedListener checks a listener with tls and tls_passthrough: the
// route with tls_passthrough true passes TLS through, the others
// terminate it.
func TestMixedListener(t *testing.T) {
	backend, ca := passthroughBackend(t)
	front := e2e.NewLeaf(t, "term", e2e.NewCA(t, "front CA"), "term.test.com")
	port := freePorts(t, 1)[0]
	startCaddy(t, obj{
		"stream_proxy": obj{"tcp": list(tcpEntry(port, "tls", "tls_passthrough"))},
		"ssls":         list(sslObj("term", front, "term.test.com")),
		"stream_routes": list(
			obj{"id": "pt", "sni": "pt.test.com", "tls_passthrough": true, "upstream": upstream(backend, nil)},
			obj{"id": "term", "sni": "term.test.com", "upstream": upstream(lineServer(t, "term"), nil)},
		),
	}, true)

	t.Run("passthrough route", func(t *testing.T) {
		got, cs, err := tlsRoundTrip(addr(port), verifyingClient("pt.test.com", ca))
		if err != nil {
			t.Fatal(err)
		}
		checkPassthrough(t, got, cs, "pt.test.com")
	})
	t.Run("passthrough route, SNI in another case", func(t *testing.T) {
		got, cs, err := tlsRoundTrip(addr(port), verifyingClient("PT.Test.COM", ca))
		if err != nil {
			t.Fatal(err)
		}
		checkPassthrough(t, got, cs, "PT.Test.COM") // untouched
	})
	t.Run("terminating route", func(t *testing.T) {
		got, cs, err := tlsRoundTrip(addr(port), clientCfg("term.test.com"))
		if err != nil {
			t.Fatal(err)
		}
		if cn := peerCN(cs); cn != "term" || got != "term:ping" {
			t.Errorf("certificate %q, reply %q; want %q, %q", cn, got, "term", "term:ping")
		}
	})
	t.Run("hello in small segments", func(t *testing.T) {
		got, cs, err := trickleRoundTrip(addr(port), 40, nil, verifyingClient("pt.test.com", ca))
		if err != nil {
			t.Fatal(err)
		}
		checkPassthrough(t, got, cs, "pt.test.com")
		got, cs, err = trickleRoundTrip(addr(port), 40, nil, clientCfg("term.test.com"))
		if err != nil || peerCN(cs) != "term" || got != "term:ping" {
			t.Errorf("certificate %q, reply %q (%v); want %q, %q", peerCN(cs), got, err, "term", "term:ping")
		}
	})
	t.Run("no route, no certificate", func(t *testing.T) {
		if got, _, err := tlsRoundTrip(addr(port), clientCfg("none.test.com")); err == nil {
			t.Fatalf("got %q, want a failed handshake", got)
		}
	})
}
