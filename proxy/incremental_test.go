package proxy

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"
)

// routeValues are the stream routes the random writes draw from: shared
// and inline upstreams, plugins, every filter.
var routeValues = []string{
	`{"upstream_id":"u1"}`,
	`{"upstream_id":"u2","server_port":9100}`,
	`{"upstream_id":"u1","remote_addr":"127.0.0.1"}`,
	`{"upstream_id":"u2","remote_addr":"127.0.0.0/24","server_port":9101}`,
	`{"upstream":{"type":"roundrobin","nodes":{"127.0.0.1:7001":1}},"server_addr":"127.0.0.1"}`,
	`{"upstream":{"type":"roundrobin","nodes":{"127.0.0.1:7002":1}},"sni":"a.test.com"}`,
	`{"upstream_id":"u1","snis":["*.test.com"],"plugins":{"ip-restriction":{"whitelist":["127.0.0.0/8"]}}}`,
	`{"upstream_id":"u2","plugins":{"ip-restriction":{"blacklist":["10.0.0.0/8"]}},"server_port":9100}`,
	`{"upstream_id":"missing"}`,
}

// After each random route write, the runtime (compiled route by route)
// serves what a runtime compiled from scratch serves, and holds the same
// upstreams and plugin instances.
func TestIncrementalCompileEqualsFull(t *testing.T) {
	rt := NewRuntime(nil)
	t.Cleanup(rt.Close)
	reg := registry.New()
	if err := reg.SetCompile(rt.Compile); err != nil {
		t.Fatal(err)
	}
	err := reg.Update(func(tx *registry.Tx) error {
		for _, id := range []string{"u1", "u2"} {
			if _, _, err := tx.Put(model.Upstreams, id, []byte(`{"type":"roundrobin","nodes":{"127.0.0.1:7000":1}}`)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var queries [][2]netip.AddrPort
	for _, remote := range []string{"127.0.0.1:5000", "127.0.0.9:5000", "10.1.1.1:5000"} {
		for _, local := range []string{"127.0.0.1:9100", "127.0.0.1:9101", "127.0.0.2:9102"} {
			queries = append(queries, [2]netip.AddrPort{netip.MustParseAddrPort(remote), netip.MustParseAddrPort(local)})
		}
	}
	r := rand.New(rand.NewPCG(5, 6))
	for step := range 300 {
		id := fmt.Sprint(r.IntN(12))
		before := rt.Snapshot()
		err := reg.Update(func(tx *registry.Tx) error {
			if r.IntN(4) == 0 {
				_, err := tx.Delete(model.StreamRoutes, id)
				return err
			}
			_, _, err := tx.Put(model.StreamRoutes, id, []byte(routeValues[r.IntN(len(routeValues))]))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		// compiled route by route: the upstreams of the snapshot are
		// the same map (a full compile makes a new one)
		if after := rt.Snapshot(); after != before && reflect.ValueOf(after.upstreams).Pointer() != reflect.ValueOf(before.upstreams).Pointer() {
			t.Fatalf("step %d: a route write was compiled from scratch", step)
		}
		fresh := NewRuntime(nil)
		reg.View(func(v registry.View) {
			if err := fresh.Compile(v); err != nil {
				t.Fatal(err)
			}
		})
		got, want := rt.Snapshot(), fresh.Snapshot()
		for _, qq := range queries {
			for _, sni := range []string{"", "a.test.com", "b.test.com"} {
				g, w := got.Match(got.Query(qq[0], qq[1], sni)), want.Match(want.Query(qq[0], qq[1], sni))
				if describe(g) != describe(w) {
					t.Fatalf("step %d, %v %q: incremental %s, full %s", step, qq, sni, describe(g), describe(w))
				}
			}
		}
		if a, b := slices.Sorted(maps.Keys(rt.upstreams)), slices.Sorted(maps.Keys(fresh.upstreams)); !slices.Equal(a, b) {
			t.Fatalf("step %d: upstreams %v, full compile %v", step, a, b)
		}
		if a, b := slices.Sorted(maps.Keys(rt.plugins)), slices.Sorted(maps.Keys(fresh.plugins)); !slices.Equal(a, b) {
			t.Fatalf("step %d: plugins %v, full compile %v", step, a, b)
		}
		fresh.Close()
	}
}

// describe is a matched route as a session sees it.
func describe(r *Route) string {
	if r == nil {
		return "none"
	}
	up := "none"
	if r.Upstream != nil {
		up = r.Upstream.key
	}
	return fmt.Sprintf("%s→%s plugins=%d", r.ID, up, len(r.prereaders)+len(r.choosers)+len(r.loggers))
}
