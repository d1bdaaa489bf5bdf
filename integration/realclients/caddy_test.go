//go:build linux

package realclients

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// The Admin API address and key of the documents (seed and README).
const (
	adminAddr = "127.0.0.1:9180"
	adminKey  = e2e.AdminKey
)

// obj is a JSON object literal.
type obj = map[string]any

// caddy is one running Caddy process in a namespace.
type caddy struct {
	*e2e.Proc
	ns *netns
}

// startCaddy runs the built binary in the namespace with the apisix app
// app (admin key and allow_admin added), the admin endpoint on
// 127.0.0.1:9180, and waits until the Admin API answers.
func (n *netns) startCaddy(app obj) *caddy {
	n.t.Helper()
	dir := n.t.TempDir()
	cfg := e2e.CaddyConfig(adminAddr, filepath.Join(dir, "storage"), e2e.LogLevel("DEBUG"), obj{"apisix": e2e.ApisixApp(app)})
	path := e2e.WriteJSON(n.t, dir, "caddy.json", cfg)
	return n.runCaddy(caddyBin, "run", "--config", path)
}

// runCaddy starts a caddy binary with args and waits for its Admin API.
func (n *netns) runCaddy(bin string, args ...string) *caddy {
	n.t.Helper()
	c := &caddy{Proc: n.start(bin, args...), ns: n}
	c.WaitReady(startWait, func() error {
		// through the real curl, like every Admin API call of this package
		code, body, err := c.admin("GET", "/apisix/admin/upstreams", "")
		if err != nil {
			return err
		}
		if code != 200 {
			return fmt.Errorf("admin API: %d %s", code, body)
		}
		return nil
	})
	return c
}

// admin sends one Admin API request with the real curl and returns the
// status code and body.
func (c *caddy) admin(method, path, body string) (int, string, error) {
	args := []string{"-sS", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}",
		"-X", method, "-H", "X-API-KEY: " + adminKey}
	if body != "" {
		args = append(args, "-H", "Content-Type: application/json", "--data-binary", "@-")
	}
	args = append(args, "http://"+adminAddr+path)
	r := c.ns.run(body, "curl", args...)
	if r.err != nil {
		return 0, "", fmt.Errorf("curl %s %s: %v: %s", method, path, r.err, r.stderr)
	}
	i := strings.LastIndexByte(r.stdout, '\n')
	code, err := strconv.Atoi(r.stdout[i+1:])
	if err != nil {
		return 0, "", fmt.Errorf("curl %s %s: no status in %q", method, path, r.stdout)
	}
	return code, r.stdout[:i], nil
}

// put PUTs an object (marshalled to JSON) and fails the test unless the
// Admin API stored it.
func (c *caddy) put(t testing.TB, path string, v any) {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	code, body, err := c.admin("PUT", "/apisix/admin/"+path, string(raw))
	if err != nil {
		t.Fatal(err)
	}
	if code != 200 && code != 201 {
		t.Fatalf("PUT %s: %d %s", path, code, body)
	}
}

// upstream is an inline roundrobin upstream over nodes ("host:port").
func upstream(nodes ...string) obj {
	m := obj{}
	for _, n := range nodes {
		m[n] = 1
	}
	return obj{"type": "roundrobin", "nodes": m}
}
