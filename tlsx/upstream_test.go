package tlsx

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"strings"
	"testing"
	"time"
)

func TestUpstreamConfig(t *testing.T) {
	caA := newCert(t, "ca-a", nil, true, false)
	caB := newCert(t, "ca-b", nil, true, false)
	server := newCert(t, "backend.test.com", caB, false, false)
	clientLeaf := newCert(t, "proxy-client", caA, false, false)
	serverPair, err := ParseKeyPair(server.certPEM, server.keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	clientPair, err := ParseKeyPair(clientLeaf.certPEM, clientLeaf.keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	// The upstream asks for a certificate naming only ca-b; the proxy's
	// ca-a certificate must be sent anyway, as nginx does.
	pool := x509.NewCertPool()
	pool.AddCert(caB.cert)

	tests := []struct {
		name       string
		sni        string
		verify     bool
		cert       *tls.Certificate
		wantErr    string // client error substring; "" for success
		wantClient string // CN the upstream must see; "" for none
	}{
		{"dummy sni", DefaultUpstreamSNI, false, nil, "", ""},
		{"client sni passed", "client.test.com", false, nil, "", ""},
		{"client cert always sent", "client.test.com", false, &clientPair, "", "proxy-client"},
		{"verify against system roots fails for a private ca", "backend.test.com", true, nil, "certificate signed by unknown authority", ""},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			type seen struct {
				sni  string
				peer string
			}
			seenc := make(chan seen, 1)
			go func() {
				var s seen
				defer func() { seenc <- s }()
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				tc := tls.Server(c, &tls.Config{
					Certificates: []tls.Certificate{serverPair},
					ClientAuth:   tls.RequestClientCert,
					ClientCAs:    pool,
				})
				_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
				if tc.Handshake() != nil {
					return
				}
				st := tc.ConnectionState()
				s.sni = st.ServerName
				if len(st.PeerCertificates) > 0 {
					s.peer = st.PeerCertificates[0].Subject.CommonName
				}
				_, _ = tc.Write([]byte("k"))
			}()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			tc := tls.Client(c, UpstreamConfig(tt.sni, tt.verify, tt.cert))
			_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
			err = tc.Handshake()
			if err == nil {
				_, err = tc.Read(make([]byte, 1))
			}
			tc.Close()
			got := <-seenc
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.sni != tt.sni || got.peer != tt.wantClient {
				t.Fatalf("upstream saw sni %q client %q; want %q %q", got.sni, got.peer, tt.sni, tt.wantClient)
			}
		})
	}
}

func TestUpstreamConfigVerifyName(t *testing.T) {
	cfg := UpstreamConfig("backend.test.com", true, nil)
	if cfg.InsecureSkipVerify || cfg.ServerName != "backend.test.com" || cfg.RootCAs != nil {
		t.Fatalf("verify config: skip=%v name=%q roots=%v", cfg.InsecureSkipVerify, cfg.ServerName, cfg.RootCAs)
	}
	if cfg := UpstreamConfig(DefaultUpstreamSNI, false, nil); !cfg.InsecureSkipVerify || cfg.GetClientCertificate != nil {
		t.Fatal("no-verify config must skip verification and have no client certificate")
	}
}

func TestParseKeyPair(t *testing.T) {
	a := newCert(t, "a", nil, false, false)
	b := newCert(t, "b", nil, false, true)
	tests := []struct {
		name, cert, key, want string
	}{
		{"ok ecdsa", a.certPEM, a.keyPEM, ""},
		{"ok rsa", b.certPEM, b.keyPEM, ""},
		{"empty cert", "", a.keyPEM, "failed to parse cert: empty"},
		{"empty key", a.certPEM, "", "failed to parse key: empty"},
		{"junk cert", "junk", a.keyPEM, "failed to parse cert/key pair"},
		{"junk key", a.certPEM, "junk", "failed to parse cert/key pair"},
		{"mismatch", a.certPEM, b.keyPEM, "failed to parse cert/key pair"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pair, err := ParseKeyPair(tt.cert, tt.key)
			if tt.want == "" {
				if err != nil || pair.Leaf == nil {
					t.Fatalf("err %v, leaf %v", err, pair.Leaf)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}
