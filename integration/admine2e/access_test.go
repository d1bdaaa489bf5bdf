//go:build linux

package admine2e

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// outsider is a loopback source address outside allow_admin 127.0.0.1/32.
const outsider = "127.0.0.2"

// recommendedInstance is the setup the README recommends for remote
// access: Caddy's admin endpoint on 127.0.0.1, the Admin API also on
// admin_listen, keys from {env.*} and {file.*}, allow_admin one address.
// It returns the instance and the admin_listen address.
func recommendedInstance(t *testing.T, fields map[string]any) (*instance, string) {
	t.Helper()
	adminListen := hostPort("127.0.0.1", freePort(t))
	app := apisixApp(map[string]any{
		"admin_key": []any{
			map[string]any{"name": "admin", "key": "{env.APISIX_ADMIN_KEY}", "role": "admin"},
			map[string]any{"name": "viewer", "key": "{file.viewer.key}", "role": "viewer"},
		},
		"admin_listen": adminListen,
		"allow_admin":  []string{"127.0.0.1/32"},
	})
	for k, v := range fields {
		app[k] = v
	}
	in := newInstance(t, "", appsConfig(app))
	// {file.viewer.key} is relative to Caddy's working directory, in.dir
	if err := os.WriteFile(filepath.Join(in.dir, "viewer.key"), []byte(viewerKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	in.env = []string{"APISIX_ADMIN_KEY=" + adminKey}
	return in, adminListen
}

// TestAdminAccessRecommendedSetup: in the recommended setup, a client
// outside allow_admin with no key gets no key from any route of either
// endpoint; admin_listen serves the Admin API, the control API and the
// dashboard with keys and allow_admin, the metrics to allow_admin clients
// without a key, and nothing of Caddy's own API.
func TestAdminAccessRecommendedSetup(t *testing.T) {
	in, adminListen := recommendedInstance(t, nil)
	p := in.start()
	secrets := []string{adminKey, viewerKey}
	noSecret := func(what string, body []byte) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(string(body), s) {
				t.Errorf("%s: the answer holds a key: %s", what, body)
			}
		}
	}
	caddyAdmin := e2e.Admin{Addr: in.admin, From: outsider}
	listen := e2e.Admin{Addr: adminListen, From: outsider}

	// Caddy's /config/ holds the placeholders, not the keys
	for _, path := range []string{"/config/", "/config/apps/apisix/admin_key"} {
		st, _, body, err := caddyAdmin.Do(http.MethodGet, path, "", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if st != http.StatusOK || !strings.Contains(string(body), "{env.APISIX_ADMIN_KEY}") {
			t.Errorf("GET %s on Caddy's endpoint: %d %s, want 200 with the placeholder", path, st, body)
		}
		noSecret("GET "+path+" on Caddy's endpoint", body)
	}
	// admin_listen serves none of Caddy's routes, to anyone
	for _, from := range []string{outsider, "127.0.0.1"} {
		l := e2e.Admin{Addr: adminListen, From: from}
		for _, rq := range []struct{ method, path string }{
			{"GET", "/config/apps/apisix/admin_key"}, {"GET", "/config/"}, {"POST", "/load"},
			{"POST", "/config/apps/apisix/allow_admin"}, {"GET", "/debug/pprof/"},
			{"POST", "/stop"}, {"GET", "/id/x"}, {"GET", "/apisix/admin/../../config/"},
		} {
			st, _, body, err := l.Do(rq.method, rq.path, adminKey, []byte(`["0.0.0.0/0"]`), e2e.JSONContent)
			if err != nil {
				t.Fatal(err)
			}
			if st != http.StatusNotFound && !(st == http.StatusMovedPermanently && strings.HasPrefix(rq.path, "/apisix/admin/..")) {
				t.Errorf("%s %s on admin_listen from %s: %d %s, want 404", rq.method, rq.path, from, st, body)
			}
			noSecret(rq.method+" "+rq.path, body)
		}
	}
	// but the metrics, without a key, to allow_admin clients
	if st, _, body, err := (e2e.Admin{Addr: adminListen}).Do(http.MethodGet, "/metrics", "", nil, nil); err != nil ||
		st != http.StatusOK || !strings.Contains(string(body), "# TYPE apisix_stream_sessions_refused_total counter") {
		t.Errorf("GET /metrics on admin_listen without a key: %d %v, want 200 with the stream metrics:\n%s", st, err, body)
	}
	if st, _, body, err := listen.Do(http.MethodGet, "/metrics", "", nil, nil); err != nil || st != http.StatusForbidden {
		t.Errorf("GET /metrics on admin_listen from %s: %d %v %s, want 403", outsider, st, err, body)
	}
	// outside allow_admin: 403 with or without a key, on both endpoints
	for _, a := range []e2e.Admin{caddyAdmin, listen} {
		for _, req := range [][2]string{{"GET", "/apisix/admin/upstreams"}, {"GET", "/v1/healthcheck"}, {"GET", "/apisix/dashboard/"}, {"POST", "/v1/gc"}} {
			st, _, body, err := a.Do(req[0], req[1], adminKey, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if st != http.StatusForbidden {
				t.Errorf("%s %s on %s from %s: %d %s, want 403", req[0], req[1], a.Addr, outsider, st, body)
			}
		}
	}
	// allowed client: keys checked as on Caddy's endpoint
	local := e2e.Admin{Addr: adminListen}
	for _, c := range []struct {
		method, path, key, body string
		want                    int
		wantBody                string
	}{
		{"GET", "/apisix/admin/upstreams", "", "", 401, "missing apikey"},
		{"GET", "/apisix/admin/upstreams", "wrong", "", 401, "wrong apikey"},
		{"PUT", "/apisix/admin/upstreams/al", viewerKey, `{"nodes":{"127.0.0.1:1":1}}`, 401, "invalid method for role viewer"},
		{"PUT", "/apisix/admin/upstreams/al", adminKey, `{"nodes":{"127.0.0.1:1":1}}`, 201, `"key":"/apisix/upstreams/al"`},
		{"GET", "/apisix/admin/upstreams/al", viewerKey, "", 200, `"id":"al"`},
		{"HEAD", "/apisix/admin", "", "", 200, ""},
		{"GET", "/v1/healthcheck", "", "", 200, ""},
		// APISIX's control API: POST /v1/gc answers 200 with no body
		{"POST", "/v1/gc", "", "", 200, ""},
		{"GET", "/v1/gc", "", "", 405, ""},
		{"GET", "/apisix/dashboard/", "", "", 200, "<html"},
	} {
		var raw []byte
		if c.body != "" {
			raw = []byte(c.body)
		}
		st, _, body, err := local.Do(c.method, c.path, c.key, raw, e2e.JSONContent)
		if err != nil {
			t.Fatal(err)
		}
		if st != c.want || !strings.Contains(string(body), c.wantBody) || (c.path == "/v1/gc" && len(body) != 0) {
			t.Errorf("%s %s (key %q) on admin_listen: %s, want %d with %q", c.method, c.path, c.key, answer(st, string(body)), c.want, c.wantBody)
		}
	}
	// one registry behind both endpoints
	p.must(t, "GET", "/apisix/admin/upstreams/al", "", http.StatusOK)
	assertNoSecretsInLog(t, p.Output(), secrets)
}

// TestAdminEndpointBeyondLoopbackRefused: with the apisix app loaded,
// Caddy's admin endpoint on all interfaces fails the start with a text
// naming admin_listen and admin.remote, before the endpoint is bound; and
// a reload to such a config is refused, leaving the running endpoint.
func TestAdminEndpointBeyondLoopbackRefused(t *testing.T) {
	port := freePort(t)
	in := newInstance(t, hostPort("0.0.0.0", port), appsConfig(apisixApp(nil)))
	cmd := e2e.CaddyCmd(caddyBin, in.config, in.dir)
	proc := e2e.Start(t, "caddy", cmd, e2e.Options{StopWait: stopWait})
	select {
	case <-proc.Done():
	case <-time.After(startWait):
		t.Fatalf("caddy still runs with its admin endpoint on 0.0.0.0:\n%s", proc.Output())
	}
	out := proc.Output()
	if proc.Cmd.ProcessState.ExitCode() == 0 || !strings.Contains(out, "admin_listen") || !strings.Contains(out, "admin.remote") ||
		!strings.Contains(out, "beyond loopback") {
		t.Fatalf("exit %d, want a refusal naming admin_listen and admin.remote:\n%s", proc.Cmd.ProcessState.ExitCode(), out)
	}

	// a running instance refuses a reload that opens its admin endpoint
	good := newInstance(t, "", appsConfig(apisixApp(nil)))
	p := good.start()
	open := hostPort("0.0.0.0", freePort(t))
	cfg := e2e.CaddyConfig(open, good.storageRoot(), e2e.LogLevel("INFO"), map[string]any{"apisix": apisixApp(nil)})
	raw := e2e.WriteJSON(t, good.dir, "open.json", cfg)
	body, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	st, _, resp, err := e2e.Admin{Addr: good.admin}.Do(http.MethodPost, "/load", "", body, e2e.JSONContent)
	if err != nil {
		t.Fatal(err)
	}
	if st == http.StatusOK || !strings.Contains(string(resp), "admin_listen") {
		t.Errorf("POST /load with admin.listen %s: %s, want a refusal naming admin_listen", open, answer(st, string(resp)))
	}
	_, openPort, _ := net.SplitHostPort(open)
	if c, err := net.DialTimeout("tcp", net.JoinHostPort(outsider, openPort), answerWait); err == nil {
		c.Close()
		t.Errorf("after the refused reload, %s accepts connections", open)
	}
	p.must(t, "GET", "/apisix/admin/upstreams", "", http.StatusOK)
}
