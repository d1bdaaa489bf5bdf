//go:build linux

package clustere2e

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// BenchmarkPropagation measures a write through node A's Admin API until
// the next connection on node B (a data plane on the same etcd) uses it,
// with 1 and 10,000 stream routes present; it reports p50 and p99 over
// 200 writes per run, and the write's own latency on A (acknowledged after
// etcd committed it and A applied it).
//
//	unshare -n sh -c 'ip link set lo up && go test ./integration/clustere2e/ -run "^$" -bench Propagation -benchtime 1x'
func BenchmarkPropagation(b *testing.B) {
	for _, n := range []int{1, 10000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) { benchPropagation(b, n) })
	}
}

func benchPropagation(b *testing.B, routes int) {
	ec := e2e.StartEtcd(b, 1, "http")
	b1, b2 := backend(b, "b1"), backend(b, "b2")
	a := startGateway(b, "A", etcdConf(ec.Hosts(), nil), nil)
	dp := startGateway(b, "B", etcdConf(ec.Hosts(), nil), map[string]any{"role": "data_plane"})
	a.must(201, "PUT", "/apisix/admin/upstreams/u1", upstreamBody(b1))
	a.must(201, "PUT", "/apisix/admin/upstreams/u2", upstreamBody(b2))
	t0 := time.Now()
	preload(b, ec, routes-1)
	a.must(201, "PUT", "/apisix/admin/stream_routes/probe", `{"upstream_id":"u1"}`)
	dp.answers("b1 hi")
	for _, g := range []*gateway{a, dp} {
		eventually(b, g.name+" holds every route", func() (bool, string) {
			l := g.must(200, "GET", "/apisix/admin/stream_routes", "")
			return l["total"].(float64) == float64(routes), fmt.Sprint(l["total"])
		})
	}
	b.Logf("%d routes written and applied on both nodes in %v", routes, time.Since(t0))

	const writes = 200
	b.ResetTimer()
	for range b.N {
		var prop, ack []time.Duration
		for i := range writes {
			up, want := "u2", "b2 hi"
			if i%2 == 1 {
				up, want = "u1", "b1 hi"
			}
			start := time.Now()
			a.must(200, "PUT", "/apisix/admin/stream_routes/probe", `{"upstream_id":"`+up+`"}`)
			ack = append(ack, time.Since(start))
			deadline := start.Add(10 * time.Second)
			for dp.ask() != want {
				if time.Now().After(deadline) {
					b.Fatalf("write %d not seen on B after 10s", i)
				}
			}
			prop = append(prop, time.Since(start))
		}
		b.ReportMetric(pct(prop, 50), "p50-ms")
		b.ReportMetric(pct(prop, 99), "p99-ms")
		b.ReportMetric(pct(ack, 50), "write-p50-ms")
		b.ReportMetric(pct(ack, 99), "write-p99-ms")
	}
}

// preload writes n stream routes that never match a loopback client, in
// transactions of 100 keys, as a bulk import into etcd would.
func preload(b testing.TB, ec *e2e.Etcd, n int) {
	cli := ec.Client()
	for i := 0; i < n; {
		var ops []clientv3.Op
		for ; i < n && len(ops) < 100; i++ {
			ops = append(ops, clientv3.OpPut(fmt.Sprintf("/apisix/stream_routes/bulk%05d", i),
				fmt.Sprintf(`{"upstream_id":"u1","remote_addr":"10.%d.%d.%d"}`, i>>16&255, i>>8&255, i&255)))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := cli.Txn(ctx).Then(ops...).Commit()
		cancel()
		if err != nil {
			b.Fatal(err)
		}
	}
}

// pct is the p-th percentile of ds, in milliseconds.
func pct(ds []time.Duration, p int) float64 {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return float64(s[(len(s)-1)*p/100].Microseconds()) / 1000
}
