//go:build linux

package pluginse2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// gateway is one Caddy process with the apisix app: the Admin API on a
// free loopback port, stream_proxy listeners, and layer4 servers of the
// user's own that hand every connection to the apisix dispatcher.
type gateway struct {
	proc     *e2e.Proc
	admin    string
	ports    []int // the stream_proxy TCP listeners
	udpPorts []int // the stream_proxy UDP listeners
	l4Ports  []int // the layer4 servers' TCP listeners
}

// gatewayOpts say what startGatewayWith starts.
type gatewayOpts struct {
	tcp, udp int      // stream_proxy listeners
	layer4   int      // layer4 servers with the apisix handler
	env      []string // added to Caddy's environment ("K=V")
}

// startGateway starts Caddy with n TCP stream_proxy listeners on
// loopback and waits for the Admin API.
func startGateway(t *testing.T, n int) *gateway { return startGatewayWith(t, gatewayOpts{tcp: n}) }

// startGatewayWith starts Caddy as o says and waits for the Admin API.
func startGatewayWith(t *testing.T, o gatewayOpts) *gateway {
	t.Helper()
	dir := t.TempDir()
	ports := e2e.FreePorts(t, 1+o.tcp+o.udp+o.layer4)
	g := &gateway{admin: e2e.HostPort("127.0.0.1", ports[0]), ports: ports[1 : 1+o.tcp],
		udpPorts: ports[1+o.tcp : 1+o.tcp+o.udp], l4Ports: ports[1+o.tcp+o.udp:]}
	addrs := func(ports []int) []any {
		var a []any
		for _, p := range ports {
			a = append(a, e2e.HostPort("127.0.0.1", p))
		}
		return a
	}
	listeners := map[string]any{}
	if o.tcp > 0 {
		listeners["tcp"] = addrs(g.ports)
	}
	if o.udp > 0 {
		listeners["udp"] = addrs(g.udpPorts)
	}
	apps := map[string]any{"apisix": e2e.ApisixApp(map[string]any{"stream_proxy": listeners})}
	if o.layer4 > 0 {
		servers := map[string]any{}
		for i, a := range addrs(g.l4Ports) {
			servers[fmt.Sprintf("own%d", i)] = map[string]any{"listen": []any{a},
				"routes": []any{map[string]any{"handle": []any{map[string]any{"handler": "apisix"}}}}}
		}
		apps["layer4"] = map[string]any{"servers": servers}
	}
	cfg := e2e.CaddyConfig(g.admin, dir+"/storage", e2e.LogLevel("DEBUG"), apps)
	path := e2e.WriteJSON(t, dir, "caddy.json", cfg)
	g.proc = e2e.Start(t, "caddy", e2e.CaddyCmd(caddyBin, path, dir, o.env...), e2e.Options{})
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
