package etcdstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/caddy-apisix/stream/adminapi"
	"github.com/caddy-apisix/stream/proxy"
	"github.com/caddy-apisix/stream/registry"
)

// BenchmarkFullReload is the full resync a compaction or an etcd restart
// causes, with 10,000 stream routes in a real etcd: one range read,
// decoding and schema checks, the diff by modifiedIndex and the data
// path's compile. "changed" replaces every object (a first load);
// "unchanged" finds every modifiedIndex equal and keeps them.
//
//	go test ./etcdstore/ -run '^$' -bench FullReload -benchtime 5x
func BenchmarkFullReload(b *testing.B) {
	url := startEtcdB(b)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{url}, Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()
	if _, err := cli.Put(ctx, "/apisix/upstreams/u1", `{"type":"roundrobin","nodes":{"127.0.0.1:1":1}}`); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 10000; {
		var ops []clientv3.Op
		for ; i < 10000 && len(ops) < 100; i++ {
			ops = append(ops, clientv3.OpPut(fmt.Sprintf("/apisix/stream_routes/r%05d", i),
				fmt.Sprintf(`{"upstream_id":"u1","remote_addr":"10.%d.%d.%d"}`, i>>16&255, i>>8&255, i&255)))
		}
		if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			b.Fatal(err)
		}
	}
	cfg := &Config{Host: Hosts{url}}
	_ = cfg.Validate()
	for _, mode := range []string{"changed", "unchanged"} {
		b.Run(mode, func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				st, _ := New(Options{Config: cfg, Check: adminapi.CheckStored, ReadOnly: true})
				st.manual = true
				reg := registry.New()
				rt := proxy.NewRuntime(nil)
				_ = reg.OpenShared(st, rt.Compile, time.Millisecond)
				c, err := st.connect()
				if err != nil {
					b.Fatal(err)
				}
				if mode == "unchanged" {
					if _, _, err := st.load(reg, c); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				if _, _, err := st.load(reg, c); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				st.Close()
				_ = c.Close()
				rt.Close()
			}
		})
	}
}
