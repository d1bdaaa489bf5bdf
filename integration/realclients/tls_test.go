//go:build linux

package realclients

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// pki is a test CA and certificates made with the openssl command line,
// as a user makes them.
type pki struct {
	t   testing.TB
	n   *netns
	dir string
}

// newPKI creates the CA "realclients test CA".
func newPKI(t testing.TB, n *netns) *pki {
	t.Helper()
	p := &pki{t: t, n: n, dir: t.TempDir()}
	p.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", p.path("ca.key"), "-out", p.path("ca.pem"), "-days", "2", "-subj", "/CN=realclients test CA")
	return p
}

// path is a file of the PKI directory.
func (p *pki) path(name string) string { return filepath.Join(p.dir, name) }

// read returns a PEM file's text.
func (p *pki) read(name string) string {
	b, err := os.ReadFile(p.path(name))
	if err != nil {
		p.t.Fatal(err)
	}
	return string(b)
}

// openssl runs the openssl command and fails the test on error.
func (p *pki) openssl(args ...string) {
	p.t.Helper()
	if r := p.n.run("", "openssl", args...); r.err != nil {
		p.t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), r.err, r.combined())
	}
}

// leaf issues name.pem/name.key for CN cn from the CA; usage is
// serverAuth or clientAuth. A server certificate names cn as its DNS SAN.
func (p *pki) leaf(name, cn, usage string) {
	p.t.Helper()
	args := []string{"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", p.path(name + ".key"), "-out", p.path(name + ".pem"), "-days", "2", "-subj", "/CN=" + cn,
		"-CA", p.path("ca.pem"), "-CAkey", p.path("ca.key"),
		"-addext", "basicConstraints=critical,CA:FALSE", "-addext", "extendedKeyUsage=" + usage}
	if usage == "serverAuth" {
		args = append(args, "-addext", "subjectAltName=DNS:"+cn)
	}
	p.openssl(args...)
}

// subjectCN is what s_client prints for the server certificate.
var subjectCN = regexp.MustCompile(`(?m)^subject=.*CN ?= ?([^,\n]+)$`)

// sClient runs openssl s_client against addr with SNI sni, verifying
// the chain against the test CA, sends stdin and waits for the server to
// close. extra adds options such as -cert and -key.
func (n *netns) sClient(p *pki, addr, sni, stdin string, extra ...string) result {
	args := append([]string{"s_client", "-connect", addr, "-servername", sni, "-CAfile", p.path("ca.pem"),
		"-verify_return_error", "-ign_eof", "-nocommands"}, extra...)
	return n.run(stdin, "openssl", args...)
}

