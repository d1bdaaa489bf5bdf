package proxy

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"
	"github.com/caddy-apisix/stream/router"
)

// gather registers rt's metrics in a fresh registry and gathers them by
// name.
func gather(t *testing.T, rt *Runtime) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := rt.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// seriesOf lists the label sets of the family's series whose route label
// is route.
func seriesOf(mf *dto.MetricFamily, route string) []string {
	var out []string
	for _, m := range mf.GetMetric() {
		var labels []string
		match := false
		for _, lp := range m.GetLabel() {
			labels = append(labels, lp.GetName()+"="+lp.GetValue())
			match = match || (lp.GetName() == "route" && lp.GetValue() == route)
		}
		if match {
			out = append(out, strings.Join(labels, ","))
		}
	}
	return out
}

// TestMetricsLint: the exposition passes Prometheus's lint (what
// `promtool check metrics` runs), and APISIX's names carry the same
// values as the clean companions.
func TestMetricsLint(t *testing.T) {
	rt, _ := newTestRuntime(t, map[string]string{"lint-route": `{"upstream":{"nodes":{"127.0.0.1:1":1}}}`}, nil)
	em := rt.metrics.route("lint-route").end(netip.MustParseAddrPort("127.0.0.1:9"), "127.0.0.1:1")
	em.ok.Add(3)
	em.fromClient.Add(42)
	reg := prometheus.NewPedanticRegistry()
	if err := rt.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	mfs := gather(t, rt)
	for apisix, clean := range map[string]string{"apisix_stream_status": "apisix_stream_status_total", "apisix_stream_bandwidth": "apisix_stream_bandwidth_bytes_total"} {
		a, c := mfs[apisix], mfs[clean]
		if a == nil || c == nil {
			t.Fatalf("missing %s or %s", apisix, clean)
		}
		if a.GetType() != dto.MetricType_UNTYPED || c.GetType() != dto.MetricType_COUNTER {
			t.Errorf("%s is %v, %s is %v; want untyped and counter", apisix, a.GetType(), clean, c.GetType())
		}
		if got, want := seriesOf(a, "lint-route"), seriesOf(c, "lint-route"); strings.Join(got, ";") != strings.Join(want, ";") {
			t.Errorf("%s series %v, %s series %v", apisix, got, clean, want)
		}
		sum := func(mf *dto.MetricFamily) (s float64) {
			for _, m := range mf.GetMetric() {
				s += m.GetUntyped().GetValue() + m.GetCounter().GetValue()
			}
			return s
		}
		if sum(a) != sum(c) {
			t.Errorf("%s sums to %v, %s to %v", apisix, sum(a), clean, sum(c))
		}
	}
}

