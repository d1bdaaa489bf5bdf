package proxy

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"
)

// proxyListener serves rt on a new loopback listener, held as a
// stream_proxy listener until the test ends.
func proxyListener(t *testing.T, rt *Runtime) (addr string, release func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	release = rt.HoldListener(ln.Addr())
	go func() { _ = rt.ServeTCP(ln, ListenerOptions{}) }()
	t.Cleanup(func() { ln.Close(); release() })
	return ln.Addr().String(), release
}

// routeSeries counts the gathered series labelled route, over every family.
func routeSeries(t *testing.T, rt *Runtime, route string) (n int, all []string) {
	t.Helper()
	for name, mf := range gather(t, rt) {
		for _, s := range seriesOf(mf, route) {
			all = append(all, name+"{"+s+"}")
		}
	}
	return len(all), all
}

// waitEnded waits until the route counted want ended sessions with status
// 200 over all its nodes and only open sessions still hold its series: a
// session ends asynchronously after the close, and lets go of its series
// just after it counted itself.
func waitEnded(t *testing.T, rt *Runtime, route string, want float64, open int64) {
	t.Helper()
	rm := rt.metrics.route(route)
	held := func() (n int64) {
		rm.mu.Lock()
		defer rm.mu.Unlock()
		for _, em := range rm.ends {
			n += em.refs.Load()
		}
		return n
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		got := statusSum(gather(t, rt)["apisix_stream_status_total"], route, "200")
		h := held()
		if got >= want && h == open {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("route %s: %v sessions counted with 200 and %d holding its series, want %v and %d", route, got, h, want, open)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// statusSum adds the route's series of the code.
func statusSum(mf *dto.MetricFamily, route, code string) (sum float64) {
	for _, m := range mf.GetMetric() {
		var r, c string
		for _, lp := range m.GetLabel() {
			switch lp.GetName() {
			case "route":
				r = lp.GetValue()
			case "code":
				c = lp.GetValue()
			}
		}
		if r == route && c == code {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// TestNodeChurnKeepsSeriesBounded: a live route whose node is replaced
// 200 times, with a session through every node, keeps the series of the
// nodes it can still reach, whichever way it reaches them (its own
// upstream, an upstream object, its service's, traffic-split's inline
// upstream or upstream_id). Before, every node ever used kept three
// status series for as long as the route lived.
func TestNodeChurnKeepsSeriesBounded(t *testing.T) {
	const rounds = 200
	put := func(kind model.Kind, id, body string) func(*registry.Tx) error {
		return func(tx *registry.Tx) error {
			_, _, err := tx.Put(kind, id, []byte(body))
			return err
		}
	}
	const fixed = `"127.0.0.1:1":1`
	for _, tc := range []struct {
		name string
		// write points the route at node
		write func(node string) []func(*registry.Tx) error
	}{
		{"route upstream", func(node string) []func(*registry.Tx) error {
			return []func(*registry.Tx) error{put(model.StreamRoutes, "r", `{"upstream":{"nodes":{"`+node+`":1}}}`)}
		}},
		{"upstream object", func(node string) []func(*registry.Tx) error {
			return []func(*registry.Tx) error{put(model.Upstreams, "u", `{"nodes":{"`+node+`":1}}`), put(model.StreamRoutes, "r", `{"upstream_id":"u"}`)}
		}},
		{"service upstream", func(node string) []func(*registry.Tx) error {
			return []func(*registry.Tx) error{put(model.Services, "s", `{"upstream":{"nodes":{"`+node+`":1}}}`), put(model.StreamRoutes, "r", `{"service_id":"s"}`)}
		}},
		{"traffic-split inline", func(node string) []func(*registry.Tx) error {
			return []func(*registry.Tx) error{put(model.StreamRoutes, "r", `{"upstream":{"nodes":{`+fixed+`}},"plugins":{"traffic-split":{"rules":[{"weighted_upstreams":[{"upstream":{"type":"roundrobin","nodes":{"`+node+`":1}},"weight":1}]}]}}}`)}
		}},
		{"traffic-split upstream_id", func(node string) []func(*registry.Tx) error {
			return []func(*registry.Tx) error{put(model.Upstreams, "u", `{"nodes":{"`+node+`":1}}`),
				put(model.StreamRoutes, "r", `{"upstream":{"nodes":{`+fixed+`}},"plugins":{"traffic-split":{"rules":[{"weighted_upstreams":[{"upstream_id":"u","weight":1}]}]}}}`)}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt, reg := compiledRegistry(t)
			addr, _ := proxyListener(t, rt)
			most, last := 0, []string(nil)
			for range rounds {
				node, stop := echoOn(t)
				for _, w := range tc.write(node) {
					if err := reg.Update(w); err != nil {
						t.Fatal(err)
					}
				}
				roundTrip(t, addr).Close()
				waitEnded(t, rt, "r", 1, 0)
				stop()
				n, all := routeSeries(t, rt, "r")
				if n > most {
					most, last = n, all
				}
			}
			// the connections counter, one active and 4 bandwidth series of
			// the listener, and 200/502/503 of the node in use, each of
			// status and bandwidth twice (APISIX's names)
			if most > 1+1+2*4+2*3 {
				t.Errorf("up to %d series for one route with one node at a time, want at most 16; the first of them:\n%s", most, strings.Join(last[:min(len(last), 40)], "\n"))
			}
		})
	}
}

// TestHeldSeriesStayUntilSessionEnds: a node removed while a session
// through it is open keeps its series, counting on, until that session
// ends: a scrape never sees a count go down while its series is exported.
// Then they go.
func TestHeldSeriesStayUntilSessionEnds(t *testing.T) {
	rt, reg := compiledRegistry(t)
	addr, _ := proxyListener(t, rt)
	old, stopOld := echoOn(t)
	defer stopOld()
	putAll(t, reg, nil, map[string]string{"r": `{"upstream":{"nodes":{"` + old + `":1}}}`})
	held := roundTrip(t, addr)
	roundTrip(t, addr).Close()
	waitEnded(t, rt, "r", 1, 1)
	next, stopNext := echoOn(t)
	defer stopNext()
	putAll(t, reg, nil, map[string]string{"r": `{"upstream":{"nodes":{"` + next + `":1}}}`})
	local := netip.MustParseAddrPort(addr)
	okOld := func() (float64, bool) {
		mf := gather(t, rt)["apisix_stream_status_total"]
		for _, s := range seriesOf(mf, "r") {
			if strings.Contains(s, "node="+old) && strings.Contains(s, "code=200") {
				return statusSum(mf, "r", "200"), true
			}
		}
		return 0, false
	}
	if v, ok := okOld(); !ok || v != 1 {
		t.Fatalf("while a session holds the removed node: its 200 series exported %v with %v, want true with 1", ok, v)
	}
	// the held session ends: counted, then its series go
	held.Close()
	deadline := time.Now().Add(3 * time.Second)
	for {
		if _, ok := okOld(); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the removed node's series stayed after its last session ended")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// the listener's bandwidth series stay: the new node uses them
	roundTrip(t, addr).Close()
	waitEnded(t, rt, "r", 1, 0)
	if em := rt.metrics.route("r").end(local, next); testutil.ToFloat64(em.ok) != 1 {
		t.Errorf("the new node counted %v sessions, want 1", testutil.ToFloat64(em.ok))
	}
}

// TestReleasedListenerSeriesGo: when the last stream_proxy listener of an
// address goes (a reload removed it), the route's series of that local
// address go once its sessions ended; a listener the reload kept (held
// again before the old config let go) keeps them.
func TestReleasedListenerSeriesGo(t *testing.T) {
	rt, reg := compiledRegistry(t)
	node, stop := echoOn(t)
	defer stop()
	putAll(t, reg, nil, map[string]string{"r": `{"upstream":{"nodes":{"` + node + `":1}}}`})
	addr, release := proxyListener(t, rt)
	ln := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(netip.MustParseAddrPort(addr).Port())}
	has := func() bool {
		for _, s := range seriesOf(gather(t, rt)["apisix_stream_bandwidth_bytes_total"], "r") {
			if strings.Contains(s, "listen_addr="+addr) {
				return true
			}
		}
		return false
	}
	roundTrip(t, addr).Close()
	waitEnded(t, rt, "r", 1, 0)
	// a reload that keeps the listener: the new config holds it first
	again := rt.HoldListener(ln)
	release()
	if !has() {
		t.Fatal("a listener kept by a reload lost its series")
	}
	held := roundTrip(t, addr)
	again()
	if !has() {
		t.Fatal("the series of a removed listener went while a session held them")
	}
	held.Close()
	deadline := time.Now().Add(3 * time.Second)
	for has() {
		if time.Now().After(deadline) {
			t.Fatal("the series of a removed listener stayed after its sessions ended")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestStaleSeriesOfDeletedRouteSpareItsSuccessor: a session holding
// series whose listener went ends after its route was deleted and written
// again: the new route's series of the same labels stay.
func TestStaleSeriesOfDeletedRouteSpareItsSuccessor(t *testing.T) {
	rt, reg := compiledRegistry(t)
	local := netip.MustParseAddrPort("127.0.0.1:9")
	const node = "127.0.0.1:1"
	body := map[string]string{"r": `{"upstream":{"nodes":{"` + node + `":1}}}`}
	putAll(t, reg, nil, body)
	release := rt.HoldListener(net.TCPAddrFromAddrPort(local))
	old := rt.metrics.route("r")
	s := &session{}
	old.hold(s, local, node)
	release() // the listener goes; the session holds its series
	if err := reg.Update(func(tx *registry.Tx) error {
		_, err := tx.Delete(model.StreamRoutes, "r")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	putAll(t, reg, nil, body)
	rt.metrics.route("r").end(local, node).ok.Inc()
	old.release(s.em)
	if v := statusSum(gather(t, rt)["apisix_stream_status_total"], "r", "200"); v != 1 {
		t.Errorf("the route written again counts %v sessions on %s, want 1", v, node)
	}
}
