package proxy

import (
	"net/netip"
	"testing"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"
)

// A stored route (read from etcd, where another node may run plugins
// this build lacks) naming an unknown plugin is served with the plugins
// this build has, as APISIX skips the ones its node has not loaded.
func TestStoredUnknownPluginSkipped(t *testing.T) {
	rt := NewRuntime(nil)
	defer rt.Close()
	reg := registry.New()
	if err := reg.SetCompile(rt.Compile); err != nil {
		t.Fatal(err)
	}
	err := reg.Update(func(tx *registry.Tx) error {
		_, _, err := tx.Put(model.StreamRoutes, "1", []byte(`{"server_port":9100,"upstream":{"nodes":{"127.0.0.1:1995":1}},`+
			`"plugins":{"kafka-logger":{"broker_list":{}},"ip-restriction":{"whitelist":["10.0.0.0/8"]}}}`))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	snap := rt.Snapshot()
	r := snap.Match(snap.Query(netip.MustParseAddrPort("10.1.1.1:5000"), netip.MustParseAddrPort("127.0.0.1:9100"), ""))
	if r == nil || r.ID != "1" {
		t.Fatalf("match: %+v", r)
	}
	if len(r.prereaders) != 1 {
		t.Fatalf("%d prereaders, want ip-restriction's alone", len(r.prereaders))
	}
}
