//go:build linux

package integration

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// TestReloadKeepsStateAndConnections checks config reloads through
// Caddy's /load: Admin API objects survive, an established connection
// keeps flowing, an added listener serves, and a removed listener stops
// accepting while its open connection goes on.
func TestReloadKeepsStateAndConnections(t *testing.T) {
	be := newBackend(t, "steady")
	p1, p2 := freePort(t), freePort(t)
	cfg := func(ports ...int) caddyConfig {
		var tcp []any
		for _, p := range ports {
			tcp = append(tcp, hostPort("127.0.0.1", p))
		}
		return caddyConfig{Apisix: map[string]any{"stream_proxy": map[string]any{"tcp": tcp}}}
	}
	p := startCaddy(t, cfg(p1))
	p.put(t, "stream_routes/1", map[string]any{"upstream": upstreamOf(be)})
	c, err := dialFrom("127.0.0.1", hostPort("127.0.0.1", p1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if name, err := greeting(c); err != nil || name != be.Name {
		t.Fatalf("greeting %q, %v", name, err)
	}

	p.load(t, cfg(p1, p2))
	checkEcho(t, c, be.Name)
	for _, port := range []int{p1, p2} {
		if got := whoTCP(t, "127.0.0.1", hostPort("127.0.0.1", port)); got != be.Name {
			t.Fatalf("after reload, port %d answered by %q, want %q", port, got, be.Name)
		}
	}

	p.load(t, cfg(p2))
	checkEcho(t, c, be.Name)
	if conn, err := dialFrom("127.0.0.1", hostPort("127.0.0.1", p1)); err == nil {
		conn.Close()
		t.Fatalf("port %d still accepts connections after its listener was removed", p1)
	}
	if got := whoTCP(t, "127.0.0.1", hostPort("127.0.0.1", p2)); got != be.Name {
		t.Fatalf("port %d answered by %q, want %q", p2, got, be.Name)
	}
}

// TestObjectsPersistAcrossRestart checks the embedded store: objects
// written through the Admin API are in Caddy's storage and serve again
// after a restart with the same storage.
func TestObjectsPersistAcrossRestart(t *testing.T) {
	be := newBackend(t, "persisted")
	storage := t.TempDir()
	port := freePort(t)
	cc := caddyConfig{Storage: storage, Apisix: map[string]any{
		"stream_proxy": map[string]any{"tcp": []any{hostPort("127.0.0.1", port)}},
	}}
	first := startCaddy(t, cc)
	first.put(t, "upstreams/u1", upstreamOf(be))
	first.put(t, "stream_routes/1", map[string]any{"upstream_id": "u1"})
	first.Stop()

	second := startCaddy(t, cc)
	code, body, err := second.request(http.MethodGet, "/apisix/admin/stream_routes/1", nil)
	if err != nil || code != http.StatusOK || !strings.Contains(string(body), `"upstream_id":"u1"`) {
		t.Fatalf("GET stream_routes/1 after restart: %d %s %v", code, body, err)
	}
	if got := whoTCP(t, "127.0.0.1", hostPort("127.0.0.1", port)); got != be.Name {
		t.Fatalf("after restart answered by %q, want %q", got, be.Name)
	}
}

// secretsExercise writes an SSL object and a route through the Admin API
// and reads them back, checking that no response holds the private key;
// it returns Caddy's whole output after stopping it.
func secretsExercise(t *testing.T, cc caddyConfig, cert testCert) string {
	t.Helper()
	cc.Apisix = map[string]any{"stream_proxy": map[string]any{"tcp": []any{hostPort("127.0.0.1", freePort(t))}}}
	p := startCaddy(t, cc)
	p.put(t, "ssls/1", map[string]any{"cert": cert.CertPEM, "key": cert.KeyPEM, "snis": []string{"secret.test.com"}})
	p.put(t, "stream_routes/1", map[string]any{"upstream": map[string]any{"nodes": map[string]int{"127.0.0.1:1": 1}}})
	for _, path := range []string{"ssls/1", "ssls", "stream_routes/1"} {
		code, body, err := p.request(http.MethodGet, "/apisix/admin/"+path, nil)
		if err != nil || code != http.StatusOK {
			t.Fatalf("GET %s: %d %s %v", path, code, body, err)
		}
		if strings.Contains(string(body), "PRIVATE KEY") {
			t.Errorf("GET %s returns the private key", path)
		}
	}
	// the key as a query parameter, as APISIX also accepts it
	code, _, _, err := e2e.Admin{Addr: p.admin}.Do(http.MethodGet, "/apisix/admin/stream_routes/1?api_key="+adminKey, "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if code != http.StatusOK {
		t.Fatalf("GET with ?api_key=: %d", code)
	}
	p.Stop()
	return p.Output()
}

// TestPrivateKeysStayOutOfLogs checks that SSL private keys never appear
// in Admin API responses or in Caddy's output, even at DEBUG.
func TestPrivateKeysStayOutOfLogs(t *testing.T) {
	cert := newTestCert(t, "secret.test.com")
	out := secretsExercise(t, caddyConfig{LogLevel: "DEBUG"}, cert)
	if strings.Contains(out, strings.Split(cert.KeyPEM, "\n")[1]) || strings.Contains(out, "PRIVATE KEY") {
		t.Error("the SSL private key appears in Caddy's output")
	}
}

// TestAdminKeyStaysOutOfLogs checks that the admin key sent as X-API-KEY
// never appears in Caddy's output
// (docs/differences.md#secrets-stay-out-of-logs-and-answers). Caddy's admin server logs every request's headers ("received
// request") and redacts only Authorization, Cookie and Set-Cookie; the
// plugin blanks X-API-KEY and api_key in Caddy's default logger, with or
// without a log filter like the one in examples/Caddyfile.
func TestAdminKeyStaysOutOfLogs(t *testing.T) {
	cert := newTestCert(t, "secret.test.com")
	filtered := map[string]any{"logs": map[string]any{"default": map[string]any{
		"level": "DEBUG",
		"encoder": map[string]any{"format": "filter", "wrap": map[string]any{"format": "json"},
			"fields": map[string]any{
				"headers>X-Api-Key": map[string]any{"filter": "replace", "value": "REDACTED"},
				"uri": map[string]any{"filter": "query", "actions": []any{
					map[string]any{"type": "replace", "parameter": "api_key", "value": "REDACTED"}}},
			}},
	}}}
	tests := []struct {
		name     string
		cc       caddyConfig
		redacted bool // the filter must have replaced the key
	}{
		// Caddy's own admin server logs X-Api-Key in clear with its default
		// logging, before any module runs: the README makes the filter
		// part of every example config, and this checks that it works.
		{"examples/Caddyfile log filter at DEBUG", caddyConfig{Logging: filtered}, true},
		// without the filter, the plugin's own redaction of Caddy's default
		// logger (secretlog.go) keeps the key out
		{"plain JSON config at DEBUG, no filter", caddyConfig{LogLevel: "DEBUG"}, false},
		{"plain JSON config at INFO, no filter", caddyConfig{LogLevel: "INFO"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := secretsExercise(t, tc.cc, cert)
			if strings.Contains(out, adminKey) {
				t.Errorf("the admin key appears in Caddy's output")
			}
			if tc.redacted && !strings.Contains(out, `"X-Api-Key":"REDACTED"`) {
				t.Errorf("the log filter did not log the redacted header")
			}
		})
	}
}

// TestFailedReloadKeepsOldConfig checks that a reload that fails (a
// listener of the new config cannot bind) leaves the old config in force:
// its listeners, static objects, fallback_sni and admin keys.
func TestFailedReloadKeepsOldConfig(t *testing.T) {
	oldBe, newBe := newBackend(t, "old-static"), newBackend(t, "new-static")
	// an ordinary listener (no SO_REUSEPORT) holds this port, so binding it fails
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	port, l4port := freePort(t), freePort(t)
	cfg := func(be *backend, sni string, extraTCP []any, apps map[string]any) caddyConfig {
		return caddyConfig{Apps: apps, Apisix: map[string]any{
			"stream_proxy": map[string]any{"tcp": append([]any{hostPort("127.0.0.1", port)}, extraTCP...)},
			"fallback_sni": sni,
			"upstreams":    []any{map[string]any{"id": "su", "nodes": nodes(be)}},
			"stream_routes": []any{
				map[string]any{"id": "s1", "sni": sni, "upstream_id": "su"},
			},
		}}
	}
	p := startCaddy(t, cfg(oldBe, "old.example", nil, nil))
	addr := hostPort("127.0.0.1", port)
	if got := whoTCP(t, "127.0.0.1", addr); got != oldBe.Name {
		t.Fatalf("before reload: answered by %q", got)
	}
	tests := []struct {
		name string
		cc   caddyConfig
	}{
		{"apisix listener cannot bind", cfg(newBe, "new.example", []any{hostPort("127.0.0.1", busyPort)}, nil)},
		{"layer4 server cannot bind", cfg(newBe, "new.example", nil, map[string]any{"layer4": map[string]any{"servers": map[string]any{
			"busy": map[string]any{"listen": []string{hostPort("127.0.0.1", busyPort)}, "routes": []any{}},
			"ok":   map[string]any{"listen": []string{hostPort("127.0.0.1", l4port)}, "routes": []any{}},
		}}})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.cc.Storage == "" {
				tc.cc.Storage = filepath.Join(p.dir, "storage")
			}
			code, body, err := p.request(http.MethodPost, "/load", p.config(tc.cc))
			if err != nil {
				t.Fatal(err)
			}
			if code == http.StatusOK {
				t.Fatalf("the reload succeeded; the test needs it to fail")
			}
			if got := whoTCP(t, "127.0.0.1", addr); got != oldBe.Name {
				t.Fatalf("after the failed reload (%d %s): answered by %q, want the old static route's %q", code, strings.TrimSpace(string(body)), got, oldBe.Name)
			}
			code, body, err = p.request(http.MethodGet, "/apisix/admin/stream_routes/s1", nil)
			if err != nil || code != http.StatusOK || !strings.Contains(string(body), "old.example") {
				t.Fatalf("GET the static route after the failed reload: %d %s %v", code, body, err)
			}
		})
	}
}

// TestStaticObjects checks the config's static objects through the Admin
// API: listed, read-only, and usable by routes written through the API.
func TestStaticObjects(t *testing.T) {
	be := newBackend(t, "static-upstream")
	port := freePort(t)
	p := startCaddy(t, caddyConfig{Apisix: map[string]any{
		"stream_proxy":  map[string]any{"tcp": []any{hostPort("127.0.0.1", port)}},
		"upstreams":     []any{map[string]any{"id": "static-up", "type": "roundrobin", "nodes": nodes(be)}},
		"stream_routes": []any{map[string]any{"id": "static-route", "remote_addr": "127.0.0.2", "upstream_id": "static-up"}},
	}})
	addr := hostPort("127.0.0.1", port)
	if got := whoTCP(t, "127.0.0.2", addr); got != be.Name {
		t.Fatalf("static route: answered by %q", got)
	}
	code, body, err := p.request(http.MethodPut, "/apisix/admin/stream_routes/static-route", map[string]any{"upstream_id": "static-up"})
	if err != nil || code != http.StatusBadRequest || !strings.Contains(string(body), "read-only") {
		t.Fatalf("PUT over a static route: %d %s %v; want 400 read-only", code, body, err)
	}
	code, body, err = p.request(http.MethodDelete, "/apisix/admin/upstreams/static-up", nil)
	if err != nil || code != http.StatusBadRequest {
		t.Fatalf("DELETE a static upstream: %d %s %v; want 400", code, body, err)
	}
	p.put(t, "stream_routes/api-route", map[string]any{"remote_addr": "127.0.0.3", "upstream_id": "static-up"})
	if got := whoTCP(t, "127.0.0.3", addr); got != be.Name {
		t.Fatalf("API route on a static upstream: answered by %q", got)
	}
	code, body, err = p.request(http.MethodGet, "/apisix/admin/stream_routes", nil)
	if err != nil || code != http.StatusOK || !strings.Contains(string(body), `"total":2`) {
		t.Fatalf("list: %d %s %v; want both routes", code, body, err)
	}
}

// TestExampleJSON runs examples/caddy.json as shipped, with its fixed
// ports moved to free ones and its node to a test backend: the static
// route serves, and a route added with the document's curl body works.
func TestExampleJSON(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(moduleRoot, "examples", "caddy.json"))
	if err != nil {
		t.Fatal(err)
	}
	be := newBackend(t, "example-node")
	text := string(raw)
	ports := map[string]int{}
	for _, fixed := range []string{"9180", "9100", "9101", "9200", "9211"} {
		ports[fixed] = freePort(t)
	}
	text = strings.ReplaceAll(text, "127.0.0.1:1995", be.Addr())
	for fixed, free := range ports {
		// whole numbers only: the backend's own port may contain "9180"
		text = regexp.MustCompile(`\b`+fixed+`\b`).ReplaceAllString(text, strconv.Itoa(free))
	}
	var cfg map[string]any
	if err := json.Unmarshal([]byte(text), &cfg); err != nil {
		t.Fatalf("examples/caddy.json: %v", err)
	}
	if strings.Contains(text, "1995") {
		t.Fatal("examples/caddy.json: a node address was not replaced")
	}
	dir := t.TempDir()
	cfg["storage"] = map[string]any{"module": "file_system", "root": filepath.Join(dir, "storage")}
	path := writeJSON(t, dir, "caddy.json", cfg)
	p := startProcess(t, path, hostPort("127.0.0.1", ports["9180"]))
	if got := whoTCP(t, "127.0.0.1", hostPort("127.0.0.1", ports["9101"])); got != be.Name {
		t.Fatalf("static route on 127.0.0.1:9101: answered by %q", got)
	}
	if got := whoTCP(t, "127.0.0.1", hostPort("127.0.0.1", ports["9100"])); got != "" {
		t.Fatalf("port 9100 without a route: answered by %q", got)
	}
	p.put(t, "stream_routes/1", map[string]any{"server_port": ports["9100"], "upstream": upstreamOf(be)})
	if got := whoTCP(t, "127.0.0.1", hostPort("127.0.0.1", ports["9100"])); got != be.Name {
		t.Fatalf("port 9100 after PUT: answered by %q", got)
	}
	p.put(t, "stream_routes/2", map[string]any{"server_port": ports["9211"], "upstream": upstreamOf(be)})
	if got := whoUDP(t, "127.0.0.1", hostPort("127.0.0.1", ports["9211"])); got != be.Name {
		t.Fatalf("udp 127.0.0.1:9211: answered by %q", got)
	}
}
