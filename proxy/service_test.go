package proxy

import (
	"fmt"
	"testing"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"
	"github.com/caddy-apisix/stream/router"
)

// TestServiceMerge: what each stream route of a snapshot runs with once its
// service is merged (model.EffectiveRoute), and that a service change
// rebuilds the routes using it while an unchanged service keeps its
// compiled upstream (balancer state) across snapshots.
func TestServiceMerge(t *testing.T) {
	rt, reg := newTestRuntime(t, nil, nil)
	put := func(kind model.Kind, id, body string) {
		t.Helper()
		err := reg.Update(func(tx *registry.Tx) error { _, _, err := tx.Put(kind, id, []byte(body)); return err })
		if err != nil {
			t.Fatal(err)
		}
	}
	put(model.Upstreams, "u", `{"nodes":{"127.0.0.1:3":1}}`)
	put(model.Services, "inline", `{"upstream":{"nodes":{"127.0.0.1:1":1}},"upstream_id":"u",`+
		`"plugins":{"ip-restriction":{"whitelist":["10.0.0.1"]}}}`)
	put(model.Services, "byid", `{"upstream_id":"u"}`)
	put(model.StreamRoutes, "a", `{"service_id":"inline","server_port":1}`)
	put(model.StreamRoutes, "b", `{"service_id":"inline","server_port":2}`)
	put(model.StreamRoutes, "own", `{"service_id":"inline","server_port":3,"upstream":{"nodes":{"127.0.0.1:2":1}},`+
		`"plugins":{"limit-conn":{"conn":1,"burst":0,"default_conn_delay":0.1,"key":"remote_addr"}}}`)
	put(model.StreamRoutes, "rid", `{"service_id":"inline","server_port":4,"upstream_id":"u"}`)
	put(model.StreamRoutes, "c", `{"service_id":"byid","server_port":5}`)
	put(model.StreamRoutes, "gone", `{"service_id":"nope","server_port":6}`)

	byID := func() map[string]*Route {
		m := map[string]*Route{}
		rt.Snapshot().table.Each(func(e *router.Entry[*Route]) { m[e.ID] = e.Target })
		return m
	}
	node := func(r *Route) string {
		if r.Upstream == nil {
			return ""
		}
		return r.Upstream.Nodes[0].Addr
	}
	tests := []struct {
		route, node string
		plugins     int
	}{
		{"a", "127.0.0.1:1", 1},   // the service's inline upstream before its upstream_id; its plugin
		{"b", "127.0.0.1:1", 1},   // the same
		{"own", "127.0.0.1:2", 2}, // the route's inline upstream; both plugins
		{"rid", "127.0.0.1:3", 0}, // the route's upstream_id: the service is ignored, plugins too
		{"c", "127.0.0.1:3", 0},   // the service's upstream_id
		{"gone", "", 0},           // a missing service closes the sessions
	}
	routes := byID()
	for _, tc := range tests {
		r := routes[tc.route]
		if got := node(r); got != tc.node || len(r.prereaders) != tc.plugins {
			t.Errorf("route %s: node %q, %d plugins; want %q, %d", tc.route, got, len(r.prereaders), tc.node, tc.plugins)
		}
		if r.ServiceID == "" {
			t.Errorf("route %s: no ServiceID", tc.route)
		}
	}
	if routes["a"].Upstream != routes["b"].Upstream {
		t.Error("routes of one service do not share its upstream")
	}

	shared := routes["a"].Upstream
	put(model.StreamRoutes, "other", `{"server_port":7,"upstream_id":"u"}`)
	if byID()["a"].Upstream != shared {
		t.Error("an unrelated change rebuilt the service's upstream")
	}
	put(model.Services, "inline", `{"upstream":{"nodes":{"127.0.0.1:9":1}}}`)
	routes = byID()
	if node(routes["a"]) != "127.0.0.1:9" || node(routes["b"]) != "127.0.0.1:9" || len(routes["a"].prereaders) != 0 {
		t.Errorf("after the service change: %s %s, %d plugins", node(routes["a"]), node(routes["b"]), len(routes["a"].prereaders))
	}
	if node(routes["own"]) != "127.0.0.1:2" || len(routes["own"].prereaders) != 1 {
		t.Errorf("route with its own upstream after the service change: %s, %d plugins", node(routes["own"]), len(routes["own"].prereaders))
	}
}

// TestSchemaOnlyInlineUpstream: a stream route's inline upstream is only
// schema-checked by APISIX (apisix/admin/stream_routes.lua), so the
// snapshot builds with what the Admin API stored.
func TestSchemaOnlyInlineUpstream(t *testing.T) {
	for _, up := range []string{
		`{"type":"chash","nodes":{"127.0.0.1:1":1,"127.0.0.1:2":1}}`,
		`{"type":"chash","key":"not_a_var","nodes":{"127.0.0.1:1":1,"127.0.0.1:2":1}}`,
		`{"type":"random","nodes":{"127.0.0.1:1":1,"127.0.0.1:2":1}}`,
		`{"nodes":[{"host":"::1","port":1,"weight":1}]}`,
	} {
		rt, _ := newTestRuntime(t, map[string]string{"1": `{"upstream":` + up + `}`}, nil)
		if tb := rt.Snapshot().table; tb.Len() != 1 || tb.Get("1").Target.Upstream == nil {
			t.Errorf("%s: not compiled", up)
		}
	}
}

// BenchmarkCompileServiceChange measures a snapshot rebuild after one
// service changes, with 10,000 stream routes spread over 100 services: the
// cost a service write pays (compare BenchmarkCompile).
func BenchmarkCompileServiceChange(b *testing.B) {
	rt := NewRuntime(nil)
	defer rt.Close()
	reg := registry.New()
	if err := reg.SetCompile(rt.Compile); err != nil {
		b.Fatal(err)
	}
	err := reg.Update(func(tx *registry.Tx) error {
		for i := range 100 {
			body := fmt.Sprintf(`{"upstream":{"nodes":{"127.0.0.1:%d":1}},"plugins":{"ip-restriction":{"whitelist":["10.0.0.0/8"]}}}`, 2000+i)
			if _, _, err := tx.Put(model.Services, fmt.Sprint(i), []byte(body)); err != nil {
				return err
			}
		}
		for i := range 10000 {
			body := fmt.Sprintf(`{"server_port":%d,"service_id":"%d"}`, 10000+i, i%100)
			if _, _, err := tx.Put(model.StreamRoutes, fmt.Sprint(i), []byte(body)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		err := reg.Update(func(tx *registry.Tx) error {
			_, _, err := tx.Put(model.Services, "0", []byte(fmt.Sprintf(`{"upstream":{"nodes":{"127.0.0.1:%d":1}}}`, 3000+i%60000)))
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
