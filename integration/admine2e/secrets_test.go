//go:build linux

package admine2e

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// assertNoSecretsInLog fails the test for every secret that out (a
// process's whole output) holds, naming the line without the secret.
func assertNoSecretsInLog(t testing.TB, out string, secrets []string) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		for _, s := range secrets {
			if s != "" && strings.Contains(line, s) {
				t.Errorf("a secret is in the log: %s", strings.ReplaceAll(line, s, "<SECRET>"))
			}
		}
	}
}

// TestSecretsNeverLogged: with a plain JSON config that sets no log filter,
// at DEBUG, keyed Admin API calls (header, query, encoded query, cookie;
// on Caddy's endpoint and on admin_listen) and SSL and upstream private
// keys (accepted, and refused as invalid) leave neither a key nor a
// private key in the process's output, in an answer or in an error text.
func TestSecretsNeverLogged(t *testing.T) {
	ca := e2e.NewCA(t, "secrets CA")
	cert, key, _ := leaf(t, ca, "secret.test")
	_, otherKey, _ := leaf(t, ca, "other.test")
	in, adminListen := recommendedInstance(t, nil)
	// the same config at DEBUG, with no log filter
	var cfg map[string]any
	raw, err := os.ReadFile(in.config)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["logging"] = e2e.LogLevel("DEBUG")
	in.config = e2e.WriteJSON(t, in.dir, "debug.json", cfg)
	p := in.start()

	sslBody, _ := json.Marshal(map[string]any{"cert": cert, "key": key, "sni": "secret.test"})
	badSSL, _ := json.Marshal(map[string]any{"cert": cert, "key": otherKey, "sni": "secret.test"})
	upBody, _ := json.Marshal(map[string]any{"nodes": map[string]any{"127.0.0.1:1": 1}, "scheme": "tls",
		"tls": map[string]any{"client_cert": cert, "client_key": key}})
	badUp, _ := json.Marshal(map[string]any{"nodes": map[string]any{"127.0.0.1:1": 1}, "scheme": "tls",
		"tls": map[string]any{"client_cert": cert, "client_key": otherKey}})
	secrets := []string{adminKey, viewerKey}
	for _, k := range []string{key, otherKey} {
		for _, line := range strings.Split(k, "\n") {
			if len(line) > 32 && !strings.HasPrefix(line, "-----") {
				secrets = append(secrets, line)
			}
		}
	}
	for _, addr := range []string{in.admin, adminListen} {
		a := e2e.Admin{Addr: addr}
		for _, c := range []struct {
			method, path, key string
			body              []byte
			hdr               map[string]string
		}{
			{"GET", "/apisix/admin/upstreams", adminKey, nil, nil},
			{"GET", "/apisix/admin/upstreams?api_key=" + adminKey, "", nil, nil},
			{"GET", "/apisix/admin/upstreams?x=1&api%5Fkey=" + viewerKey, "", nil, nil},
			{"GET", "/apisix/admin/upstreams", "", nil, map[string]string{"Cookie": "x_api_key=" + adminKey}},
			{"GET", "/apisix/admin/upstreams", "", nil, map[string]string{"x-api-key": viewerKey}},
			{"PUT", "/apisix/admin/ssls/s1", adminKey, sslBody, e2e.JSONContent},
			{"PUT", "/apisix/admin/ssls/s2", adminKey, badSSL, e2e.JSONContent},
			{"PUT", "/apisix/admin/upstreams/u1", adminKey, upBody, e2e.JSONContent},
			{"PUT", "/apisix/admin/upstreams/u2", adminKey, badUp, e2e.JSONContent},
			{"PUT", "/apisix/admin/ssls/s3?api_key=" + adminKey, "", []byte(`{"cert":"x","key":` + jsonString(key) + `}`), e2e.JSONContent},
			{"GET", "/apisix/admin/ssls/s1", viewerKey, nil, nil},
			{"GET", "/apisix/admin/ssls", viewerKey, nil, nil},
			{"GET", "/apisix/admin/upstreams/u1", viewerKey, nil, nil},
			{"PUT", "/apisix/admin/upstreams/u1", "wrong-" + adminKey, upBody, e2e.JSONContent},
		} {
			st, _, body, err := a.Do(c.method, c.path, c.key, c.body, c.hdr)
			if err != nil {
				t.Fatal(err)
			}
			if st >= 500 {
				t.Errorf("%s %s: %d %s", c.method, c.path, st, body)
			}
			for _, s := range secrets {
				if strings.Contains(string(body), s) {
					t.Errorf("%s %s: the answer (%d) holds a secret", c.method, c.path, st)
				}
			}
		}
	}
	p.Stop()
	out := p.Output()
	if !strings.Contains(out, "received request") || !strings.Contains(out, "REDACTED") {
		t.Errorf("no redacted request log line; the test would prove nothing:\n%s", out)
	}
	assertNoSecretsInLog(t, out, secrets)
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
