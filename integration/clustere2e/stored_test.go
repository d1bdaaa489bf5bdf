//go:build linux

package clustere2e

import (
	"context"
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"testing"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// etcdValue is the JSON object etcd holds under key.
func etcdValue(t *testing.T, ec *e2e.Etcd, key string) map[string]any {
	t.Helper()
	resp, err := ec.Client().Get(context.Background(), key)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("get %s: %v %v", key, resp, err)
	}
	var v map[string]any
	if err := json.Unmarshal(resp.Kvs[0].Value, &v); err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return v
}

// TestStoredValuesWithoutDefaults: APISIX stores no schema defaults and
// its Admin API reads etcd (apisix/admin/resource.lua), so a GET, a list
// and a PATCH on our nodes show and merge the value etcd holds, not the
// one with defaults the data path runs with.
func TestStoredValuesWithoutDefaults(t *testing.T) {
	ec := e2e.StartEtcd(t, 1, "http")
	b1 := backend(t, "b1")
	a := startGateway(t, "A", etcdConf(ec.Hosts(), nil), nil)
	dp := startGateway(t, "B", etcdConf(ec.Hosts(), nil), map[string]any{"role": "data_plane"})
	a.must(201, "PUT", "/apisix/admin/upstreams/u1", upstreamBody(b1))
	a.must(201, "PUT", "/apisix/admin/stream_routes/r1",
		`{"upstream":{"nodes":{"`+b1+`":1},"type":"chash","key":"remote_addr"},"remote_addr":"127.0.0.1"}`)
	dp.answers("b1 hi")
	for _, key := range []string{"upstreams/u1", "stream_routes/r1"} {
		want := etcdValue(t, ec, "/apisix/"+key)
		for _, g := range []*gateway{a, dp} {
			got := g.must(200, "GET", "/apisix/admin/"+key, "")["value"]
			if !reflect.DeepEqual(got, any(want)) {
				t.Errorf("%s GET %s = %v, etcd holds %v", g.name, key, got, want)
			}
		}
	}
	list := dp.must(200, "GET", "/apisix/admin/upstreams", "")["list"].([]any)
	if got := list[0].(map[string]any)["value"]; !reflect.DeepEqual(got, any(etcdValue(t, ec, "/apisix/upstreams/u1"))) {
		t.Errorf("list shows %v", got)
	}

	// a PATCH merges into what etcd holds: no default reaches etcd
	a.must(200, "PATCH", "/apisix/admin/upstreams/u1", `{"desc":"patched"}`)
	keys := slices.Sorted(maps.Keys(etcdValue(t, ec, "/apisix/upstreams/u1")))
	if want := []string{"create_time", "desc", "id", "nodes", "type", "update_time"}; !slices.Equal(keys, want) {
		t.Fatalf("after PATCH etcd holds the keys %v, want %v", keys, want)
	}
}
