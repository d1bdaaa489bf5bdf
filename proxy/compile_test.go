package proxy

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/caddy-apisix/stream/internal/testcert"
	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"
)

// BenchmarkCompile measures a snapshot rebuild after one change with
// 10,000 stream routes present: the cost every Admin API write pays.
func BenchmarkCompile(b *testing.B) {
	rt := NewRuntime(nil)
	defer rt.Close()
	reg := registry.New()
	if err := reg.SetCompile(rt.Compile); err != nil {
		b.Fatal(err)
	}
	err := reg.Update(func(tx *registry.Tx) error {
		if _, _, err := tx.Put(model.Upstreams, "1", []byte(`{"nodes":{"127.0.0.1:1995":1},"type":"roundrobin"}`)); err != nil {
			return err
		}
		for i := range 10000 {
			body := fmt.Sprintf(`{"server_port":%d,"upstream_id":"1"}`, 10000+i%50000)
			if i%2 == 0 {
				body = fmt.Sprintf(`{"remote_addr":"10.%d.%d.0/24","upstream":{"nodes":{"127.0.0.1:%d":1}}}`, i/256, i%256, 2000+i%1000)
			}
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
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		err := reg.Update(func(tx *registry.Tx) error {
			_, _, err := tx.Put(model.StreamRoutes, "new", []byte(fmt.Sprintf(`{"server_port":%d,"upstream_id":"1"}`, 1+i%60000)))
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// An upstream whose client certificate comes from an SSL object presents
// the new certificate once that object is rotated, though the upstream's
// own JSON did not change.
func TestClientCertRotation(t *testing.T) {
	sslBody := func(cn string) []byte {
		c, k := testcert.SelfSigned(t, cn)
		b, _ := json.Marshal(map[string]string{"type": "client", "cert": c, "key": k})
		return b
	}
	rt, reg := newTestRuntime(t, nil, nil)
	put := func(kind model.Kind, id string, body []byte) {
		t.Helper()
		if err := reg.Update(func(tx *registry.Tx) error { _, _, err := tx.Put(kind, id, body); return err }); err != nil {
			t.Fatal(err)
		}
	}
	put(model.SSLs, "c", sslBody("one.test"))
	put(model.Upstreams, "u", []byte(`{"scheme":"tls","nodes":{"127.0.0.1:1":1},"tls":{"client_cert_id":"c"}}`))
	put(model.StreamRoutes, "r", []byte(`{"upstream":{"scheme":"tls","nodes":{"127.0.0.1:1":1},"tls":{"client_cert_id":"c"}}}`))
	cn := func(u *Upstream) string {
		leaf, err := x509.ParseCertificate(u.clientCert.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf.Subject.CommonName
	}
	inline := func() *Upstream { return rt.Snapshot().table.Get("r").Target.Upstream }
	if got := cn(rt.Snapshot().upstreams["u"]); got != "one.test" {
		t.Fatalf("before: %s", got)
	}
	put(model.SSLs, "c", sslBody("two.test"))
	if got := cn(rt.Snapshot().upstreams["u"]); got != "two.test" {
		t.Errorf("upstream object after rotation: %s", got)
	}
	if got := cn(inline()); got != "two.test" {
		t.Errorf("inline upstream after rotation: %s", got)
	}
}

// A traffic-split instance reused across snapshots keeps its inline
// upstreams in the runtime's set: when its configuration later changes
// and it is rebuilt, an inline upstream whose JSON did not change is the
// same compiled upstream, balancer state and all.
func TestTrafficSplitInlineUpstreamsSurviveReuse(t *testing.T) {
	rt := NewRuntime(nil)
	defer rt.Close()
	reg := registry.New()
	if err := reg.SetCompile(rt.Compile); err != nil {
		t.Fatal(err)
	}
	put := func(own string, rules string) {
		t.Helper()
		body := fmt.Sprintf(`{"server_port":9,"upstream":{"nodes":{%q:1}},"plugins":{"traffic-split":{"rules":[%s]}}}`, own, rules)
		if err := reg.Update(func(tx *registry.Tx) error {
			_, _, err := tx.Put(model.StreamRoutes, "r", []byte(body))
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	const key = "stream_routes/r/traffic-split/0/0"
	rule0 := `{"weighted_upstreams":[{"upstream":{"type":"roundrobin","nodes":{"127.0.0.1:7001":1,"127.0.0.1:7002":1}},"weight":1}]}`
	put("127.0.0.1:7000", rule0)
	first := rt.upstreams[key]
	if first == nil {
		t.Fatalf("no inline upstream %s after the first compile", key)
	}
	// the route's own upstream changes: the plugin instance is reused
	put("127.0.0.1:7003", rule0)
	if rt.upstreams[key] != first {
		t.Errorf("after a change that reused the plugin, the runtime holds %p for %s, want the instance's %p", rt.upstreams[key], key, first)
	}
	// a second rule: the plugin is rebuilt, rule 0's upstream is the same
	put("127.0.0.1:7003", rule0+`,{"match":[{"vars":[["remote_addr","==","10.0.0.1"]]}],"weighted_upstreams":[{"weight":1}]}`)
	if got := rt.upstreams[key]; got != first {
		t.Errorf("after the plugin was rebuilt, %s is a new compiled upstream (%p, was %p): its balancer state is lost", key, got, first)
	}
}
