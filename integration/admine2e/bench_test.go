//go:build linux

package admine2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/proxy"
	"github.com/caddy-apisix/stream/registry"
	"github.com/caddy-apisix/stream/router"
)

// benchRoutes is how many routes the benchmarks start with.
const benchRoutes = 10000

// benchRoute is route i of the preloaded set: a third filter on a client
// address outside loopback, a third on ports nothing listens on, a third
// on SNIs; none matches the benchmark's plain loopback connections.
func benchRoute(i int) map[string]any {
	r := map[string]any{
		"id":       fmt.Sprintf("bench-%05d", i),
		"upstream": map[string]any{"nodes": map[string]any{"127.0.0.1:1": 1}, "type": "roundrobin"},
	}
	switch i % 3 {
	case 0:
		r["remote_addr"] = fmt.Sprintf("10.%d.%d.0/24", i/256%256, i%256)
	case 1:
		r["server_port"] = 40000 + i%20000
	default:
		r["sni"] = fmt.Sprintf("h%d.bench.test", i)
	}
	return r
}

// percentile returns the p-th percentile (0-100) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkPutWith10kRoutes measures, on a real Caddy holding 10,000
// stream routes (static objects of the config; loading them is measured
// too, as load-ms), the time from sending a PUT of a route to the moment
// the next connection is routed by it. Each iteration points the probe
// route at the other of two backends; the first connection after the 2xx
// must already reach the new one.
//
// The routes=0 case is the baseline: storage and HTTP without routes.
//
//	go test ./integration/admine2e/ -run '^$' -bench PutWith10k -benchtime 50x
func BenchmarkPutWith10kRoutes(b *testing.B) {
	for _, n := range []int{0, benchRoutes} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) { benchPut(b, n) })
	}
}

func benchPut(b *testing.B, n int) {
	x := startBackend(b, "X", "127.0.0.1:0", false, nil)
	y := startBackend(b, "Y", "127.0.0.1:0", false, nil)
	lport := freePort(b)
	listen := hostPort("127.0.0.1", lport)
	routes := make([]any, n)
	for i := range routes {
		r := benchRoute(i)
		if r["server_port"] == lport {
			r["server_port"] = 39999
		}
		routes[i] = r
	}
	app := map[string]any{"stream_proxy": map[string]any{"tcp": []any{listen}}}
	if n > 0 {
		app["stream_routes"] = routes
	}
	in := newInstance(b, "", appsConfig(apisixApp(app)))
	t0 := time.Now()
	p := in.start()
	load := time.Since(t0)
	v := mustJSON(b, p.must(b, "GET", "/apisix/admin/stream_routes?page=1&page_size=10", "", http.StatusOK))
	if got := num(b, v["total"]); got != int64(n) {
		b.Fatalf("%d routes loaded, want %d", got, n)
	}

	var puts, visible []time.Duration
	i := 0
	for b.Loop() {
		target, tag := x, "X"
		if i%2 == 1 {
			target, tag = y, "Y"
		}
		body := fmt.Sprintf(`{"server_port":%d,"upstream":{"nodes":{"%s":1},"type":"roundrobin"}}`, lport, target.addr())
		start := time.Now()
		st, resp, err := p.call("PUT", "/apisix/admin/stream_routes/probe", adminKey, body, nil)
		if err != nil || st/100 != 2 {
			b.Fatalf("PUT: %v %s", err, answer(st, resp))
		}
		acked := time.Now()
		if res := probe(b, listen, nil, false); res.answer != tag {
			b.Fatalf("iteration %d: the first connection after the PUT's %d: %v, want %s", i, st, res, tag)
		}
		puts = append(puts, acked.Sub(start))
		visible = append(visible, time.Since(start))
		i++
	}
	b.ReportMetric(ms(load), "load-ms")
	b.ReportMetric(ms(percentile(puts, 50)), "put-p50-ms")
	b.ReportMetric(ms(percentile(puts, 99)), "put-p99-ms")
	b.ReportMetric(ms(percentile(visible, 50)), "routed-p50-ms")
	b.ReportMetric(ms(percentile(visible, 99)), "routed-p99-ms")
}

// BenchmarkCompileWith10kRoutes measures the in-process cost of one route
// change with 10,000 routes present: a registry transaction that writes
// one route and rebuilds the data-path snapshot (proxy.Runtime.Compile),
// without storage.
func BenchmarkCompileWith10kRoutes(b *testing.B) {
	reg := registry.New()
	rt := proxy.NewRuntime(nil)
	defer rt.Close()
	if err := reg.Open(nil, rt.Compile); err != nil {
		b.Fatal(err)
	}
	encode := func(obj map[string]any) []byte {
		if err := model.CheckStreamRoute(obj, model.Refs{}); err != nil {
			b.Fatalf("route %v: %v", obj["id"], err)
		}
		raw, err := json.Marshal(obj)
		if err != nil {
			b.Fatal(err)
		}
		return raw
	}
	t0 := time.Now()
	err := reg.Update(func(tx *registry.Tx) error {
		for i := range benchRoutes {
			r := benchRoute(i)
			if _, _, err := tx.Put(model.StreamRoutes, r["id"].(string), encode(r)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	load := time.Since(t0)
	probes := [][]byte{
		encode(map[string]any{"id": "probe", "server_port": 9, "upstream": map[string]any{"nodes": map[string]any{"127.0.0.1:2": 1}}}),
		encode(map[string]any{"id": "probe", "server_port": 9, "upstream": map[string]any{"nodes": map[string]any{"127.0.0.1:3": 1}}}),
	}
	i := 0
	for b.Loop() {
		err := reg.Update(func(tx *registry.Tx) error {
			_, _, err := tx.Put(model.StreamRoutes, "probe", probes[i%2])
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(ms(load), "load-ms")
	lo := netip.MustParseAddr("127.0.0.1")
	if r := rt.Snapshot().Match(router.Query{Remote: lo, Local: lo, Port: 9}); r == nil || r.ID != "probe" {
		b.Fatalf("the snapshot does not route port 9 to the probe route: %v", r)
	}
}

// BenchmarkPostLoad loads routes through the Admin API one POST at a time
// into a Caddy that starts empty: each iteration is one POST (persisted
// and compiled before its 201), so ns/op is the average cost of a write
// while the route count grows from 0 to b.N, and last-ms the cost of the
// final writes.
//
//	go test ./integration/admine2e/ -run '^$' -bench PostLoad -benchtime 2000x
func BenchmarkPostLoad(b *testing.B) {
	p := newInstance(b, "", appsConfig(apisixApp(map[string]any{
		"stream_proxy": map[string]any{"tcp": []any{hostPort("127.0.0.1", freePort(b))}},
	}))).start()
	var lat []time.Duration
	i := 0
	for b.Loop() {
		r := benchRoute(i)
		delete(r, "id")
		body, _ := json.Marshal(r)
		start := time.Now()
		st, resp, err := p.call("POST", "/apisix/admin/stream_routes", adminKey, string(body), nil)
		if err != nil || st != http.StatusCreated {
			b.Fatalf("POST %d: %v %s", i, err, answer(st, resp))
		}
		lat = append(lat, time.Since(start))
		i++
	}
	tail := lat[len(lat)-max(1, len(lat)/20):]
	b.ReportMetric(ms(percentile(tail, 50)), "last-ms")
}
