//go:build linux

package tlse2e

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
	"github.com/caddy-apisix/stream/proxyproto"
)

// fakeSrc is the client address the tests' PROXY headers claim.
var fakeSrc = netip.MustParseAddrPort("127.0.0.99:5555")

// dialWithHeader connects to port and sends hdr first.
func dialWithHeader(t *testing.T, port int, hdr []byte) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr(port), ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if len(hdr) > 0 {
		if _, err := c.Write(hdr); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// TestProxyProtocolIn checks a proxy_protocol listener: the header's
// source address is the remote_addr routes match on (v1 and v2, plain and
// before a TLS handshake); a missing or broken header closes the
// connection even though a route matches the real address.
func TestProxyProtocolIn(t *testing.T) {
	p := freePorts(t, 2)
	plain, tlsPort := p[0], p[1]
	front := e2e.NewLeaf(t, "front", e2e.NewCA(t, "front CA"), "a.test.com")
	startCaddy(t, obj{
		"stream_proxy": obj{"tcp": list(tcpEntry(plain, "proxy_protocol"), tcpEntry(tlsPort, "proxy_protocol", "tls"))},
		"ssls":         list(sslObj("1", front, "a.test.com")),
		"stream_routes": list(
			obj{"id": "fake", "remote_addr": "127.0.0.99", "upstream": upstream(lineServer(t, "fake"), nil)},
			obj{"id": "real", "remote_addr": "127.0.0.1", "upstream": upstream(lineServer(t, "real"), nil)},
		),
	}, true)
	dst := netip.MustParseAddrPort(addr(plain))

	tests := []struct {
		name string
		hdr  []byte
		want string // "" means closed without data
	}{
		{"v1", proxyproto.AppendV1(nil, fakeSrc, dst), "fake:ping"},
		{"v2", proxyproto.AppendV2(nil, fakeSrc, dst), "fake:ping"},
		{"v2 LOCAL keeps the real address", proxyproto.AppendV2(nil, netip.AddrPort{}, netip.AddrPort{}), "real:ping"},
		{"v1 UNKNOWN keeps the real address", []byte("PROXY UNKNOWN\r\n"), "real:ping"},
		{"missing header", nil, ""},
		{"bad v1 address", []byte("PROXY TCP4 127.0.0.999 127.0.0.1 5555 80\r\n"), ""},
		{"v1 without CRLF", []byte("PROXY TCP4 127.0.0.99 127.0.0.1 5555 80\n"), ""},
		{"bad v2 version", append([]byte("\r\n\r\n\x00\r\nQUIT\n\x31\x11\x00\x0c"), make([]byte, 12)...), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialWithHeader(t, plain, tt.hdr)
			if tt.want == "" {
				// at least 8 bytes: the reader waits for that many (up to
				// its preread timeout) before it can tell there is no header
				// a reset on this write means closed already
				_, _ = c.Write([]byte("ping ping ping\n"))
				expectClosed(t, c)
				return
			}
			got, err := exchange(c, "ping")
			if err != nil || got != tt.want {
				t.Errorf("reply %q (%v), want %q", got, err, tt.want)
			}
		})
	}
	t.Run("header then TLS", func(t *testing.T) {
		for _, v := range []int{1, 2} {
			hdr := proxyproto.AppendV1(nil, fakeSrc, dst)
			if v == 2 {
				hdr = proxyproto.AppendV2(nil, fakeSrc, dst)
			}
			// 1<<20: header and whole hello in one segment; 40: the
			// header with the hello's start, then small segments
			for _, seg := range []int{1 << 20, 40} {
				got, cs, err := trickleRoundTrip(addr(tlsPort), seg, hdr, clientCfg("a.test.com"))
				if err != nil || got != "fake:ping" || peerCN(cs) != "front" {
					t.Errorf("v%d, segments of %d: reply %q (%v), certificate %q; want %q from %q", v, seg, got, err, peerCN(cs), "fake:ping", "front")
				}
			}
		}
	})
	t.Run("TLS without header", func(t *testing.T) {
		if got, _, err := tlsRoundTrip(addr(tlsPort), clientCfg("a.test.com")); err == nil {
			t.Fatalf("got %q, want the connection closed", got)
		}
	})
}

// TestProxyProtocolToUpstream checks proxy_protocol_to_upstream: the
// backend reads a v1 header carrying the client's address (its real one,
// or the one of its own PROXY header when the listener accepts one) and
// the listener's address; also before an upstream TLS handshake.
func TestProxyProtocolToUpstream(t *testing.T) {
	p := freePorts(t, 3)
	out, inOut, outTLS := p[0], p[1], p[2]
	startCaddy(t, obj{
		"stream_proxy": obj{"tcp": list(tcpEntry(out, "proxy_protocol_to_upstream"),
			tcpEntry(inOut, "proxy_protocol", "proxy_protocol_to_upstream"),
			tcpEntry(outTLS, "proxy_protocol_to_upstream"))},
		"stream_routes": list(
			obj{"id": "tls", "server_port": outTLS, "upstream": upstream(proxyTLSServer(t), obj{"scheme": "tls"})},
			obj{"id": "plain", "upstream": upstream(proxyServer(t), nil)},
		),
	}, true)

	t.Run("client address", func(t *testing.T) {
		c := dialWithHeader(t, out, nil)
		got, err := exchange(c, "ping")
		want := fmt.Sprintf("v1 src=%s dst=%s:ping", c.LocalAddr(), c.RemoteAddr())
		if err != nil || got != want {
			t.Errorf("backend saw %q (%v), want %q", got, err, want)
		}
	})
	t.Run("header before upstream TLS", func(t *testing.T) {
		c := dialWithHeader(t, outTLS, nil)
		got, err := exchange(c, "ping")
		want := fmt.Sprintf("v1 src=%s dst=%s:hello apisix_backend", c.LocalAddr(), c.RemoteAddr())
		if err != nil || got != want {
			t.Errorf("backend saw %q (%v), want %q", got, err, want)
		}
	})
	t.Run("address from the client's PROXY header", func(t *testing.T) {
		c := dialWithHeader(t, inOut, proxyproto.AppendV2(nil, fakeSrc, netip.MustParseAddrPort(addr(inOut))))
		got, err := exchange(c, "ping")
		want := fmt.Sprintf("v1 src=%s dst=%s:ping", fakeSrc, c.RemoteAddr())
		if err != nil || got != want {
			t.Errorf("backend saw %q (%v), want %q", got, err, want)
		}
	})
}

// proxyTLSServer is proxyServer speaking TLS after the header: it answers
// one line with "v1 src=S dst=D:hello <sni>".
func proxyTLSServer(t testing.TB) string {
	cert := e2e.NewLeaf(t, "pp backend", nil, "pp.test.com")
	cfg := &tls.Config{Certificates: []tls.Certificate{cert.TLS()}}
	return serve(t, func(c net.Conn) {
		hdr, err := proxyproto.ReadHeader(c)
		if err != nil {
			return
		}
		tc := tls.Server(c, cfg)
		if err := tc.Handshake(); err != nil {
			return
		}
		replyLine(tc, func(string) string {
			return fmt.Sprintf("v%d src=%s dst=%s:hello %s", hdr.Version, hdr.Src, hdr.Dst, tc.ConnectionState().ServerName)
		})
	})
}
