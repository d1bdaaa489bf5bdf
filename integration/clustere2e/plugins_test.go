//go:build linux

package clustere2e

import (
	"context"
	"fmt"
	"testing"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// TestPluginListOnDataPlane: a data plane runs only the stream plugins
// that <prefix>/plugins enables with "stream": true, as APISIX's nodes
// without the Admin API do (apisix/plugin.lua init_plugins_syncer), and
// follows the key when it changes; a traditional node runs its own list
// (every built-in plugin). No node of ours writes the key.
func TestPluginListOnDataPlane(t *testing.T) {
	ec := e2e.StartEtcd(t, 1, "http")
	b1 := backend(t, "b1")
	put(t, ec, "/apisix/plugins", `[{"name":"jwt-auth"},{"name":"limit-conn","stream":true}]`)
	tr := startGateway(t, "TR", etcdConf(ec.Hosts(), nil), nil)
	dp := startGateway(t, "DP", etcdConf(ec.Hosts(), nil), map[string]any{"role": "data_plane"})
	tr.must(201, "PUT", "/apisix/admin/upstreams/u1", upstreamBody(b1))
	tr.must(201, "PUT", "/apisix/admin/stream_routes/r1",
		`{"upstream_id":"u1","plugins":{"ip-restriction":{"blacklist":["127.0.0.0/8"]}}}`)
	tr.must(201, "PUT", "/apisix/admin/stream_routes/marker", `{"upstream_id":"u1","server_port":1}`)
	eventually(t, "DP has the routes", func() (bool, string) {
		code, _ := dp.do("GET", "/apisix/admin/stream_routes/marker", "")
		return code == 200, fmt.Sprint(code)
	})
	// ip-restriction is not in the cluster's stream list: the data plane
	// skips it, the traditional node runs it
	dp.answers("b1 hi")
	if got := tr.ask(); got != "" {
		t.Fatalf("TR runs every built-in plugin: the blacklisted client got %q", got)
	}
	rev := put(t, ec, "/apisix/plugins", `[{"name":"ip-restriction","stream":true},{"name":"limit-conn","stream":true}]`)
	eventually(t, "DP follows the new plugin list", func() (bool, string) {
		got := dp.ask()
		return got == "", fmt.Sprintf("%q", got)
	})
	resp, err := ec.Client().Get(context.Background(), "/apisix/plugins")
	if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].ModRevision != rev {
		t.Fatalf("/apisix/plugins was written by a node: %v %v", resp, err)
	}
}
