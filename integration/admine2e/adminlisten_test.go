//go:build linux

package admine2e

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// TestAdminListenTLS: with admin_tls, admin_listen speaks HTTPS with the
// configured certificate (the Admin API, keys and all, works over it),
// and a plain-HTTP request on it gets no Admin API answer.
func TestAdminListenTLS(t *testing.T) {
	cert := e2e.NewCert(t, "admin.test")
	certFile, keyFile := cert.Files(t, t.TempDir(), "admin")
	in, adminListen := recommendedInstance(t, map[string]any{
		"admin_tls": map[string]any{"cert_file": certFile, "key_file": keyFile},
	})
	p := in.start()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: cert.Pool(), ServerName: "admin.test"},
	}}
	do := func(method, path, key, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, "https://"+adminListen+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if key != "" {
			req.Header.Set("X-API-KEY", key)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s over TLS: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 || !resp.TLS.PeerCertificates[0].Equal(cert.Cert) {
			t.Errorf("%s %s: not served with the admin_tls certificate", method, path)
		}
		return resp.StatusCode, string(b)
	}
	if st, b := do("PUT", "/apisix/admin/upstreams/tls", adminKey, `{"nodes":{"127.0.0.1:1":1}}`); st != http.StatusCreated {
		t.Errorf("PUT over TLS: %s, want 201", answer(st, b))
	}
	if st, b := do("GET", "/apisix/admin/upstreams/tls", "", ""); st != http.StatusUnauthorized || !strings.Contains(b, "missing apikey") {
		t.Errorf("GET over TLS without a key: %s, want 401 missing apikey", answer(st, b))
	}
	if st, b := do("GET", "/apisix/dashboard/", "", ""); st != http.StatusOK {
		t.Errorf("GET the dashboard over TLS: %s, want 200", answer(st, b))
	}
	p.must(t, "GET", "/apisix/admin/upstreams/tls", "", http.StatusOK)
	// plain HTTP on the TLS port: Go's TLS server answers 400 in clear
	// text and never reaches the Admin API
	st, _, body, err := e2e.Admin{Addr: adminListen}.Do(http.MethodGet, "/apisix/admin/upstreams/tls", adminKey, nil, nil)
	if err == nil && (st != http.StatusBadRequest || strings.Contains(string(body), `"id":"tls"`)) {
		t.Errorf("plain HTTP on the TLS admin_listen: %s, want 400 or a closed connection", answer(st, string(body)))
	}
	assertNoSecretsInLog(t, p.Output(), []string{adminKey, viewerKey, cert.KeyPEM})
}

