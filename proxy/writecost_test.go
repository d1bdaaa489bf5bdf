package proxy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"
)

// compiledRegistry is a registry whose changes compile into a fresh
// runtime, closed with the test.
func compiledRegistry(tb testing.TB) (*Runtime, *registry.Registry) {
	tb.Helper()
	rt := NewRuntime(nil)
	tb.Cleanup(rt.Close)
	reg := registry.New()
	if err := reg.SetCompile(rt.Compile); err != nil {
		tb.Fatal(err)
	}
	return rt, reg
}

// storeWithNodes is a registry holding upstreams objects of nodes nodes
// each, and one stream route per upstream.
func storeWithNodes(tb testing.TB, upstreams, nodes int) *registry.Registry {
	tb.Helper()
	_, reg := compiledRegistry(tb)
	err := reg.Update(func(tx *registry.Tx) error {
		for u := range upstreams {
			var b strings.Builder
			b.WriteString(`{"type":"roundrobin","nodes":{`)
			for n := range nodes {
				if n > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, `"10.%d.%d.%d:80":1`, u, n>>8, n&255)
			}
			b.WriteString(`}}`)
			id := fmt.Sprint(u)
			if _, _, err := tx.Put(model.Upstreams, id, []byte(b.String())); err != nil {
				return err
			}
			if _, _, err := tx.Put(model.StreamRoutes, id, []byte(fmt.Sprintf(`{"server_port":%d,"upstream_id":%q}`, 1000+u, id))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return reg
}

// putRoute is one small Admin API write.
func putRoute(tb testing.TB, reg *registry.Registry, i int) {
	err := reg.Update(func(tx *registry.Tx) error {
		_, _, err := tx.Put(model.StreamRoutes, "new", []byte(fmt.Sprintf(`{"server_port":%d,"upstream_id":"0"}`, 2000+i%1000)))
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// A small write costs the same whether the stored upstreams hold 10
// nodes or 100 times as many: unchanged upstreams are not parsed or
// compiled again (issue: every write recompiled every upstream).
func TestWriteCostIndependentOfStoredNodes(t *testing.T) {
	small := routeWriteAllocs(t, storeWithNodes(t, 20, 10))
	large := routeWriteAllocs(t, storeWithNodes(t, 20, 1000))
	if large > small*1.1+5 {
		t.Fatalf("one route write: %v allocations with 20×10 stored nodes, %v with 20×1000", small, large)
	}
}

// routeWriteAllocs is the allocations of one stream route write to reg.
func routeWriteAllocs(t *testing.T, reg *registry.Registry) float64 {
	i := 0
	return testing.AllocsPerRun(20, func() { putRoute(t, reg, i); i++ })
}

// BenchmarkWriteLargeStore measures one small write with 100 upstreams
// of 1,000 nodes each stored.
func BenchmarkWriteLargeStore(b *testing.B) {
	reg := storeWithNodes(b, 100, 1000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		putRoute(b, reg, i)
	}
}

// storeWithRoutes is a registry holding n stream routes on one upstream,
// each from its own client address (the propagation benchmark's shape).
func storeWithRoutes(tb testing.TB, n int) *registry.Registry {
	tb.Helper()
	_, reg := compiledRegistry(tb)
	err := reg.Update(func(tx *registry.Tx) error {
		if _, _, err := tx.Put(model.Upstreams, "u1", []byte(`{"type":"roundrobin","nodes":{"127.0.0.1:1":1}}`)); err != nil {
			return err
		}
		for i := range n {
			v := fmt.Sprintf(`{"upstream_id":"u1","remote_addr":"10.%d.%d.%d"}`, i>>16&255, i>>8&255, i&255)
			if _, _, err := tx.Put(model.StreamRoutes, fmt.Sprintf("bulk%05d", i), []byte(v)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return reg
}

// A route write costs the same with 100 routes stored as with 10,000:
// the router is updated, not rebuilt (it was rebuilt on every change).
func TestRouteWriteCostIndependentOfRouteCount(t *testing.T) {
	small := routeWriteAllocs(t, storeWithRoutes(t, 100))
	large := routeWriteAllocs(t, storeWithRoutes(t, 10000))
	if large > small*1.5+20 {
		t.Fatalf("one route write: %v allocations with 100 routes stored, %v with 10,000", small, large)
	}
}

// BenchmarkRouteWrite is one stream route write (registry and compile)
// with n routes stored.
func BenchmarkRouteWrite(b *testing.B) {
	for _, n := range []int{1, 10000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			reg := storeWithRoutes(b, n)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				putRoute(b, reg, i)
			}
		})
	}
}
