package tlsx

import (
	"crypto/tls"
	"strings"
	"testing"

	"github.com/caddy-apisix/stream/model"
)

// TestServerConfigHandshakes runs real handshakes against the index's
// ServerConfig: certificate selection, ssl_protocols and mTLS.
func TestServerConfigHandshakes(t *testing.T) {
	caA := newCert(t, "ca-a", nil, true, false)
	caB := newCert(t, "ca-b", nil, true, false)
	interA := newCert(t, "inter-a", caA, true, false)
	interA2 := newCert(t, "inter-a2", interA, true, false)
	direct := newCert(t, "client-direct", caA, false, false)
	viaOne := newCert(t, "client-one", interA, false, false)
	viaTwo := newCert(t, "client-two", interA2, false, false)
	wrongCA := newCert(t, "client-wrong", caB, false, false)
	clientPair := func(c *testCert, inter ...*testCert) *tls.Certificate {
		p, err := ParseKeyPair(c.chainPEM(inter...), c.keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		return &p
	}

	rsa := newCert(t, "dual-rsa", nil, false, true)
	ec := newCert(t, "dual-ecdsa", nil, false, false)
	dual := &model.SSL{ID: "dual", SNI: "dual.test.com", Cert: rsa.certPEM, Key: rsa.keyPEM,
		Certs: []string{ec.certPEM}, Keys: []string{ec.keyPEM}}
	disabled := ssl(t, "disabled", "disabled", "disabled.test.com")
	disabled.Status = intp(0)
	tls13 := ssl(t, "tls13", "tls13", "tls13.test.com")
	tls13.SSLProtocols = []string{"TLSv1.3"}
	tls12 := ssl(t, "tls12", "tls12", "tls12.test.com")
	tls12.SSLProtocols = []string{"TLSv1.2"}
	gap := ssl(t, "gap", "gap", "gap.test.com")
	gap.SSLProtocols = []string{"TLSv1.3", "TLSv1.1"}
	mtls := ssl(t, "mtls", "mtls", "mtls.test.com")
	mtls.Client = &model.SSLClient{CA: caA.certPEM}
	depth0 := ssl(t, "depth0", "depth0", "depth0.test.com")
	depth0.Client = &model.SSLClient{CA: caA.certPEM, Depth: intp(0)}
	depth2 := ssl(t, "depth2", "depth2", "depth2.test.com")
	depth2.Client = &model.SSLClient{CA: caB.certPEM + caA.certPEM, Depth: intp(2)}

	base := []*model.SSL{
		ssl(t, "exact", "exact", "exact.test.com"),
		ssl(t, "wild", "wild", "*.test.com"),
		dual, disabled, tls13, tls12, gap, mtls, depth0, depth2,
	}
	plain, err := NewCertIndex(base, "")
	if err != nil {
		t.Fatal(err)
	}
	withStar, err := NewCertIndex(append(base[:len(base):len(base)], ssl(t, "star", "star", "*")), "")
	if err != nil {
		t.Fatal(err)
	}
	withFallback, err := NewCertIndex(base, "Exact.Test.Com")
	if err != nil {
		t.Fatal(err)
	}

	type client struct {
		sni      string
		min, max uint16
		suites   []uint16
		cert     *tls.Certificate
	}
	tests := []struct {
		name    string
		x       *CertIndex
		c       client
		wantCN  string // "" means the handshake must fail
		wantErr string // substring of the server's error when failing
		wantVer uint16 // checked when not 0
	}{
		{"exact", plain, client{sni: "exact.test.com"}, "exact", "", 0},
		{"exact uppercase", plain, client{sni: "EXACT.test.com"}, "exact", "", 0},
		{"wildcard one label", plain, client{sni: "a.test.com"}, "wild", "", 0},
		{"wildcard not two labels", plain, client{sni: "a.b.test.com"}, "", "failed to match any SSL certificate by SNI: a.b.test.com", 0},
		{"wildcard not apex", plain, client{sni: "test.com"}, "", "failed to match any SSL certificate by SNI: test.com", 0},
		{"star catches two labels", withStar, client{sni: "a.b.test.com"}, "star", "", 0},
		{"star catches other domain", withStar, client{sni: "example.org"}, "star", "", 0},
		{"exact before star", withStar, client{sni: "exact.test.com"}, "exact", "", 0},
		{"wildcard before star", withStar, client{sni: "x.test.com"}, "wild", "", 0},
		{"disabled object skipped", plain, client{sni: "disabled.test.com"}, "wild", "", 0},
		{"unknown sni", plain, client{sni: "unknown.example.org"}, "", "failed to match any SSL certificate by SNI: unknown.example.org", 0},
		{"no sni no fallback", plain, client{}, "", "failed to find SNI", 0},
		{"no sni star does not help", withStar, client{}, "", "failed to find SNI", 0},
		{"no sni fallback", withFallback, client{}, "exact", "", 0},
		{"sni beats fallback", withFallback, client{sni: "a.test.com"}, "wild", "", 0},
		{"dual picks ecdsa", plain, client{sni: "dual.test.com", max: tls.VersionTLS12,
			suites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}, "dual-ecdsa", "", 0},
		{"dual picks rsa", plain, client{sni: "dual.test.com", max: tls.VersionTLS12,
			suites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}}, "dual-rsa", "", 0},
		{"dual tls13 first", plain, client{sni: "dual.test.com"}, "dual-rsa", "", 0},
		{"tls13 only accepts 1.3", plain, client{sni: "tls13.test.com"}, "tls13", "", tls.VersionTLS13},
		{"tls13 only refuses 1.2", plain, client{sni: "tls13.test.com", max: tls.VersionTLS12}, "", "unsupported versions", 0},
		{"tls12 only negotiates 1.2", plain, client{sni: "tls12.test.com"}, "tls12", "", tls.VersionTLS12},
		{"tls12 only refuses 1.3", plain, client{sni: "tls12.test.com", min: tls.VersionTLS13}, "", "unsupported versions", 0},
		{"gap allows 1.3", plain, client{sni: "gap.test.com"}, "gap", "", tls.VersionTLS13},
		{"gap allows 1.1", plain, client{sni: "gap.test.com", min: tls.VersionTLS11, max: tls.VersionTLS11}, "gap", "", tls.VersionTLS11},
		{"gap refuses 1.2", plain, client{sni: "gap.test.com", max: tls.VersionTLS12}, "", "TLS version TLS 1.2 not allowed by ssl_protocols of ssl gap", 0},
		{"default refuses 1.1", plain, client{sni: "exact.test.com", min: tls.VersionTLS11, max: tls.VersionTLS11}, "", "unsupported versions", 0},
		{"mtls direct", plain, client{sni: "mtls.test.com", cert: clientPair(direct)}, "mtls", "", 0},
		{"mtls direct tls12", plain, client{sni: "mtls.test.com", max: tls.VersionTLS12, cert: clientPair(direct)}, "mtls", "", 0},
		{"mtls one intermediate within default depth", plain, client{sni: "mtls.test.com", cert: clientPair(viaOne, interA)}, "mtls", "", 0},
		{"mtls two intermediates over default depth", plain, client{sni: "mtls.test.com", cert: clientPair(viaTwo, interA2, interA)}, "", "exceeds verify depth 1 of ssl mtls", 0},
		{"mtls no cert", plain, client{sni: "mtls.test.com"}, "", "client didn't provide a certificate", 0},
		{"mtls no cert tls12", plain, client{sni: "mtls.test.com", max: tls.VersionTLS12}, "", "client didn't provide a certificate", 0},
		{"mtls wrong ca", plain, client{sni: "mtls.test.com", cert: clientPair(wrongCA)}, "", "certificate signed by unknown authority", 0},
		{"mtls wrong ca tls12", plain, client{sni: "mtls.test.com", max: tls.VersionTLS12, cert: clientPair(wrongCA)}, "", "certificate signed by unknown authority", 0},
		{"mtls self-signed ca as client cert", plain, client{sni: "mtls.test.com", cert: clientPair(caB)}, "", "certificate signed by unknown authority", 0},
		{"depth0 direct", plain, client{sni: "depth0.test.com", cert: clientPair(direct)}, "depth0", "", 0},
		{"depth0 one intermediate", plain, client{sni: "depth0.test.com", cert: clientPair(viaOne, interA)}, "", "exceeds verify depth 0 of ssl depth0", 0},
		{"depth2 two intermediates", plain, client{sni: "depth2.test.com", cert: clientPair(viaTwo, interA2, interA)}, "depth2", "", 0},
		{"depth2 second ca of bundle", plain, client{sni: "depth2.test.com", cert: clientPair(wrongCA)}, "depth2", "", 0},
		{"no mtls ignores client cert", plain, client{sni: "exact.test.com", cert: clientPair(wrongCA)}, "exact", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &tls.Config{ServerName: tt.c.sni, InsecureSkipVerify: true,
				MinVersion: tt.c.min, MaxVersion: tt.c.max, CipherSuites: tt.c.suites}
			if cert := tt.c.cert; cert != nil {
				// Always send it, even when the server names other CAs.
				cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
			}
			cn, ver, serr, cerr := handshake(t, tt.x, cfg)
			if tt.wantCN == "" {
				if serr == nil || cerr == nil {
					t.Fatalf("handshake succeeded (cn %q); server err %v, client err %v", cn, serr, cerr)
				}
				if !strings.Contains(serr.Error(), tt.wantErr) {
					t.Fatalf("server error %q, want it to contain %q", serr, tt.wantErr)
				}
				return
			}
			if serr != nil || cerr != nil {
				t.Fatalf("server err %v, client err %v", serr, cerr)
			}
			if cn != tt.wantCN {
				t.Fatalf("served %q, want %q", cn, tt.wantCN)
			}
			if tt.wantVer != 0 && ver != tt.wantVer {
				t.Fatalf("version %s, want %s", tls.VersionName(ver), tls.VersionName(tt.wantVer))
			}
		})
	}
}
