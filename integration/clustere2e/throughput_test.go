//go:build linux

package clustere2e

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// BenchmarkWriteThroughput measures Admin API writes per second on one
// node with the etcd store and on one with the embedded store, in the same
// run: writers concurrent PUTs of new stream routes, perNode in all per
// node. It reports both rates and their ratio (etcd / embedded); the
// issue's target is a ratio of at least 1.
//
//	unshare -n sh -c 'ip link set lo up && go test ./integration/clustere2e/ -run "^$" -bench WriteThroughput -benchtime 1x'
func BenchmarkWriteThroughput(b *testing.B) {
	const writers, perNode = 16, 1600
	ec := e2e.StartEtcd(b, 1, "http")
	up := backend(b, "b1")
	nodes := []*gateway{
		startGateway(b, "etcd", etcdConf(ec.Hosts(), nil), nil),
		startGateway(b, "embedded", nil, nil),
	}
	for _, g := range nodes {
		g.must(201, "PUT", "/apisix/admin/upstreams/u1", upstreamBody(up))
	}
	b.ResetTimer()
	for run := range b.N {
		rates := make([]float64, len(nodes))
		for k, g := range nodes {
			rates[k] = writeRate(b, g, fmt.Sprintf("r%d", run), writers, perNode)
		}
		b.ReportMetric(rates[0], "etcd-writes/s")
		b.ReportMetric(rates[1], "embedded-writes/s")
		b.ReportMetric(rates[0]/rates[1], "etcd/embedded")
	}
}

// writeRate PUTs n new stream routes on g from writers goroutines and
// returns the rate at which they were acknowledged (201).
func writeRate(b *testing.B, g *gateway, tag string, writers, n int) float64 {
	admin := g.admin
	admin.KeepAlive = true
	var next, failed atomic.Int64
	var first atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				path := fmt.Sprintf("/apisix/admin/stream_routes/%s-%05d", tag, i)
				body := fmt.Sprintf(`{"upstream_id":"u1","remote_addr":"10.9.%d.%d"}`, i>>8&255, i&255)
				code, _, resp, err := admin.Do("PUT", path, e2e.AdminKey, []byte(body), nil)
				if err != nil || code != 201 {
					failed.Add(1)
					first.CompareAndSwap(nil, fmt.Sprintf("%s: %d %v %s", path, code, err, resp))
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if f := failed.Load(); f > 0 {
		b.Fatalf("%s: %d of %d writes failed; first: %v", g.name, f, n, first.Load())
	}
	rate := float64(n) / elapsed.Seconds()
	b.Logf("%s: %d writes from %d writers in %v: %.0f writes/s", g.name, n, writers, elapsed, rate)
	return rate
}
