package adminapi

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"
	"github.com/caddy-apisix/stream/router"
)

func TestWarningsOnWrite(t *testing.T) {
	cfg := streamCfg()
	cfg.Listeners = []router.Listener{
		{Network: "tcp", Port: 9100},
		{Network: "tcp", Addr: netip.MustParseAddr("127.0.0.1"), Port: 9101},
	}
	cfg.LocalNets = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	e := newEnv(t, cfg)
	const up = `"upstream":` + upstreamBody
	steps := []struct {
		method, path, body string
		status             int
		want               []string // substrings, one per header value
	}{
		{"PUT", "/apisix/admin/stream_routes/1", `{"server_port":9101,` + up + `}`, http.StatusCreated, nil},
		{"PUT", "/apisix/admin/stream_routes/2", `{"server_addr":"127.0.0.1","server_port":9101,` + up + `}`, http.StatusCreated,
			[]string{"stream route 2 is shadowed by stream route 1 on every connection it could match"}},
		{"PUT", "/apisix/admin/stream_routes/3", `{"server_port":9999,` + up + `}`, http.StatusCreated,
			[]string{"stream route 3 can never match: no stream_proxy listener is on server_port 9999"}},
		{"PUT", "/apisix/admin/stream_routes/4", `{"server_addr":"127.0.0.2","server_port":9101,` + up + `}`, http.StatusCreated,
			[]string{"shadowed by stream route 1", "server_addr 127.0.0.2/32 is not an address a listener binds"}},
		// a changed route 1 stops shadowing 2 and 4
		{"PUT", "/apisix/admin/stream_routes/1", `{"remote_addr":"10.0.0.1","server_port":9101,` + up + `}`, http.StatusOK, nil},
		{"PUT", "/apisix/admin/stream_routes/2", `{"server_addr":"127.0.0.1","server_port":9101,` + up + `}`, http.StatusOK, nil},
		// a new route goes last: it shadows nothing, whatever its filters
		{"POST", "/apisix/admin/stream_routes", `{` + up + `}`, http.StatusCreated, nil},
		{"PUT", "/apisix/admin/stream_routes/1", `{` + up + `}`, http.StatusOK,
			[]string{"stream route 1 shadows stream route(s) 2, 3, 4, 00000000000000000007 on every connection they could match"}},
		{"GET", "/apisix/admin/stream_routes/3", ``, http.StatusOK, nil},
	}
	for _, s := range steps {
		r := e.must(s.status, s.method, s.path, s.body)
		got := r.header.Values(WarningHeader)
		if len(got) != len(s.want) {
			t.Fatalf("%s %s: warnings %q, want %q", s.method, s.path, got, s.want)
		}
		for i, w := range s.want {
			if !strings.Contains(got[i], w) {
				t.Errorf("%s %s: warning %q, want it to contain %q", s.method, s.path, got[i], w)
			}
		}
	}
	list := e.must(http.StatusOK, "GET", "/apisix/admin/stream_routes", "").header.Values(WarningHeader)
	want := []string{
		"stream route 2 is shadowed by stream route 1",
		"stream route 3 is shadowed by stream route 1",
		"stream route 3 can never match: no stream_proxy listener is on server_port 9999",
		"stream route 4 is shadowed by stream route 1",
		"stream route 4 can never match: server_addr",
		"stream route 00000000000000000007 is shadowed by stream route 1",
	}
	if len(list) != len(want) {
		t.Fatalf("list warnings %q, want %q", list, want)
	}
	for i := range want {
		if !strings.HasPrefix(list[i], want[i]) {
			t.Errorf("list warning %q, want prefix %q", list[i], want[i])
		}
	}
}

func TestNoReachWarningWithoutListeners(t *testing.T) {
	e := newEnv(t, streamCfg()) // Listeners nil: unknown
	r := e.must(http.StatusCreated, "PUT", "/apisix/admin/stream_routes/1", `{"server_port":9999,"upstream":`+upstreamBody+`}`)
	if got := r.header.Values(WarningHeader); len(got) != 0 {
		t.Fatalf("warnings %q, want none", got)
	}
}

// BenchmarkWarningsOnWrite is the cost the warnings add to one write with
// 10,000 routes present, none of them filtered by port.
func BenchmarkWarningsOnWrite(b *testing.B) {
	reg := registry.New()
	if err := reg.Open(newMemStore(), nil); err != nil {
		b.Fatal(err)
	}
	cfg := streamCfg()
	cfg.Listeners = []router.Listener{{Network: "tcp", Port: 9100}}
	for i := 0; i < 10000; i++ {
		v := fmt.Sprintf(`{"id":"%d","remote_addr":"10.%d.%d.1","upstream":{"nodes":{"127.0.0.1:1":1}}}`, i, i/250, i%250)
		if err := reg.Update(func(tx *registry.Tx) error {
			_, _, err := tx.Put(model.StreamRoutes, fmt.Sprint(i), []byte(v))
			return err
		}); err != nil {
			b.Fatal(err)
		}
	}
	st := NewState()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		reg.View(func(v registry.View) { _ = st.RouteWarnings(v, cfg, "5000") })
	}
}

// BenchmarkRouteWarnings is the analysis of one written stream route with
// n others stored (the propagation benchmark's shape: routes that differ
// in their remote address), as a write on the writing node runs it.
func BenchmarkRouteWarnings(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			reg := registry.New()
			err := reg.Update(func(tx *registry.Tx) error {
				for i := range n {
					v := fmt.Sprintf(`{"upstream_id":"u1","remote_addr":"10.%d.%d.%d"}`, i>>16&255, i>>8&255, i&255)
					if _, _, err := tx.Put(model.StreamRoutes, fmt.Sprintf("bulk%05d", i), []byte(v)); err != nil {
						return err
					}
				}
				_, _, err := tx.Put(model.StreamRoutes, "probe", []byte(`{"upstream_id":"u1"}`))
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
			cfg := streamCfg()
			st := NewState()
			b.ReportAllocs()
			for b.Loop() {
				reg.View(func(v registry.View) { st.RouteWarnings(v, cfg, "probe") })
			}
		})
	}
}
