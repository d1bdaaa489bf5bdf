//go:build linux

package integration

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// metricValue is the value of the series name{labels} on /metrics (the
// labels as Prometheus writes them, sorted), -1 when absent.
func metricValue(t *testing.T, p *caddyProc, series string) float64 {
	t.Helper()
	code, body, err := p.request(http.MethodGet, "/metrics", nil)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", code, err)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// TestPrometheusStreamMetrics checks the stream metrics with APISIX 3.18's
// labels (t/stream-plugin/prometheus-metrics.t): status 200 by listen_addr
// and node for a normal close, the four bandwidth series, the active
// gauge back at 0, 502 for an unreachable upstream; and the prometheus
// plugin's prefer_name, which labels the route by its name.
func TestPrometheusStreamMetrics(t *testing.T) {
	be := newBackend(t, "metered")
	port, deadPortN := freePort(t), deadPort(t)
	addr := hostPort("127.0.0.1", port)
	p := startCaddy(t, caddyConfig{Apisix: map[string]any{
		"stream_proxy": map[string]any{"tcp": []any{addr}},
	}})
	p.put(t, "stream_routes/7", map[string]any{
		"name": "db", "plugins": map[string]any{"prometheus": map[string]any{"prefer_name": true}},
		"remote_addr": "127.0.0.1", "upstream": upstreamOf(be),
	})
	p.put(t, "stream_routes/8", map[string]any{
		"remote_addr": "127.0.0.2",
		"upstream":    map[string]any{"nodes": map[string]int{hostPort("127.0.0.1", deadPortN): 1}},
	})
	if got := whoTCP(t, "127.0.0.1", addr); got != be.Name {
		t.Fatalf("answered by %q", got)
	}
	if got := whoTCP(t, "127.0.0.2", addr); got != "" {
		t.Fatalf("dead upstream: answered by %q", got)
	}
	node := be.Addr()
	want := map[string]func(float64) bool{
		`apisix_stream_connection_total{route="db"}`:                                                                             func(v float64) bool { return v == 1 },
		fmt.Sprintf(`apisix_stream_status{code="200",listen_addr=%q,node=%q,route="db"}`, addr, node):                            func(v float64) bool { return v == 1 },
		fmt.Sprintf(`apisix_stream_active_connections{listen_addr=%q,route="db"}`, addr):                                         func(v float64) bool { return v == 0 },
		fmt.Sprintf(`apisix_stream_bandwidth{listen_addr=%q,route="db",side="downstream",type="ingress"}`, addr):                 func(v float64) bool { return v > 0 },
		fmt.Sprintf(`apisix_stream_bandwidth{listen_addr=%q,route="db",side="downstream",type="egress"}`, addr):                  func(v float64) bool { return v > 0 },
		fmt.Sprintf(`apisix_stream_bandwidth{listen_addr=%q,route="db",side="upstream",type="ingress"}`, addr):                   func(v float64) bool { return v > 0 },
		fmt.Sprintf(`apisix_stream_bandwidth{listen_addr=%q,route="db",side="upstream",type="egress"}`, addr):                    func(v float64) bool { return v > 0 },
		fmt.Sprintf(`apisix_stream_status{code="502",listen_addr=%q,node=%q,route="8"}`, addr, hostPort("127.0.0.1", deadPortN)): func(v float64) bool { return v == 1 },
	}
	// a session's series are written when it ends: poll, bounded
	deadline := time.Now().Add(answerWait)
	for series, ok := range want {
		for v := metricValue(t, p, series); !ok(v); v = metricValue(t, p, series) {
			if time.Now().After(deadline) {
				t.Fatalf("%s = %v", series, v)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// TestStreamBandwidthWhileOpen checks that a TCP connection's bytes show
// in apisix_stream_bandwidth (and apisix_stream_bandwidth_bytes_total)
// while it is open, and that closing it does not count them twice.
func TestStreamBandwidthWhileOpen(t *testing.T) {
	be := newBackend(t, "long")
	addr := hostPort("127.0.0.1", freePort(t))
	p := startCaddy(t, caddyConfig{Apisix: map[string]any{
		"stream_proxy": map[string]any{"tcp": []any{addr}},
	}})
	p.put(t, "stream_routes/1", map[string]any{"upstream": upstreamOf(be)})
	c, name := firstLine(t, "127.0.0.1", addr)
	if name != be.Name {
		c.Close()
		t.Fatalf("answered by %q", name)
	}
	checkEcho(t, c, be.Name)
	// the greeting and the echo of "ping long\n" back, the ping in
	ingress, egress := float64(len("ping long\n")), float64(len("long\n")+len("ping long\n"))
	want := map[string]float64{}
	for _, n := range []string{"apisix_stream_bandwidth", "apisix_stream_bandwidth_bytes_total"} {
		want[fmt.Sprintf(`%s{listen_addr=%q,route="1",side="downstream",type="ingress"}`, n, addr)] = ingress
		want[fmt.Sprintf(`%s{listen_addr=%q,route="1",side="upstream",type="egress"}`, n, addr)] = ingress
		want[fmt.Sprintf(`%s{listen_addr=%q,route="1",side="downstream",type="egress"}`, n, addr)] = egress
		want[fmt.Sprintf(`%s{listen_addr=%q,route="1",side="upstream",type="ingress"}`, n, addr)] = egress
	}
	// the proxy counts a write just after it: poll, bounded
	check := func(when string) {
		t.Helper()
		deadline := time.Now().Add(answerWait)
		for series, v := range want {
			for got := metricValue(t, p, series); got != v; got = metricValue(t, p, series) {
				if time.Now().After(deadline) {
					t.Fatalf("%s: %s = %v, want %v", when, series, got, v)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	check("connection open")
	if got := metricValue(t, p, fmt.Sprintf(`apisix_stream_active_connections{listen_addr=%q,route="1"}`, addr)); got != 1 {
		t.Fatalf("active connections = %v, want 1", got)
	}
	c.Close()
	ended := fmt.Sprintf(`apisix_stream_status{code="200",listen_addr=%q,node=%q,route="1"}`, addr, be.Addr())
	deadline := time.Now().Add(answerWait)
	for metricValue(t, p, ended) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%s never 1", ended)
		}
		time.Sleep(50 * time.Millisecond)
	}
	check("connection closed")
}

// TestNodeChurnSeriesBounded checks, from /metrics, that a live route
// whose node is replaced 20 times (a connection through each) exports
// the series of its current node only once the old nodes' sessions
// ended: upstreams whose nodes change (Kubernetes endpoints, DNS) used
// to grow one set of series per node ever used.
func TestNodeChurnSeriesBounded(t *testing.T) {
	addr := hostPort("127.0.0.1", freePort(t))
	p := startCaddy(t, caddyConfig{Apisix: map[string]any{
		"stream_proxy": map[string]any{"tcp": []any{addr}},
	}})
	nodeRe := regexp.MustCompile(`(?m)^apisix_stream_status_total\{code="200",listen_addr="[^"]*",node="([^"]*)",route="1"\} `)
	nodes := func() map[string]bool {
		code, body, err := p.request(http.MethodGet, "/metrics", nil)
		if err != nil || code != http.StatusOK {
			t.Fatalf("GET /metrics: %d %v", code, err)
		}
		out := map[string]bool{}
		for _, m := range nodeRe.FindAllSubmatch(body, -1) {
			out[string(m[1])] = true
		}
		return out
	}
	var be *backend
	for i := range 20 {
		be = newBackend(t, fmt.Sprintf("node-%d", i))
		p.put(t, "stream_routes/1", map[string]any{"upstream": upstreamOf(be)})
		if got := whoTCP(t, "127.0.0.1", addr); got != be.Name {
			t.Fatalf("round %d: answered by %q, want %q", i, got, be.Name)
		}
	}
	// the last session's end, and the release of the ones before it, are
	// asynchronous: poll, bounded
	deadline := time.Now().Add(answerWait)
	for got := nodes(); len(got) != 1 || !got[be.Addr()]; got = nodes() {
		if time.Now().After(deadline) {
			t.Fatalf("route 1 exports status series of %d nodes %v, want only the current %s", len(got), got, be.Addr())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRemovedListenerSeriesGo checks, from /metrics, that a reload that
// removes a stream_proxy listener removes the series of its local
// address, and one that keeps a listener keeps its series.
func TestRemovedListenerSeriesGo(t *testing.T) {
	be := newBackend(t, "kept")
	kept, removed := hostPort("127.0.0.1", freePort(t)), hostPort("127.0.0.1", freePort(t))
	both := caddyConfig{Apisix: map[string]any{"stream_proxy": map[string]any{"tcp": []any{kept, removed}}}}
	p := startCaddy(t, both)
	p.put(t, "stream_routes/1", map[string]any{"upstream": upstreamOf(be)})
	series := func(addr string) string {
		return fmt.Sprintf(`apisix_stream_status_total{code="200",listen_addr=%q,node=%q,route="1"}`, addr, be.Addr())
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(answerWait)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatal(what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, addr := range []string{kept, removed} {
		if got := whoTCP(t, "127.0.0.1", addr); got != be.Name {
			t.Fatalf("%s: answered by %q", addr, got)
		}
		waitFor(addr+": no series", func() bool { return metricValue(t, p, series(addr)) == 1 })
	}
	p.load(t, caddyConfig{Apisix: map[string]any{"stream_proxy": map[string]any{"tcp": []any{kept}}}})
	waitFor("the removed listener's series stayed", func() bool { return metricValue(t, p, series(removed)) == -1 })
	if v := metricValue(t, p, series(kept)); v != 1 {
		t.Errorf("the kept listener's series: %v, want 1", v)
	}
}
