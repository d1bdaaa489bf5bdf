//go:build linux

package tlse2e

import (
	"crypto/tls"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// TestSSLProtocolsAndDepth checks the per-object ssl_protocols and the
// client.depth of mTLS on a TLS listener, also over IPv6 loopback.
func TestSSLProtocolsAndDepth(t *testing.T) {
	serverCA := e2e.NewCA(t, "server CA")
	root := e2e.NewCA(t, "client root")
	inter := e2e.NewSubCA(t, "client intermediate", root)
	leaf := e2e.NewLeaf(t, "chained client", inter)
	chain := tls.Certificate{Certificate: [][]byte{leaf.Cert.Raw, inter.Cert.Raw}, PrivateKey: leaf.Key}
	direct := e2e.NewLeaf(t, "direct client", root)

	v13 := sslObj("v13", e2e.NewLeaf(t, "v13", serverCA, "v13.test.com"), "v13.test.com")
	v13["ssl_protocols"] = []string{"TLSv1.3"}
	v12 := sslObj("v12", e2e.NewLeaf(t, "v12", serverCA, "v12.test.com"), "v12.test.com")
	v12["ssl_protocols"] = []string{"TLSv1.2"}
	depth0 := sslObj("d0", e2e.NewLeaf(t, "d0", serverCA, "d0.test.com"), "d0.test.com")
	depth0["client"] = obj{"ca": root.CertPEM, "depth": 0}
	depth1 := sslObj("d1", e2e.NewLeaf(t, "d1", serverCA, "d1.test.com"), "d1.test.com")
	depth1["client"] = obj{"ca": root.CertPEM} // depth 1 by default

	port := freePorts(t, 1)[0]
	v6 := fmt.Sprintf("[::1]:%d", port) // same port number, IPv6 loopback
	startCaddy(t, obj{
		"stream_proxy":  obj{"tcp": list(tcpEntry(port, "tls"), obj{"addr": v6, "tls": true})},
		"ssls":          list(v13, v12, depth0, depth1),
		"stream_routes": list(obj{"id": "1", "upstream": upstream(lineServer(t, "up"), nil)}),
	}, true)

	tests := []struct {
		name        string
		sni         string
		maxVer      uint16
		cert        *tls.Certificate
		wantVersion uint16 // 0: must fail
	}{
		{"TLSv1.3 only, TLS 1.3 client", "v13.test.com", tls.VersionTLS13, nil, tls.VersionTLS13},
		{"TLSv1.3 only, TLS 1.2 client", "v13.test.com", tls.VersionTLS12, nil, 0},
		{"TLSv1.2 only, TLS 1.3 capable client", "v12.test.com", tls.VersionTLS13, nil, tls.VersionTLS12},
		{"depth 0, direct client certificate", "d0.test.com", tls.VersionTLS13, ptr(direct.TLS()), tls.VersionTLS13},
		{"depth 0, one intermediate", "d0.test.com", tls.VersionTLS13, &chain, 0},
		{"depth 1, one intermediate", "d1.test.com", tls.VersionTLS13, &chain, tls.VersionTLS13},
	}
	for _, listener := range []string{addr(port), v6} {
		for _, tt := range tests {
			t.Run(listener+" "+tt.name, func(t *testing.T) {
				cfg := clientCfg(tt.sni)
				cfg.MaxVersion = tt.maxVer
				if tt.cert != nil {
					cfg.Certificates = []tls.Certificate{*tt.cert}
				}
				got, st, err := tlsRoundTrip(listener, cfg)
				if tt.wantVersion == 0 {
					if err == nil {
						t.Fatalf("got %q over %s, want a failed handshake", got, tls.VersionName(st.Version))
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if st.Version != tt.wantVersion || got != "up:ping" {
					t.Errorf("%s, reply %q; want %s, %q", tls.VersionName(st.Version), got, tls.VersionName(tt.wantVersion), "up:ping")
				}
			})
		}
	}
}

func ptr[T any](v T) *T { return &v }

// trickleConn writes at most n bytes per Write, pausing between writes,
// so the proxy sees the ClientHello arrive in many small segments. Its
// first write is prefixed with pre (a PROXY header in the same segment
// as the hello's start).
type trickleConn struct {
	net.Conn
	n   int
	pre []byte
}

func (c *trickleConn) Write(p []byte) (int, error) {
	if len(c.pre) > 0 {
		buf := append(append([]byte(nil), c.pre...), p[:min(len(p), c.n)]...)
		c.pre = nil
		if _, err := c.Conn.Write(buf); err != nil {
			return 0, err
		}
		w, err := c.Write(p[min(len(p), c.n):])
		return w + min(len(p), c.n), err
	}
	written := 0
	for written < len(p) {
		k := min(len(p)-written, c.n)
		m, err := c.Conn.Write(p[written : written+k])
		written += m
		if err != nil {
			return written, err
		}
		time.Sleep(time.Millisecond)
	}
	return written, nil
}

// trickleRoundTrip is tlsRoundTrip over a trickleConn.
func trickleRoundTrip(addr string, n int, pre []byte, cfg *tls.Config) (string, tls.ConnectionState, error) {
	raw, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		return "", tls.ConnectionState{}, err
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(ioTimeout))
	c := tls.Client(&trickleConn{Conn: raw, n: n, pre: pre}, cfg)
	got, err := exchange(c, "ping")
	return got, c.ConnectionState(), err
}
