package proxy

import (
	"fmt"
	"testing"

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
