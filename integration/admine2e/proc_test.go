//go:build linux

package admine2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// Keys of every test config: the seed document's admin key and a viewer.
const (
	adminKey  = e2e.AdminKey
	viewerKey = e2e.ViewerKey
)

// Bounds of the waits in this package. Positive answers on loopback come
// well within answerWait; startWait covers a cold start with 10,000 routes.
const (
	answerWait = 5 * time.Second
	startWait  = 60 * time.Second
	stopWait   = 10 * time.Second
)

// instance is one Caddy config on disk: its directory (storage root, HOME)
// and config file. Several processes may run it one after the other, which
// is how restarts keep their storage.
type instance struct {
	t      testing.TB
	dir    string
	config string
	admin  string   // host:port of the admin endpoint
	env    []string // extra environment ("K=V") of its processes
}

// caddyProc is one running Caddy process.
type caddyProc struct {
	*e2e.Proc
	inst *instance
}

// newInstance writes cfg (a Caddy JSON config without admin and storage,
// which it adds) into a new temp dir. admin "" picks a free loopback port.
func newInstance(t testing.TB, admin string, cfg map[string]any) *instance {
	t.Helper()
	dir := t.TempDir()
	if admin == "" {
		admin = hostPort("127.0.0.1", freePort(t))
	}
	logging, _ := cfg["logging"].(map[string]any)
	if logging == nil {
		logging = e2e.LogLevel("INFO")
	}
	apps, _ := cfg["apps"].(map[string]any)
	full := e2e.CaddyConfig(admin, filepath.Join(dir, "storage"), logging, apps)
	for k, v := range cfg {
		if _, ok := full[k]; !ok {
			full[k] = v
		}
	}
	path := e2e.WriteJSON(t, dir, "caddy.json", full)
	return &instance{t: t, dir: dir, config: path, admin: admin}
}

// storageRoot is where the instance's Caddy storage lives.
func (in *instance) storageRoot() string { return filepath.Join(in.dir, "storage") }

// testEnv is e2e.Env with CURL_HOME at dir too, where curl reads its
// .curlrc.
func testEnv(dir string) []string { return e2e.Env(dir, "CURL_HOME="+dir) }

// start runs caddy on the instance's config and waits until the apisix
// app answers on the Admin API. The process is stopped by PID when the
// test ends.
func (in *instance) start() *caddyProc {
	in.t.Helper()
	cmd := e2e.CaddyCmd(caddyBin, in.config, in.dir, append([]string{"CURL_HOME=" + in.dir}, in.env...)...)
	p := &caddyProc{Proc: e2e.Start(in.t, "caddy", cmd, e2e.Options{StopWait: stopWait}), inst: in}
	p.WaitReady(startWait, e2e.ApisixReady(in.admin, adminKey))
	return p
}

// call sends one Admin API request. key "" sends none; hdr adds headers
// (a "Host" entry sets the Host header).
func (p *caddyProc) call(method, path, key, body string, hdr map[string]string) (int, string, error) {
	st, _, b, err := p.callH(method, path, key, body, hdr)
	return st, b, err
}

// callH is call that also returns the response headers.
func (p *caddyProc) callH(method, path, key, body string, hdr map[string]string) (int, http.Header, string, error) {
	var raw []byte
	if body != "" {
		raw = []byte(body)
	}
	st, h, b, err := e2e.Admin{Addr: p.inst.admin, KeepAlive: true}.Do(method, path, key, raw, hdr)
	return st, h, string(b), err
}

// must sends a request with the admin key and fails the test unless the
// status is want; it returns the body.
func (p *caddyProc) must(t testing.TB, method, path, body string, want int) string {
	t.Helper()
	st, b, err := p.call(method, path, adminKey, body, nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if st != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, st, want, b)
	}
	return b
}

// Shared helpers under this package's names.
var (
	freePort = e2e.FreePort
	hostPort = e2e.HostPort
)

// apisixApp is the apisix app config every test starts from: the admin and
// viewer keys, loopback-only admin clients, and the given fields.
func apisixApp(fields map[string]any) map[string]any {
	app := map[string]any{
		"admin_key": []any{
			map[string]any{"name": "admin", "key": adminKey, "role": "admin"},
			map[string]any{"name": "viewer", "key": viewerKey, "role": "viewer"},
		},
		"allow_admin": []string{"127.0.0.1", "::1"},
	}
	for k, v := range fields {
		app[k] = v
	}
	return app
}

// appsConfig wraps an apisix app into a Caddy config.
func appsConfig(app map[string]any) map[string]any {
	return map[string]any{"apps": map[string]any{"apisix": app}}
}

// mustJSON decodes an Admin API body or fails the test.
func mustJSON(t testing.TB, body string) map[string]any {
	t.Helper()
	var v map[string]any
	dec := json.NewDecoder(strings.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("body is not a JSON object: %v: %q", err, body)
	}
	return v
}

// answer formats a status and body for failure messages.
func answer(st int, body string) string { return fmt.Sprintf("%d %q", st, body) }