// TestAdminListenOrigins: on admin_listen a browser's state-changing
// request from another origin is refused with 403 and changes nothing,
// as on Caddy's endpoint with origins; the same origin (reached by IP),
// the listed admin_origins, safe methods and clients that are not
// browsers are served.
func TestAdminListenOrigins(t *testing.T) {
	in, adminListen := recommendedInstance(t, map[string]any{
		"admin_origins": []string{"https://ops.example.com:8443", "tools.example.com:81"},
	})
	p := in.start()
	self := "http://" + adminListen
	_, port, _ := net.SplitHostPort(adminListen)
	for i, c := range []struct {
		method string
		hdr    map[string]string
		want   int
		text   string
	}{
		{"PUT", map[string]string{"Origin": "http://evil.example"}, 403, "client is not allowed to access from origin 'http://evil.example'"},
		{"DELETE", map[string]string{"Origin": "http://evil.example"}, 403, "not allowed"},
		{"POST", map[string]string{"Origin": "http://evil.example"}, 403, "not allowed"},
		{"PATCH", map[string]string{"Origin": "http://evil.example"}, 403, "not allowed"},
		{"PUT", map[string]string{"Origin": "null"}, 403, "required Origin header is missing or invalid"},
		{"PUT", map[string]string{"Sec-Fetch-Mode": "no-cors", "Referer": "http://evil.example/page"}, 403, "not allowed"},
		{"PUT", map[string]string{"Sec-Fetch-Mode": "cors"}, 403, "required Origin header is missing or invalid"},
		// https page of the same host:port is another origin
		{"PUT", map[string]string{"Origin": "https://" + adminListen}, 403, "not allowed"},
		// a DNS name that points here is not trusted unless listed
		{"PUT", map[string]string{"Origin": "http://rebind.example:" + port, "Host": "rebind.example:" + port}, 403, "not allowed"},
		{"PUT", map[string]string{"Origin": "http://ops.example.com:8443"}, 403, "not allowed"},
		{"PUT", map[string]string{"Origin": self}, 200, ""},
		{"PUT", map[string]string{"Origin": self, "Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "same-origin"}, 200, ""},
		{"PUT", map[string]string{"Origin": "https://ops.example.com:8443"}, 200, ""},
		{"PUT", map[string]string{"Origin": "http://tools.example.com:81"}, 200, ""},
		{"PUT", nil, 200, ""},
		{"GET", map[string]string{"Origin": "http://evil.example"}, 200, ""},
	} {
		path := "/apisix/admin/upstreams/o"
		var body []byte
		if c.method != "GET" && c.method != "DELETE" {
			body = []byte(`{"nodes":{"127.0.0.1:1":1}}`)
		}
		if c.method == "POST" {
			path = "/apisix/admin/upstreams"
		}
		// start each write case from no object
		_, _, _ = p.call("DELETE", "/apisix/admin/upstreams/o", adminKey, "", nil)
		if c.method == "GET" || c.method == "DELETE" || c.method == "PATCH" {
			p.must(t, "PUT", "/apisix/admin/upstreams/o", `{"nodes":{"127.0.0.1:1":1}}`, http.StatusCreated)
		}
		st, _, b, err := e2e.Admin{Addr: adminListen}.Do(c.method, path, adminKey, body, c.hdr)
		if err != nil {
			t.Fatal(err)
		}
		ok := st == c.want || (c.want == 200 && st == http.StatusCreated)
		if !ok || !strings.Contains(string(b), c.text) {
			t.Errorf("case %d: %s %s with %v: %s, want %d with %q", i, c.method, path, c.hdr, answer(st, string(b)), c.want, c.text)
		}
		if c.want == 403 {
			st, got, _ := p.call("GET", "/apisix/admin/upstreams/o", adminKey, "", nil)
			wantThere := c.method == "DELETE" || c.method == "PATCH"
			if (st == http.StatusOK) != wantThere {
				t.Errorf("case %d: after the refused %s the object is there: %v (GET %s), want %v", i, c.method, st == http.StatusOK, answer(st, got), wantThere)
			}
			if c.method == "POST" {
				_, list, _ := p.call("GET", "/apisix/admin/upstreams", adminKey, "", nil)
				if !bytes.Contains([]byte(list), []byte(`"total":0`)) {
					t.Errorf("case %d: the refused POST created an upstream: %s", i, list)
				}
			}
		}
	}
}

// TestAdminListenMutualTLS: with admin_tls.ca_file, admin_listen serves
// only clients whose certificate that CA signed; a client without a
// certificate, or with one from another CA, fails the handshake and
// reaches nothing (APISIX's admin_api_mtls.admin_ssl_ca_cert).
func TestAdminListenMutualTLS(t *testing.T) {
	server := e2e.NewCert(t, "admin.test")
	dir := t.TempDir()
	certFile, keyFile := server.Files(t, dir, "admin")
	clientsCA := e2e.NewCA(t, "admin clients")
	caFile, _ := clientsCA.Files(t, dir, "clients-ca")
	operator := e2e.NewLeaf(t, "operator", clientsCA)
	stranger := e2e.NewLeaf(t, "stranger", e2e.NewCA(t, "another CA"))
	in, adminListen := recommendedInstance(t, map[string]any{
		"admin_tls": map[string]any{"cert_file": certFile, "key_file": keyFile, "ca_file": caFile},
	})
	p := in.start()
	put := func(client *tls.Certificate) (int, error) {
		t.Helper()
		cfg := &tls.Config{RootCAs: server.Pool(), ServerName: "admin.test"}
		if client != nil {
			cfg.Certificates = []tls.Certificate{*client}
		}
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
		req, err := http.NewRequest("PUT", "https://"+adminListen+"/apisix/admin/upstreams/mtls", strings.NewReader(`{"nodes":{"127.0.0.1:1":1}}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-API-KEY", adminKey)
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	for _, c := range []struct {
		name   string
		client *tls.Certificate
	}{{"no client certificate", nil}, {"a certificate of another CA", ptr(stranger.TLS())}} {
		if st, err := put(c.client); err == nil {
			t.Errorf("PUT with %s: answered %d, want a failed handshake", c.name, st)
		} else if !strings.Contains(err.Error(), "certificate") {
			t.Errorf("PUT with %s: %v, want the server's certificate alert", c.name, err)
		}
	}
	p.must(t, "GET", "/apisix/admin/upstreams/mtls", "", http.StatusNotFound)
	if st, err := put(ptr(operator.TLS())); err != nil || st != http.StatusCreated {
		t.Fatalf("PUT with the operator's certificate: %d, %v, want 201", st, err)
	}
	p.must(t, "GET", "/apisix/admin/upstreams/mtls", "", http.StatusOK)
	assertNoSecretsInLog(t, p.Output(), []string{adminKey, viewerKey, server.KeyPEM, operator.KeyPEM})
}

func ptr[T any](v T) *T { return &v }
