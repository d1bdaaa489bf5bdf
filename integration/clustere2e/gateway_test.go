//go:build linux

package clustere2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// gateway is one Caddy process with the apisix app.
type gateway struct {
	t      testing.TB
	name   string
	admin  e2e.Admin
	stream string // host:port of the TCP stream listener
	tls    string // host:port of the TLS-terminating stream listener
	proc   *e2e.Proc
}

// startGateway starts a node with the etcd block etcd (nil: the embedded
// store) and extra app fields, and waits for its Admin API.
func startGateway(t testing.TB, name string, etcd map[string]any, fields map[string]any) *gateway {
	t.Helper()
	dir := t.TempDir()
	ports := e2e.FreePorts(t, 3)
	g := &gateway{t: t, name: name,
		admin:  e2e.Admin{Addr: e2e.HostPort("127.0.0.1", ports[0])},
		stream: e2e.HostPort("127.0.0.1", ports[1]),
		tls:    e2e.HostPort("127.0.0.1", ports[2])}
	app := map[string]any{
		"stream_proxy": map[string]any{"tcp": []any{g.stream, map[string]any{"addr": g.tls, "tls": true}}},
	}
	if etcd != nil {
		app["etcd"] = etcd
	}
	for k, v := range fields {
		app[k] = v
	}
	cfg := e2e.CaddyConfig(g.admin.Addr, dir+"/storage", e2e.LogLevel("INFO"),
		map[string]any{"apisix": e2e.ApisixApp(app)})
	path := e2e.WriteJSON(t, dir, "caddy.json", cfg)
	g.proc = e2e.Start(t, name, e2e.CaddyCmd(caddyBin, path, dir), e2e.Options{})
	g.proc.WaitReady(30*time.Second, e2e.ApisixReady(g.admin.Addr, e2e.AdminKey))
	return g
}

// etcdConf is the etcd block for hosts with a short timeout, so outage
// tests see errors in seconds.
func etcdConf(hosts []string, extra map[string]any) map[string]any {
	m := map[string]any{"host": hosts, "prefix": "/apisix", "timeout": "3s"}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// do calls the Admin API and decodes a JSON answer into a map.
func (g *gateway) do(method, path, body string) (int, map[string]any) {
	g.t.Helper()
	var b []byte
	if body != "" {
		b = []byte(body)
	}
	code, _, resp, err := g.admin.Do(method, path, e2e.AdminKey, b, nil)
	if err != nil {
		g.t.Fatalf("%s %s %s: %v", g.name, method, path, err)
	}
	var m map[string]any
	_ = json.Unmarshal(resp, &m)
	if m == nil {
		m = map[string]any{"raw": string(resp)}
	}
	return code, m
}

// must is do that fails the test unless the status is want.
func (g *gateway) must(want int, method, path, body string) map[string]any {
	g.t.Helper()
	code, m := g.do(method, path, body)
	if code != want {
		g.t.Fatalf("%s %s %s = %d %v, want %d", g.name, method, path, code, m, want)
	}
	return m
}

// cluster is GET /v1/cluster.
func (g *gateway) clusterView() map[string]any {
	g.t.Helper()
	code, _, body, err := g.admin.Do(http.MethodGet, "/v1/cluster", "", nil, nil)
	if err != nil || code != 200 {
		g.t.Fatalf("/v1/cluster: %d %v %s", code, err, body)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		g.t.Fatal(err)
	}
	return m
}

// ask opens a connection to the stream listener and returns the first
// line the upstream answers, or "" when the gateway closes it (no route).
func (g *gateway) ask() string {
	g.t.Helper()
	c, err := net.DialTimeout("tcp", g.stream, 2*time.Second)
	if err != nil {
		g.t.Fatalf("%s: dial: %v", g.name, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, "hi\n"); err != nil {
		return ""
	}
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line)
}

// eventually polls cond every 20 ms for up to 15 s.
func eventually(t testing.TB, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ok, got := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %s after 15s", what, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// answers waits until a connection to g gets want.
func (g *gateway) answers(want string) {
	g.t.Helper()
	eventually(g.t, g.name+" answers "+want, func() (bool, string) {
		got := g.ask()
		return got == want, fmt.Sprintf("%q", got)
	})
}

// backend is a TCP server that answers every line with its name, and
// echoes after that.
func backend(t testing.TB, name string) string {
	t.Helper()
	return e2e.ServeTCP(t, func(c net.Conn) {
		defer c.Close()
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if _, err := io.WriteString(c, name+" "+strings.TrimSpace(line)+"\n"); err != nil {
				return
			}
		}
	})
}

// upstreamBody is an upstream with one node.
func upstreamBody(addr string) string {
	return fmt.Sprintf(`{"type":"roundrobin","nodes":{%q:1}}`, addr)
}

// metrics is the node's Prometheus text (Caddy's admin /metrics).
func (g *gateway) metrics() string {
	g.t.Helper()
	_, _, body, err := g.admin.Do("GET", "/metrics", "", nil, nil)
	if err != nil {
		g.t.Fatal(err)
	}
	return string(body)
}

// grep returns the lines of s that contain sub.
func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
