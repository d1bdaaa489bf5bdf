//go:build linux

package dashboarde2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// Keys of every test config (the seed document's) and the bounds of the
// waits: the dashboard polls every 2 s and health checks run every
// second, so positive answers come well within uiWait; startWait covers a
// cold start with 10,000 routes.
const (
	adminKey  = e2e.AdminKey
	viewerKey = e2e.ViewerKey
	uiWait    = 20 * time.Second
	startWait = 60 * time.Second
)

// gateway is one running Caddy with the apisix app.
type gateway struct {
	admin  string // host:port of Caddy's admin endpoint
	stream string // host:port of the TCP stream listener
	proc   *e2e.Proc
}

// baseURL is the dashboard's address.
func (g *gateway) baseURL() string { return "http://" + g.admin + "/apisix/dashboard/" }

// startGateway runs Caddy with a stream listener on a free port, the admin
// and viewer keys, allow_admin 127.0.0.1/32 and extra app fields. The
// admin endpoint's origins add "" beside its own address: a browser's
// first navigation carries neither Origin nor Referer, which Caddy's
// admin endpoint refuses otherwise (README "Dashboard").
func startGateway(t testing.TB, extra map[string]any) *gateway {
	t.Helper()
	dir := t.TempDir()
	ports := e2e.FreePorts(t, 2)
	g := &gateway{admin: e2e.HostPort("127.0.0.1", ports[0]), stream: e2e.HostPort("127.0.0.1", ports[1])}
	fields := map[string]any{
		"stream_proxy": map[string]any{"tcp": []any{g.stream}},
		"admin_key": []any{
			map[string]any{"name": "admin", "key": adminKey, "role": "admin"},
			map[string]any{"name": "viewer", "key": viewerKey, "role": "viewer"},
		},
		"allow_admin": []string{"127.0.0.1/32"},
	}
	for k, v := range extra {
		fields[k] = v
	}
	cfg := e2e.CaddyConfig(g.admin, filepath.Join(dir, "storage"), e2e.LogLevel("WARN"),
		map[string]any{"apisix": e2e.ApisixApp(fields)})
	cfg["admin"].(map[string]any)["origins"] = []string{g.admin, ""}
	path := e2e.WriteJSON(t, dir, "caddy.json", cfg)
	g.proc = e2e.Start(t, "caddy", e2e.CaddyCmd(caddyBin, path, dir), e2e.Options{})
	g.proc.WaitReady(startWait, e2e.ApisixReady(g.admin, adminKey))
	return g
}

// api calls the Admin API with the admin key and fails the test unless
// the status is want; it returns the decoded body.
func (g *gateway) api(t testing.TB, method, path string, body any, want int) map[string]any {
	t.Helper()
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	code, _, out, err := e2e.Admin{Addr: g.admin}.Do(method, path, adminKey, raw, nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if code != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, code, want, out)
	}
	var v map[string]any
	_ = json.Unmarshal(out, &v)
	return v
}

// status is the Admin API status of a GET with the admin key.
func (g *gateway) status(t testing.TB, path string) int {
	t.Helper()
	code, _, _, err := e2e.Admin{Addr: g.admin}.Do(http.MethodGet, path, adminKey, nil, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return code
}

// backend is an echo server that a test can stop mid-way: Stop closes
// its listener and every open connection, so health checks fail.
type backend struct {
	ln    net.Listener
	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
	once  sync.Once
}

func newBackend(t testing.TB) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{ln: ln, conns: map[net.Conn]bool{}}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns[c] = true
			b.mu.Unlock()
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				_, _ = io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	t.Cleanup(b.Stop)
	return b
}

func (b *backend) Addr() string { return b.ln.Addr().String() }

func (b *backend) Stop() {
	b.once.Do(func() {
		b.ln.Close()
		b.mu.Lock()
		for c := range b.conns {
			c.Close()
		}
		b.mu.Unlock()
		b.wg.Wait()
	})
}

// clients opens n TCP connections to addr, checks each echoes a line, and
// closes them when the test ends.
func clients(t testing.TB, addr string, n int) []net.Conn {
	t.Helper()
	var out []net.Conn
	for i := range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		msg := fmt.Sprintf("hello %d\n", i)
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatalf("client %d write: %v", i, err)
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
			t.Fatalf("client %d echo: %q, %v", i, buf, err)
		}
		_ = c.SetDeadline(time.Time{})
		out = append(out, c)
	}
	return out
}

// healthChecks are tcp active checks that decide within a second or two.
var healthChecks = map[string]any{"active": map[string]any{"type": "tcp",
	"healthy":   map[string]any{"interval": 1, "successes": 1},
	"unhealthy": map[string]any{"interval": 1, "tcp_failures": 1}}}
