//go:build linux

package tlse2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// caddyBin is the binary built once by TestMain.
var caddyBin string

// TestMain builds the caddy binary (./cmd/caddy) once for every test.
func TestMain(m *testing.M) {
	os.Exit(e2e.Main(m, "tlse2e", func(bin, _ string) error {
		caddyBin = bin
		return nil
	}))
}

// freePorts reserves n distinct ports free on loopback (e2e.FreePorts).
var freePorts = e2e.FreePorts

// caddy is one running Caddy process.
type caddy struct {
	*e2e.Proc
	t     testing.TB
	admin string // admin endpoint, "127.0.0.1:port"
}

// startCaddy runs the built binary with the apisix app config app (the
// value of apps.apisix) and waits until its Admin API answers. The process
// is stopped by PID when the test ends; its log is printed if the test
// failed. debug sets the log level to DEBUG; env ("K=V") is added to the
// process environment.
func startCaddy(t testing.TB, app map[string]any, debug bool, env ...string) *caddy {
	t.Helper()
	return startCaddyAt(t, "", app, debug, env...)
}

// startCaddyAt is startCaddy with the file_system storage at storage
// (a new temporary directory when empty), to restart on the same store.
func startCaddyAt(t testing.TB, storage string, app map[string]any, debug bool, env ...string) *caddy {
	t.Helper()
	return startCaddyApps(t, storage, map[string]any{"apisix": app}, debug, env...)
}

// startCaddyApps is startCaddyAt with the whole apps object; it must hold
// an apisix app, whose Admin API tells when the process is ready.
func startCaddyApps(t testing.TB, storage string, apps map[string]any, debug bool, env ...string) *caddy {
	t.Helper()
	tmp := t.TempDir()
	if storage == "" {
		storage = filepath.Join(tmp, "storage")
	}
	admin := addr(freePorts(t, 1)[0])
	level := "INFO"
	if debug {
		level = "DEBUG"
	}
	cfgPath := e2e.WriteJSON(t, tmp, "caddy.json", e2e.CaddyConfig(admin, storage, e2e.LogLevel(level), apps))
	c := &caddy{t: t, admin: admin}
	c.Proc = e2e.Start(t, "caddy", e2e.CaddyCmd(caddyBin, cfgPath, tmp, env...), e2e.Options{})
	c.WaitReady(20*time.Second, e2e.ApisixReady(admin, ""))
	return c
}

// adminDo sends one Admin API request; body, when not nil, is sent as
// JSON. It returns the status (0 on transport errors) and the body.
func (c *caddy) adminDo(method, path string, body any) (int, string) {
	var raw []byte
	var hdr map[string]string
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err.Error()
		}
		raw, hdr = b, e2e.JSONContent
	}
	status, _, resp, err := e2e.Admin{Addr: c.admin, KeepAlive: true}.Do(method, path, "", raw, hdr)
	if err != nil {
		return 0, err.Error()
	}
	return status, string(resp)
}

// mustAdmin is adminDo failing the test on any status but those in want.
func (c *caddy) mustAdmin(method, path string, body any, want ...int) {
	c.t.Helper()
	status, resp := c.adminDo(method, path, body)
	for _, w := range want {
		if status == w {
			return
		}
	}
	c.t.Fatalf("%s %s: status %d, want %v: %s", method, path, status, want, resp)
}

// addr is the loopback address of a port.
func addr(port int) string { return e2e.HostPort("127.0.0.1", port) }

// obj is a JSON object literal.
type obj = map[string]any

// upstream is an inline roundrobin upstream to one node; extra fields
// (scheme, tls, ...) are merged in.
func upstream(node string, extra obj) obj {
	u := obj{"type": "roundrobin", "nodes": obj{node: 1}}
	for k, v := range extra {
		u[k] = v
	}
	return u
}

// tcpEntry is a stream_proxy.tcp object entry on a loopback port.
func tcpEntry(port int, opts ...string) obj {
	e := obj{"addr": addr(port)}
	for _, o := range opts {
		e[o] = true
	}
	return e
}

// sslObj is a server-type SSL object for names, from c's certificate.
func sslObj(id string, c *e2e.Cert, names ...string) obj {
	o := obj{"id": id, "cert": c.CertPEM, "key": c.KeyPEM}
	if len(names) == 1 {
		o["sni"] = names[0]
	} else {
		o["snis"] = names
	}
	return o
}

// list turns objects into a JSON array value.
func list(objs ...obj) []obj { return objs }

// mustContain fails unless s contains every sub.
func mustContain(t testing.TB, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Fatalf("missing %q in:\n%s", sub, s)
		}
	}
}
