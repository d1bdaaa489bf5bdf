//go:build linux

package usere2e

import (
	"fmt"
	"testing"
)

// TestStartupLogListsAddresses reads the one INFO line that says the
// stream proxy started: it names every listener address.
func TestStartupLogListsAddresses(t *testing.T) {
	n := startNode(t, nil)
	n.waitLog(`"level":"info"`, `"msg":"apisix stream proxy started"`, `"tcp":1`, `"udp":1`,
		fmt.Sprintf(`"listen":["tcp/127.0.0.1:%d","udp/127.0.0.1:%d"]`, n.stream, n.udp))
}

// TestStaticRouteWarningsAtStart declares routes in the config that a
// user gets wrong: the node names them in WARN lines when it starts.
func TestStaticRouteWarningsAtStart(t *testing.T) {
	up := map[string]any{"nodes": map[string]any{"127.0.0.1:1": 1}}
	n := startNode(t, map[string]any{"stream_routes": []any{
		map[string]any{"id": "all", "upstream": up},
		map[string]any{"id": "db", "server_port": 3306, "upstream": up},
	}})
	n.waitLog(`"level":"warn"`, "stream route db is shadowed by stream route all on every connection it could match")
	n.waitLog(`"level":"warn"`, "stream route db can never match: no stream_proxy listener is on server_port 3306")
}
