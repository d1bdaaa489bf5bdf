package health

import (
	"net/netip"

	"fmt"
	"github.com/caddy-apisix/stream/vars"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/balancer"
)

// BenchmarkPickWithChecker measures a balancer Pick and Done that consults
// a Checker (10 nodes, one unhealthy).
func BenchmarkPickWithChecker(b *testing.B) {
	var addrs []string
	var nodes []balancer.Node
	for i := range 10 {
		a := fmt.Sprintf("127.0.0.%d:80", i+1)
		addrs = append(addrs, a)
		nodes = append(nodes, balancer.Node{Addr: a, Weight: 1 + i%3})
	}
	c, err := NewChecker(checks(b, `{"active":{"type":"tcp"},"passive":{}}`), addrs, "1", nil)
	if err != nil {
		b.Fatal(err)
	}
	c.ReportFailure(addrs[3], false)
	c.ReportFailure(addrs[3], false)
	for _, typ := range []string{"roundrobin", "chash", "least_conn", "ewma"} {
		b.Run(typ, func(b *testing.B) {
			bal, err := balancer.New(typ, "vars", "remote_addr", nodes, c)
			if err != nil {
				b.Fatal(err)
			}
			ctx := &balancer.Context{Vars: &vars.Set{Remote: netip.MustParseAddrPort("127.0.0.1:0")}}
			b.ReportAllocs()
			for b.Loop() {
				ctx.Reset()
				n, err := bal.Pick(ctx)
				if err != nil {
					b.Fatal(err)
				}
				bal.Done(n, time.Millisecond, false)
			}
		})
	}
}
