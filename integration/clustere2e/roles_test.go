//go:build linux

package clustere2e

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// TestRoles: a control plane serves the Admin API and binds no stream
// listener; a data plane serves what it writes. A node started while etcd
// is down starts empty (nothing stale), answers writes with 503, and
// catches up once etcd comes up, without a restart. ttl puts an object on
// a lease: it expires on every node. PATCH updates in place.
func TestRoles(t *testing.T) {
	ec := e2e.NewEtcd(t, 1, "http")
	early := startGateway(t, "early", etcdConf(ec.Hosts(), nil), nil)
	if e := early.clusterView()["etcd"].(map[string]any); e["connected"] != false {
		t.Fatalf("node without etcd: %v", e)
	}
	code, body := early.do("PUT", "/apisix/admin/upstreams/u0", upstreamBody("127.0.0.1:1"))
	if code != 503 {
		t.Fatalf("write before etcd is up = %d %v", code, body)
	}
	early.must(200, "GET", "/apisix/admin/upstreams", "")
	ec.StartAll()
	ec.WaitHealthy()

	b1 := backend(t, "b1")
	cp := startGateway(t, "CP", etcdConf(ec.Hosts(), nil), map[string]any{"role": "control_plane"})
	dp := startGateway(t, "DP", etcdConf(ec.Hosts(), nil), map[string]any{"role": "data_plane"})
	if c, err := net.DialTimeout("tcp", cp.stream, time.Second); err == nil {
		c.Close()
		t.Fatal("a control plane must not bind stream listeners")
	}
	cp.must(201, "PUT", "/apisix/admin/upstreams/u1", upstreamBody(b1))
	cp.must(201, "PUT", "/apisix/admin/stream_routes/r1", `{"upstream_id":"u1"}`)
	dp.answers("b1 hi")
	early.answers("b1 hi") // caught up without a restart
	if v := cp.clusterView(); v["role"] != "control_plane" {
		t.Fatalf("view: %v", v)
	}

	// PATCH: a compare-and-swap on the read modifiedIndex
	before := cp.must(200, "GET", "/apisix/admin/upstreams/u1", "")
	cp.must(200, "PATCH", "/apisix/admin/upstreams/u1", `{"desc":"patched"}`)
	var after map[string]any
	eventually(t, "the PATCH reaches the data plane", func() (bool, string) {
		after = dp.must(200, "GET", "/apisix/admin/upstreams/u1", "")
		return after["value"].(map[string]any)["desc"] == "patched", fmt.Sprint(after)
	})
	if after["modifiedIndex"].(float64) <= before["modifiedIndex"].(float64) || after["createdIndex"] != before["createdIndex"] {
		t.Fatalf("PATCH: before %v after %v", before, after)
	}

	// ttl: an etcd lease
	cp.must(201, "PUT", "/apisix/admin/stream_routes/tmp?ttl=1", `{"upstream_id":"u1","server_port":1}`)
	cp.must(200, "GET", "/apisix/admin/stream_routes/tmp", "")
	eventually(t, "the ttl route expires on the data plane", func() (bool, string) {
		code, _ := dp.do("GET", "/apisix/admin/stream_routes/tmp", "")
		return code == 404, fmt.Sprint(code)
	})
}
