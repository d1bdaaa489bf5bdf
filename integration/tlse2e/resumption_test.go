//go:build linux

package tlse2e

import (
	"crypto/tls"
	"sync"
	"testing"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// anyNameCache is a client session cache that offers its last session
// whatever the server name, as a hostile client may.
type anyNameCache struct {
	mu sync.Mutex
	cs *tls.ClientSessionState
}

func (c *anyNameCache) Get(string) (*tls.ClientSessionState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cs, c.cs != nil
}

func (c *anyNameCache) Put(_ string, cs *tls.ClientSessionState) {
	if cs == nil {
		return
	}
	c.mu.Lock()
	c.cs = cs
	c.mu.Unlock()
}

// TestSessionResumption checks session tickets on a TLS listener: a
// client resumes under the same name (TLS 1.3 and 1.2), a session from
// one mTLS object does not get a client in under another object whose
// client.ca did not sign its certificate.
func TestSessionResumption(t *testing.T) {
	serverCA := e2e.NewCA(t, "server CA")
	caN, caM := e2e.NewCA(t, "CA N"), e2e.NewCA(t, "CA M")
	clientN := e2e.NewLeaf(t, "client N", caN)
	sslN := sslObj("n", e2e.NewLeaf(t, "n", serverCA, "n.test.com"), "n.test.com")
	sslN["client"] = obj{"ca": caN.CertPEM}
	sslM := sslObj("m", e2e.NewLeaf(t, "m", serverCA, "m.test.com"), "m.test.com")
	sslM["client"] = obj{"ca": caM.CertPEM}
	port := freePorts(t, 1)[0]
	startCaddy(t, obj{
		"stream_proxy":  obj{"tcp": list(tcpEntry(port, "tls"))},
		"ssls":          list(sslN, sslM),
		"stream_routes": list(obj{"id": "1", "upstream": upstream(lineServer(t, "up"), nil)}),
	}, true)

	for _, ver := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		t.Run(tls.VersionName(ver), func(t *testing.T) {
			cache := &anyNameCache{}
			cfg := func(sni string) *tls.Config {
				c := clientCfg(sni)
				c.MaxVersion = ver
				c.ClientSessionCache = cache
				c.Certificates = []tls.Certificate{clientN.TLS()}
				return c
			}
			if _, st, err := tlsRoundTrip(addr(port), cfg("n.test.com")); err != nil || st.DidResume {
				t.Fatalf("first handshake: resumed %v, %v", st.DidResume, err)
			}
			got, st, err := tlsRoundTrip(addr(port), cfg("n.test.com"))
			if err != nil || !st.DidResume || got != "up:ping" {
				t.Fatalf("same name: resumed %v, reply %q (%v); want a resumed session", st.DidResume, got, err)
			}
			if got, st, err := tlsRoundTrip(addr(port), cfg("m.test.com")); err == nil {
				t.Fatalf("other mTLS object: got %q (resumed %v), want refused", got, st.DidResume)
			}
		})
	}
}
