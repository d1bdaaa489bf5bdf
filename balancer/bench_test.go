package balancer

import (
	"testing"
	"time"
)

// BenchmarkPick measures one Pick and Done on a 10-node upstream with a
// reused Context, as a connection handler does.
func BenchmarkPick(b *testing.B) {
	a := addrs(10)
	var nodes []Node
	for i, addr := range a {
		nodes = append(nodes, Node{Addr: addr, Weight: 1 + i%3})
	}
	for _, typ := range types {
		for _, withHealth := range []bool{false, true} {
			name := typ
			var h Health
			if withHealth {
				name += "/health"
				h = &fakeHealth{down: map[string]bool{a[3]: true}}
			}
			b.Run(name, func(b *testing.B) {
				bal := mustNew(b, typ, nodes, h)
				ctx := remoteCtx("127.0.0.1", 40000)
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
}
