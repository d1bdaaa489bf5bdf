//go:build linux

package tlse2e

import (
	"crypto/tls"
	"testing"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// certSet are the server certificates of the termination tests, one per
// SSL object, told apart by subject CN.
type certSet struct {
	exact, wild, star, fallback, off *e2e.Cert
}

func newCertSet(t testing.TB) certSet {
	ca := e2e.NewCA(t, "tlse2e server CA")
	return certSet{
		exact:    e2e.NewLeaf(t, "exact", ca, "a.test.com"),
		wild:     e2e.NewLeaf(t, "wild", ca, "*.test.com"),
		star:     e2e.NewLeaf(t, "star", ca, "star.invalid"),
		fallback: e2e.NewLeaf(t, "fallback", ca, "fb.test.com"),
		off:      e2e.NewLeaf(t, "off", ca, "off.example.com"),
	}
}

// TestCertificateChoice checks which certificate a TLS listener serves per
// SNI: exact, then one-label wildcard, then "*"; disabled objects are left
// out; no SNI and unknown SNIs fail the handshake unless fallback_sni and
// "*" cover them.
func TestCertificateChoice(t *testing.T) {
	cs := newCertSet(t)
	up := lineServer(t, "up")
	disabled := sslObj("off", cs.off, "off.example.com")
	disabled["status"] = 0
	route := obj{"id": "1", "upstream": upstream(up, nil)}

	tests := []struct {
		name     string
		withStar bool // the "*" object and fallback_sni fb.test.com
		sni      string
		wantCN   string // "" means the handshake must fail
	}{
		{"exact", false, "a.test.com", "exact"},
		{"exact case-insensitive", false, "A.Test.COM", "exact"},
		{"wildcard", false, "b.test.com", "wild"},
		{"wildcard is one label", false, "x.b.test.com", ""},
		{"wildcard needs a label", false, "test.com", ""},
		{"no SNI", false, "", ""},
		{"unknown SNI", false, "unknown.org", ""},
		{"disabled object", false, "off.example.com", ""},
		{"star: exact first", true, "a.test.com", "exact"},
		{"star: wildcard before star", true, "b.test.com", "wild"},
		{"star: deeper name", true, "x.b.test.com", "star"},
		{"star: unknown SNI", true, "unknown.org", "star"},
		{"star: disabled object", true, "off.example.com", "star"},
		{"no SNI with fallback_sni", true, "", "fallback"},
	}
	ports := map[bool]int{}
	for _, withStar := range []bool{false, true} {
		port := freePorts(t, 1)[0]
		ports[withStar] = port
		ssls := list(sslObj("exact", cs.exact, "a.test.com"), sslObj("wild", cs.wild, "*.test.com"), disabled)
		app := obj{
			"stream_proxy":  obj{"tcp": list(tcpEntry(port, "tls"))},
			"stream_routes": list(route),
		}
		if withStar {
			ssls = append(ssls, sslObj("star", cs.star, "*"), sslObj("fb", cs.fallback, "fb.test.com"))
			app["fallback_sni"] = "fb.test.com"
		}
		app["ssls"] = ssls
		startCaddy(t, app, true)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, st, err := tlsRoundTrip(addr(ports[tt.withStar]), clientCfg(tt.sni))
			if tt.wantCN == "" {
				if err == nil {
					t.Fatalf("handshake with SNI %q succeeded (cert %q), want it to fail", tt.sni, peerCN(st))
				}
				return
			}
			if err != nil {
				t.Fatalf("SNI %q: %v", tt.sni, err)
			}
			if cn := peerCN(st); cn != tt.wantCN {
				t.Errorf("SNI %q: certificate %q, want %q", tt.sni, cn, tt.wantCN)
			}
			if got != "up:ping" {
				t.Errorf("SNI %q: reply %q, want %q", tt.sni, got, "up:ping")
			}
		})
	}
}

