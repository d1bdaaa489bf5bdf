package tlsx

import (
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/model"
)

func intp(i int) *int { return &i }

// ssl builds a server SSL object for names whose certificate's CN is cn.
func ssl(t testing.TB, id, cn string, names ...string) *model.SSL {
	t.Helper()
	c := newCert(t, cn, nil, false, false)
	s := &model.SSL{ID: model.ID(id), Cert: c.certPEM, Key: c.keyPEM}
	if len(names) == 1 {
		s.SNI = names[0]
	} else {
		s.SNIs = names
	}
	return s
}

func TestLookup(t *testing.T) {
	ssls := []*model.SSL{
		ssl(t, "1", "exact", "Exact.Test.com", "other.example.org"),
		ssl(t, "2", "wild", "*.test.com"),
		ssl(t, "3", "deep", "*.b.test.com"),
		ssl(t, "4", "bare", "*test.org"),
		ssl(t, "5", "disabled", "disabled.test.com"),
		ssl(t, "6", "dup", "exact.test.com"),
		ssl(t, "7", "client", "client.test.com"),
	}
	ssls[4].Status = intp(0)
	ssls[6].Type = "client"
	withStar := append(ssls[:len(ssls):len(ssls)], ssl(t, "8", "star", "*"))
	tests := []struct {
		sni          string
		want, wantSt string // CN without / with the "*" object; "" for none
	}{
		{"exact.test.com", "exact", "exact"},
		{"EXACT.test.com.", "exact", "exact"},
		{"other.example.org", "exact", "exact"},
		{"a.test.com", "wild", "wild"},
		{"a.b.test.com", "deep", "deep"},
		{"x.a.b.test.com", "", "star"},
		{"a.c.test.com", "", "star"},
		{"test.com", "", "star"},
		{"disabled.test.com", "wild", "wild"},
		{"client.test.com", "wild", "wild"},
		{"atest.org", "bare", "bare"},
		{"test.org", "bare", "bare"},
		{"a.test.org", "", "star"},
		{"localhost", "", "star"},
		{"", "", ""},
	}
	plain, err := NewCertIndex(ssls, "")
	if err != nil {
		t.Fatal(err)
	}
	star, err := NewCertIndex(withStar, "")
	if err != nil {
		t.Fatal(err)
	}
	if plain.Len() != 5 || star.Len() != 6 {
		t.Fatalf("Len = %d, %d; want 5, 6", plain.Len(), star.Len())
	}
	cn := func(e *Entry) string {
		if e == nil {
			return ""
		}
		return e.Certificates[0].Leaf.Subject.CommonName
	}
	for _, tt := range tests {
		if got := cn(plain.Lookup(tt.sni)); got != tt.want {
			t.Errorf("Lookup(%q) = %q, want %q", tt.sni, got, tt.want)
		}
		if got := cn(star.Lookup(tt.sni)); got != tt.wantSt {
			t.Errorf("with *: Lookup(%q) = %q, want %q", tt.sni, got, tt.wantSt)
		}
	}
}

func TestNewCertIndexErrors(t *testing.T) {
	good := ssl(t, "good", "good", "good.test.com")
	other := newCert(t, "other", nil, false, false)
	tests := []struct {
		name string
		mod  func(s *model.SSL)
		want string
	}{
		{"bad cert", func(s *model.SSL) { s.Cert = "junk" }, "ssl bad: failed to parse cert/key pair"},
		{"mismatched key", func(s *model.SSL) { s.Key = other.keyPEM }, "ssl bad: failed to parse cert/key pair"},
		{"counts differ", func(s *model.SSL) { s.Certs = []string{other.certPEM} }, "ssl bad: mismatched number of certs and keys"},
		{"bad extra pair", func(s *model.SSL) { s.Certs, s.Keys = []string{other.certPEM}, []string{"junk"} }, "ssl bad: failed to handle cert-key pair[1]"},
		{"bad protocol", func(s *model.SSL) { s.SSLProtocols = []string{"TLSv1.0"} }, `unsupported ssl_protocols value "TLSv1.0"`},
		{"bad ca", func(s *model.SSL) { s.Client = &model.SSLClient{CA: "junk"} }, "failed to parse client.ca"},
		{"negative depth", func(s *model.SSL) { s.Client = &model.SSLClient{CA: other.certPEM, Depth: intp(-1)} }, "client.depth -1 is negative"},
		{"no names", func(s *model.SSL) { s.SNI = "" }, "ssl bad: no sni or snis"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := ssl(t, "bad", "bad", "bad.test.com")
			tt.mod(bad)
			x, err := NewCertIndex([]*model.SSL{bad, good}, "")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if x.Lookup("good.test.com") == nil || x.Lookup("bad.test.com") != nil {
				t.Fatal("the good object must stay served and the bad one left out")
			}
		})
	}
}

func TestNewCertIndexFromReuse(t *testing.T) {
	a := ssl(t, "a", "a", "a.test.com")
	b := ssl(t, "b", "b", "b.test.com")
	prev, err := NewCertIndex([]*model.SSL{a, b}, "")
	if err != nil {
		t.Fatal(err)
	}
	// b gets a new certificate, a only new names: a's entry is reused.
	a2 := *a
	a2.SNI = "a2.test.com"
	b2 := ssl(t, "b", "b2", "b.test.com")
	next, err := NewCertIndexFrom(prev, []*model.SSL{&a2, b2}, "")
	if err != nil {
		t.Fatal(err)
	}
	if next.Lookup("a2.test.com") != prev.Lookup("a.test.com") {
		t.Error("unchanged key material was parsed again")
	}
	if next.Lookup("a.test.com") != nil {
		t.Error("old name still served")
	}
	if got := next.Lookup("b.test.com").Certificates[0].Leaf.Subject.CommonName; got != "b2" {
		t.Errorf("changed object serves %q, want b2", got)
	}
	// A changed ssl_protocols is a change too.
	a3 := a2
	a3.SSLProtocols = []string{"TLSv1.3"}
	third, err := NewCertIndexFrom(next, []*model.SSL{&a3}, "")
	if err != nil {
		t.Fatal(err)
	}
	if e := third.Lookup("a2.test.com"); e == next.Lookup("a2.test.com") || len(e.Versions) != 1 {
		t.Error("changed ssl_protocols reused the old entry")
	}
}

// handshake runs a real TLS handshake over loopback between the index's
// server config and a crypto/tls client with cfg. On success the server
// writes one byte, which the client reads: TLS 1.3 reports a rejected
// client certificate only there. It returns the CN of the certificate the
// client got, the negotiated version, and both sides' errors.
func handshake(t *testing.T, x *CertIndex, cfg *tls.Config) (cn string, version uint16, serverErr, clientErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	errc := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			errc <- err
			return
		}
		defer c.Close()
		s := tls.Server(c, x.ServerConfig())
		_ = s.SetDeadline(time.Now().Add(10 * time.Second))
		if err = s.Handshake(); err == nil {
			_, err = s.Write([]byte("k"))
		}
		errc <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tc := tls.Client(c, cfg)
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	if clientErr = tc.Handshake(); clientErr == nil {
		st := tc.ConnectionState()
		cn, version = st.PeerCertificates[0].Subject.CommonName, st.Version
		_, clientErr = tc.Read(make([]byte, 1))
	}
	return cn, version, <-errc, clientErr
}
