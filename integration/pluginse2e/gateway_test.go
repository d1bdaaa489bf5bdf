package pluginse2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// gateway is one Caddy process with the apisix app: the Admin API on a
// free loopback port and stream_proxy listeners.
type gateway struct {
	proc     *e2e.Proc
	admin    string
	ports    []int // the stream_proxy TCP listeners
	udpPorts []int // the stream_proxy UDP listeners
}

// startGateway starts Caddy with n TCP stream_proxy listeners on
// loopback and waits for the Admin API.
func startGateway(t *testing.T, n int) *gateway { return startGatewayUDP(t, n, 0) }

// startGatewayUDP is startGateway with udp UDP listeners too, and env
// ("K=V") added to Caddy's environment.
func startGatewayUDP(t *testing.T, n, udp int, env ...string) *gateway {
	t.Helper()
	dir := t.TempDir()
	ports := e2e.FreePorts(t, n+udp+1)
	g := &gateway{admin: e2e.HostPort("127.0.0.1", ports[0]), ports: ports[1 : n+1], udpPorts: ports[n+1:]}
	listeners := map[string]any{}
	for _, l := range []struct {
		network string
		ports   []int
	}{{"tcp", g.ports}, {"udp", g.udpPorts}} {
		var addrs []any
		for _, p := range l.ports {
			addrs = append(addrs, e2e.HostPort("127.0.0.1", p))
		}
		if addrs != nil {
			listeners[l.network] = addrs
		}
	}
	app := e2e.ApisixApp(map[string]any{"stream_proxy": listeners})
	cfg := e2e.CaddyConfig(g.admin, dir+"/storage", e2e.LogLevel("DEBUG"), map[string]any{"apisix": app})
	path := e2e.WriteJSON(t, dir, "caddy.json", cfg)
	g.proc = e2e.Start(t, "caddy", e2e.CaddyCmd(caddyBin, path, dir, env...), e2e.Options{})
	g.proc.WaitReady(60*time.Second, e2e.ApisixReady(g.admin, e2e.AdminKey))
	return g
}

// do sends an Admin API request with the admin key.
func (g *gateway) do(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	var raw []byte
	if body != "" {
		raw = []byte(body)
	}
	st, _, b, err := e2e.Admin{Addr: g.admin}.Do(method, path, e2e.AdminKey, raw, e2e.JSONContent)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return st, string(b)
}

// must is do that fails the test unless the status is 200 or 201.
func (g *gateway) must(t *testing.T, method, path, body string) {
	t.Helper()
	if st, b := g.do(t, method, path, body); st != http.StatusOK && st != http.StatusCreated {
		t.Fatalf("%s %s: %d %s", method, path, st, b)
	}
}

// waitLog waits until the gateway's output holds s.
func (g *gateway) waitLog(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(g.proc.Output(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("gateway never logged %q", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