// TestRouteSNIPriority checks route selection after termination: exact sni
// routes before wildcard ones (multi-level), then "*", then routes without
// sni; a plain listener never matches sni routes.
func TestRouteSNIPriority(t *testing.T) {
	cs := newCertSet(t)
	p := freePorts(t, 3)
	tlsA, tlsB, plain := p[0], p[1], p[2]
	route := func(id, sni string, backend string, extra obj) obj {
		r := obj{"id": id, "upstream": upstream(lineServer(t, backend), nil)}
		if sni != "" {
			r["sni"] = sni
		}
		for k, v := range extra {
			r[k] = v
		}
		return r
	}
	app := obj{
		"stream_proxy": obj{"tcp": list(tcpEntry(tlsA, "tls"), tcpEntry(tlsB, "tls"), tcpEntry(plain))},
		"ssls":         list(sslObj("star", cs.star, "*")),
		// non-sni and "*" routes first: storage order must not matter
		"stream_routes": list(
			route("1", "", "plain", nil),
			route("2", "*", "star", obj{"server_port": tlsA}),
			route("3", "*.test.com", "wild", nil),
			route("4", "a.test.com", "exact", nil),
		),
	}
	startCaddy(t, app, true)

	tests := []struct {
		name string
		port int
		sni  string // "-" means a plain TCP client
		want string
	}{
		{"exact over wildcard", tlsA, "a.test.com", "exact"},
		{"wildcard", tlsA, "b.test.com", "wild"},
		{"route wildcard is multi-level", tlsA, "x.y.test.com", "wild"},
		{"star", tlsA, "other.org", "star"},
		{"star filtered out falls back to non-sni", tlsB, "other.org", "plain"},
		{"exact on second listener", tlsB, "a.test.com", "exact"},
		{"no SNI without fallback_sni fails", tlsB, "", ""},
		{"plain listener ignores sni routes", plain, "-", "plain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			var err error
			if tt.sni == "-" {
				got, err = plainRoundTrip(addr(tt.port), "ping")
			} else {
				got, _, err = tlsRoundTrip(addr(tt.port), clientCfg(tt.sni))
			}
			if tt.want == "" {
				if err == nil {
					t.Fatalf("got %q, want a failed handshake", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := tt.want + ":ping"; got != want {
				t.Errorf("reply %q, want %q", got, want)
			}
		})
	}
}

// TestMTLS checks client.ca: a certificate from that CA is accepted, none
// or one from another CA fails the handshake.
func TestMTLS(t *testing.T) {
	ca, otherCA := e2e.NewCA(t, "client CA"), e2e.NewCA(t, "other CA")
	server := e2e.NewLeaf(t, "mtls", e2e.NewCA(t, "server CA"), "m.test.com")
	good := e2e.NewLeaf(t, "good client", ca)
	bad := e2e.NewLeaf(t, "bad client", otherCA)
	port := freePorts(t, 1)[0]
	ssl := sslObj("m", server, "m.test.com")
	ssl["client"] = obj{"ca": ca.CertPEM}
	startCaddy(t, obj{
		"stream_proxy":  obj{"tcp": list(tcpEntry(port, "tls"))},
		"ssls":          list(ssl),
		"stream_routes": list(obj{"id": "1", "upstream": upstream(lineServer(t, "up"), nil)}),
	}, true)

	tests := []struct {
		name   string
		cert   *e2e.Cert
		maxVer uint16
		ok     bool
	}{
		{"accepted TLS 1.3", good, tls.VersionTLS13, true},
		{"accepted TLS 1.2", good, tls.VersionTLS12, true},
		{"no certificate TLS 1.3", nil, tls.VersionTLS13, false},
		{"no certificate TLS 1.2", nil, tls.VersionTLS12, false},
		{"other CA", bad, tls.VersionTLS13, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := clientCfg("m.test.com")
			cfg.MaxVersion = tt.maxVer
			if tt.cert != nil {
				cfg.Certificates = []tls.Certificate{tt.cert.TLS()}
			}
			got, st, err := tlsRoundTrip(addr(port), cfg)
			if !tt.ok {
				if err == nil {
					t.Fatalf("got %q, want the handshake refused", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cn := peerCN(st); cn != "mtls" || got != "up:ping" {
				t.Errorf("certificate %q, reply %q; want %q, %q", cn, got, "mtls", "up:ping")
			}
		})
	}
}