// TestRouteSeriesRemovedWithRoute: deleting a route removes its series,
// and a session of the deleted route that ends later does not bring them
// back; the other routes keep theirs.
func TestRouteSeriesRemovedWithRoute(t *testing.T) {
	body := `{"upstream":{"nodes":{"127.0.0.1:1":1}}}`
	rt, reg := newTestRuntime(t, map[string]string{"doomed": body, "kept": body}, nil)
	local := netip.MustParseAddrPort("127.0.0.1:9")
	doomed := rt.metrics.route("doomed")
	doomed.connections.Inc()
	doomed.end(local, "127.0.0.1:1").ok.Inc()
	rt.metrics.route("kept").end(local, "127.0.0.1:1").ok.Inc()
	if got := seriesOf(gather(t, rt)["apisix_stream_status_total"], "doomed"); len(got) != 3 {
		t.Fatalf("before the delete: %v, want the 200, 502 and 503 series", got)
	}
	if err := reg.Update(func(tx *registry.Tx) error {
		_, err := tx.Delete(model.StreamRoutes, "doomed")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// a session still running on the deleted route ends now
	doomed.end(local, "127.0.0.1:2").failed.Inc()
	doomed.status(403, doomed.end(local, "127.0.0.1:1"))
	mfs := gather(t, rt)
	for name, mf := range mfs {
		if got := seriesOf(mf, "doomed"); len(got) > 0 {
			t.Errorf("%s still has the deleted route's series %v", name, got)
		}
	}
	if got := seriesOf(mfs["apisix_stream_status_total"], "kept"); len(got) != 3 {
		t.Errorf("the kept route's series: %v", got)
	}
	// the same id written again starts from zero
	putAll(t, reg, nil, map[string]string{"doomed": body})
	if rm := rt.metrics.route("doomed"); rm == doomed || testutil.ToFloat64(rm.connections) != 0 {
		t.Errorf("the route written again reuses the deleted one's series")
	}
}

// TestStaticHandlerSeries: a layer4.handlers.apisix_proxy upstream labels
// its sessions by its name, and its series stay until the last handler of
// that name closes.
func TestStaticHandlerSeries(t *testing.T) {
	u, err := model.ParseUpstream([]byte(`{"nodes":{"127.0.0.1:1":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	rt := NewRuntime(nil)
	a, err := rt.NewStaticUpstream(u, []byte(`{"nodes":{"127.0.0.1:1":1}}`), "static-x", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := rt.NewStaticUpstream(u, []byte(`{"nodes":{"127.0.0.1:1":1}}`), "apisix_proxy/static-x", nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.static.ID != "apisix_proxy/static-x" || a.static.metrics.label != "apisix_proxy/static-x" || a.ID() != "apisix_proxy/static-x" {
		t.Fatalf("route %q, label %q, upstream %q; want apisix_proxy/static-x", a.static.ID, a.static.metrics.label, a.ID())
	}
	a.static.metrics.connections.Inc()
	a.Close()
	a.Close() // twice is once
	if got := seriesOf(gather(t, rt)["apisix_stream_connection_total"], "apisix_proxy/static-x"); len(got) != 1 {
		t.Fatalf("with one handler left: %v", got)
	}
	b.Close()
	if got := seriesOf(gather(t, rt)["apisix_stream_connection_total"], "apisix_proxy/static-x"); len(got) != 0 {
		t.Fatalf("after the last handler: %v", got)
	}
}

// TestStaticHandlerApartFromRoutes: a handler named as a live route's id,
// or as a prefer_name route's name, keeps series of its own, and closing
// it leaves the route's.
func TestStaticHandlerApartFromRoutes(t *testing.T) {
	rt, _ := newTestRuntime(t, map[string]string{
		"redis": `{"upstream":{"nodes":{"127.0.0.1:1":1}}}`,
		"named": `{"name":"apisix_proxy/cache","plugins":{"prometheus":{"prefer_name":true}},"upstream":{"nodes":{"127.0.0.1:1":1}}}`,
	}, nil)
	routes := map[string]*Route{}
	rt.Snapshot().table.Each(func(e *router.Entry[*Route]) { routes[e.Target.ID] = e.Target })
	if got := routes["named"].metrics.label; got != "named" {
		t.Fatalf("a prefer_name name in the handlers' label space labels the route %q, want its id", got)
	}
	u, err := model.ParseUpstream([]byte(`{"nodes":{"127.0.0.1:1":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"redis", "cache"} {
		h, err := rt.NewStaticUpstream(u, []byte(`{"nodes":{"127.0.0.1:1":1}}`), name, nil)
		if err != nil {
			t.Fatal(err)
		}
		if h.static.metrics == routes["redis"].metrics || h.static.metrics == routes["named"].metrics {
			t.Fatalf("handler %q shares a route's series", name)
		}
		h.static.metrics.connections.Inc()
		h.Close()
	}
	routes["redis"].metrics.connections.Inc()
	routes["named"].metrics.connections.Inc()
	mf := gather(t, rt)["apisix_stream_connection_total"]
	for _, label := range []string{"redis", "named"} {
		if got := seriesOf(mf, label); len(got) != 1 {
			t.Errorf("route %s after its namesake handler closed: %v", label, got)
		}
	}
}