// TestOpenSSL checks the TLS listener with the real openssl s_client
// (certificate chosen by SNI from SSL objects PUT through the Admin API,
// mTLS), and TLS upstreams with openssl s_server, which dumps the SNI it
// receives.
func TestOpenSSL(t *testing.T) {
	need(t, "openssl", "curl", "redis-server", "redis-cli")
	logVersion(t, "openssl", "version")
	n := newNetns(t)
	p := newPKI(t, n)
	p.leaf("a", "a.test.com", "serverAuth")
	p.leaf("b", "b.test.com", "serverAuth")
	p.leaf("m", "m.test.com", "serverAuth")
	p.leaf("up", "up.test", "serverAuth")
	p.leaf("client", "realclients client", "clientAuth")
	n.startRedis(6379)
	c := n.startCaddy(obj{"stream_proxy": obj{"tcp": []any{
		obj{"addr": 9100, "tls": true}, // terminates TLS, plain to redis
		obj{"addr": 9102, "tls": true}, // terminates TLS, TLS to s_server
		9101,                           // plain in, TLS to s_server
	}}})
	for _, s := range []struct{ id, name string }{{"a", "a.test.com"}, {"b", "b.test.com"}} {
		c.put(t, "ssls/"+s.id, obj{"cert": p.read(s.id + ".pem"), "key": p.read(s.id + ".key"), "snis": []string{s.name}})
	}
	c.put(t, "ssls/m", obj{"cert": p.read("m.pem"), "key": p.read("m.key"), "snis": []string{"m.test.com"},
		"client": obj{"ca": p.read("ca.pem")}})
	c.put(t, "stream_routes/redis", obj{"server_port": 9100, "upstream": upstream("127.0.0.1:6379")})

	const ping = "PING\r\nQUIT\r\n"
	t.Run("certificate by SNI", func(t *testing.T) {
		for _, sni := range []string{"a.test.com", "b.test.com"} {
			r := n.sClient(p, "127.0.0.1:9100", sni, ping)
			out := r.combined()
			m := subjectCN.FindStringSubmatch(out)
			if m == nil || m[1] != sni {
				t.Fatalf("s_client -servername %s: subject %q, want CN = %s:\n%s", sni, m, sni, out)
			}
			if !strings.Contains(out, "Verify return code: 0 (ok)") || !strings.Contains(r.stdout, "+PONG") {
				t.Fatalf("s_client -servername %s: no verified session with a PONG:\n%s", sni, out)
			}
		}
	})
	t.Run("mTLS with a client certificate", func(t *testing.T) {
		r := n.sClient(p, "127.0.0.1:9100", "m.test.com", ping, "-cert", p.path("client.pem"), "-key", p.path("client.key"))
		if m := subjectCN.FindStringSubmatch(r.combined()); m == nil || m[1] != "m.test.com" || !strings.Contains(r.stdout, "+PONG") {
			t.Fatalf("s_client with -cert/-key: want m.test.com's certificate and a PONG:\n%s", r.combined())
		}
	})
	t.Run("mTLS without a client certificate is refused", func(t *testing.T) {
		r := n.sClient(p, "127.0.0.1:9100", "m.test.com", ping)
		out := r.combined()
		if strings.Contains(out, "+PONG") {
			t.Fatalf("s_client without a certificate got through:\n%s", out)
		}
		// TLS 1.3: the server's certificate_required alert after the
		// client's Finished.
		if !strings.Contains(out, "alert certificate required") {
			t.Fatalf("s_client without a certificate: want \"alert certificate required\":\n%s", out)
		}
	})

	t.Run("TLS upstream sees the SNI", func(t *testing.T) {
		srv := n.startFor(t, "openssl", "s_server", "-accept", "127.0.0.1:8443", "-cert", p.path("up.pem"),
			"-key", p.path("up.key"), "-www", "-tlsextdebug")
		srv.WaitReady(startWait, n.tcpReady("127.0.0.1:8443"))
		tlsUp := upstream("127.0.0.1:8443")
		tlsUp["scheme"] = "tls"
		c.put(t, "stream_routes/plain-to-tls", obj{"server_port": 9101, "upstream": tlsUp})
		c.put(t, "stream_routes/tls-to-tls", obj{"server_port": 9102, "upstream": tlsUp})
		tests := []struct {
			name string
			curl []string
			want string
		}{
			{"plain client: apisix_backend", []string{"http://127.0.0.1:9101/"}, "apisix_backend"},
			{"TLS client: its SNI", []string{"--cacert", p.path("ca.pem"), "--resolve", "a.test.com:9102:127.0.0.1",
				"https://a.test.com:9102/"}, "a.test.com"},
		}
		for i, tt := range tests {
			// s_server -www answers any request line with its status page.
			r := n.run("", "curl", append([]string{"-sS", "--max-time", "10", "--http1.0"}, tt.curl...)...)
			if r.err != nil || !strings.Contains(r.stdout, "s_server -accept 127.0.0.1:8443") {
				t.Fatalf("%s: curl %q: %v: %s", tt.name, tt.curl, r.err, r.combined())
			}
			names, err := parseSNIDump(srv.Output())
			if err != nil {
				t.Fatalf("%s: s_server output: %v\n%s", tt.name, err, srv.Output())
			}
			if len(names) != i+1 || names[i] != tt.want {
				t.Fatalf("%s: s_server saw SNIs %q, want %q last", tt.name, names, tt.want)
			}
		}
	})
}
