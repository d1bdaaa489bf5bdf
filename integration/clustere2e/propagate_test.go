//go:build linux

package clustere2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// TestWriteOnAServesOnB: a write through node A's Admin API routes the next
// connection on node B (a data plane); updates and deletes propagate; the
// values in etcd are APISIX's; B refuses writes with 405.
func TestWriteOnAServesOnB(t *testing.T) {
	ec := e2e.StartEtcd(t, 1, "http")
	a := startGateway(t, "A", etcdConf(ec.Hosts(), nil), nil)
	b := startGateway(t, "B", etcdConf(ec.Hosts(), nil), map[string]any{"role": "data_plane"})
	b1, b2 := backend(t, "b1"), backend(t, "b2")

	a.must(201, "PUT", "/apisix/admin/upstreams/u1", upstreamBody(b1))
	a.must(201, "PUT", "/apisix/admin/stream_routes/r1", `{"upstream_id":"u1"}`)
	b.answers("b1 hi")
	a.answers("b1 hi")

	// update: the route moves to another upstream
	a.must(201, "PUT", "/apisix/admin/upstreams/u2", upstreamBody(b2))
	a.must(200, "PUT", "/apisix/admin/stream_routes/r1", `{"upstream_id":"u2"}`)
	b.answers("b2 hi")

	// the value in etcd is APISIX's: the object with id and timestamps
	cli := ec.Client()
	resp, err := cli.Get(context.Background(), "/apisix/stream_routes/r1")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("etcd get: %v %v", resp, err)
	}
	var v map[string]any
	if err := json.Unmarshal(resp.Kvs[0].Value, &v); err != nil {
		t.Fatalf("value %s: %v", resp.Kvs[0].Value, err)
	}
	if v["id"] != "r1" || v["upstream_id"] != "u2" || v["create_time"] == nil || v["update_time"] == nil {
		t.Fatalf("stored value %s", resp.Kvs[0].Value)
	}
	// no schema defaults are stored (apisix/admin/resource.lua checks a copy)
	up, err := cli.Get(context.Background(), "/apisix/upstreams/u1")
	if err != nil || len(up.Kvs) != 1 || strings.Contains(string(up.Kvs[0].Value), "pass_host") {
		t.Fatalf("stored upstream %v %v", up, err)
	}
	// indexes are etcd's create and mod revisions, on every node
	kv := resp.Kvs[0]
	for _, g := range []*gateway{a, b} {
		got := g.must(200, "GET", "/apisix/admin/stream_routes/r1", "")
		if int64(got["createdIndex"].(float64)) != kv.CreateRevision || int64(got["modifiedIndex"].(float64)) != kv.ModRevision {
			t.Fatalf("%s: indexes %v %v, etcd %d %d", g.name, got["createdIndex"], got["modifiedIndex"], kv.CreateRevision, kv.ModRevision)
		}
	}
	// init_dir placeholders, written by the traditional node
	ph, err := cli.Get(context.Background(), "/apisix/stream_routes/")
	if err != nil || len(ph.Kvs) != 1 || string(ph.Kvs[0].Value) != "init_dir" {
		t.Fatalf("placeholder: %v %v", ph, err)
	}

	// the data plane is read-only
	code, body := b.do("PUT", "/apisix/admin/stream_routes/r2", `{"upstream_id":"u1"}`)
	if code != 405 || body["error_msg"] != "this node is a data_plane: the Admin API is read-only" {
		t.Fatalf("data plane PUT = %d %v", code, body)
	}
	b.must(200, "GET", "/apisix/admin/stream_routes/r1", "")

	// delete propagates
	a.must(200, "DELETE", "/apisix/admin/stream_routes/r1", "")
	b.answers("")

	// POST ids are the revision of the /gen_id put, 20 digits
	before, _ := cli.Get(context.Background(), "/apisix/gen_id")
	got := a.must(201, "POST", "/apisix/admin/upstreams", upstreamBody(b1))
	id := got["value"].(map[string]any)["id"].(string)
	if len(id) != 20 {
		t.Fatalf("POST id %q", id)
	}
	after, _ := cli.Get(context.Background(), "/apisix/gen_id")
	if len(after.Kvs) != 1 || fmt.Sprintf("%020d", after.Kvs[0].ModRevision) != id || (len(before.Kvs) == 1 && before.Kvs[0].ModRevision >= after.Kvs[0].ModRevision) {
		t.Fatalf("POST id %s, gen_id %v", id, after.Kvs)
	}

	// view of each node
	for _, g := range []*gateway{a, b} {
		cv := g.clusterView()
		e, _ := cv["etcd"].(map[string]any)
		if e == nil || e["connected"] != true || e["revision"].(float64) < float64(kv.ModRevision) {
			t.Fatalf("%s /v1/cluster = %v", g.name, cv)
		}
	}
	_ = clientv3.WithPrefix
	_ = net.Dial
	_ = strings.Contains
	_ = time.Second
}
