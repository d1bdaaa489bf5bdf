package balancer

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/caddy-apisix/stream/vars"
)

// remoteCtx is a Context whose client is ip:port.
func remoteCtx(ip string, port int) *Context {
	return &Context{Vars: &vars.Set{Remote: netip.AddrPortFrom(netip.MustParseAddr(ip), uint16(port))}}
}

func chashNodes(n int) []Node {
	var nodes []Node
	for i, a := range addrs(n) {
		nodes = append(nodes, Node{Addr: a, Weight: 1 + i%2})
	}
	return nodes
}

func newCHash(t testing.TB, hashOn, key string, nodes []Node, h Health) Balancer {
	t.Helper()
	b, err := New("chash", hashOn, key, nodes, h)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func clientCtx(i int) *Context {
	return remoteCtx(fmt.Sprintf("127.%d.%d.%d", i>>16&255, i>>8&255, i&255), 40000+i%1000)
}

func TestCHashSticky(t *testing.T) {
	nodes := chashNodes(5)
	b1 := newCHash(t, "vars", "remote_addr", nodes, nil)
	b2 := newCHash(t, "", "remote_addr", nodes, nil)
	for i := range 1000 {
		ctx := clientCtx(i)
		first := pickDone(t, b1, ctx)
		for range 3 {
			if got := pickDone(t, b1, ctx); got != first {
				t.Fatalf("key %s: %s then %s", ctx.Vars.Remote, first, got)
			}
		}
		// Another instance built from the same nodes agrees.
		if got := pickDone(t, b2, ctx); got != first {
			t.Fatalf("key %s: instance 1 %s, instance 2 %s", ctx.Vars.Remote, first, got)
		}
	}
}

func TestCHashMinimalMovement(t *testing.T) {
	const keys = 4000
	before := newCHash(t, "vars", "remote_addr", chashNodes(4), nil)
	grown := chashNodes(5)
	after := newCHash(t, "vars", "remote_addr", grown, nil)
	moved := 0
	for i := range keys {
		ctx := clientCtx(i)
		x, y := pickDone(t, before, ctx), pickDone(t, after, ctx)
		if x != y {
			moved++
			if y != grown[4].Addr {
				t.Fatalf("key %s moved from %s to the old node %s", ctx.Vars.Remote, x, y)
			}
		}
	}
	// The new node has weight 1 of 8: about 1/8 of the keys move to it.
	if moved == 0 || moved > keys/4 {
		t.Fatalf("%d of %d keys moved, want about %d", moved, keys, keys/8)
	}
}

func TestCHashWeighted(t *testing.T) {
	a := addrs(2)
	b := newCHash(t, "vars", "remote_addr", []Node{{Addr: a[0], Weight: 1}, {Addr: a[1], Weight: 3}}, nil)
	got := map[string]int{}
	const keys = 8000
	for i := range keys {
		got[pickDone(t, b, clientCtx(i))]++
	}
	// Expect 25% / 75%; allow the ring's spread.
	if share := float64(got[a[1]]) / keys; share < 0.65 || share > 0.85 {
		t.Fatalf("weight 3 node got %.2f of the keys, want about 0.75 (%v)", share, got)
	}
}

func TestCHashKeys(t *testing.T) {
	nodes := chashNodes(7)
	byRemote := newCHash(t, "vars", "remote_addr", nodes, nil)
	withVar := func(c *Context, name, value string) *Context {
		c.Vars.Put(name, value)
		return c
	}
	tests := []struct {
		name, hashOn, key string
		ctx               func(i int) *Context
		// same: the key reduces to remote_addr
		same bool
	}{
		{"mqtt id missing", "vars", "mqtt_client_id", func(i int) *Context { return clientCtx(i) }, true},
		{"mqtt id empty", "vars", "mqtt_client_id", func(i int) *Context {
			return withVar(clientCtx(i), "mqtt_client_id", "")
		}, true},
		{"arg in stream", "vars", "arg_id", func(i int) *Context { return clientCtx(i) }, true},
		{"no sni", "vars", "server_name", func(i int) *Context { return clientCtx(i) }, true},
		{"header", "header", "x-id", func(i int) *Context { return clientCtx(i) }, true},
		{"consumer", "consumer", "", func(i int) *Context { return clientCtx(i) }, true},
		{"combination unresolved", "vars_combinations", "$mqtt_client_id${arg_x}", func(i int) *Context { return clientCtx(i) }, true},
		{"combination literal only", "vars_combinations", "static", func(i int) *Context { return clientCtx(i) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newCHash(t, tt.hashOn, tt.key, nodes, nil)
			for i := range 300 {
				if x, y := pickDone(t, b, tt.ctx(i)), pickDone(t, byRemote, tt.ctx(i)); x != y {
					t.Fatalf("key %d: %s, remote_addr gives %s", i, x, y)
				}
			}
		})
	}

	// A resolved key depends on its value only.
	mqtt := newCHash(t, "vars", "mqtt_client_id", nodes, nil)
	combo := newCHash(t, "vars_combinations", "${mqtt_client_id}", nodes, nil)
	differs := 0
	for i := range 300 {
		id := fmt.Sprintf("client-%d", i)
		c1, c2 := clientCtx(i), clientCtx(i+1000)
		withVar(c1, "mqtt_client_id", id)
		withVar(c2, "mqtt_client_id", id)
		x := pickDone(t, mqtt, c1)
		if y := pickDone(t, mqtt, c2); y != x {
			t.Fatalf("id %s: %s from one client, %s from another", id, x, y)
		}
		if y := pickDone(t, combo, c2); y != x {
			t.Fatalf("id %s: vars %s, vars_combinations %s", id, x, y)
		}
		if pickDone(t, byRemote, c1) != x {
			differs++
		}
	}
	if differs == 0 {
		t.Fatal("mqtt_client_id keys map like remote_addr")
	}

	// Every variable of a combination takes part.
	both := newCHash(t, "vars_combinations", "$remote_addr:$server_port", nodes, nil)
	seen := map[string]bool{}
	for port := range 50 {
		c := &Context{Vars: &vars.Set{Remote: netip.MustParseAddrPort("127.0.0.1:1"), Local: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), uint16(9000+port))}}
		seen[pickDone(t, both, c)] = true
	}
	if len(seen) < 2 {
		t.Fatalf("50 server ports all map to %v", seen)
	}
}

func TestCHashRetryWalksRing(t *testing.T) {
	nodes := chashNodes(6)
	h := &fakeHealth{}
	b := newCHash(t, "vars", "remote_addr", nodes, h)
	for i := range 200 {
		// The order of tries is fixed per key.
		var order []string
		ctx := clientCtx(i)
		for range len(nodes) {
			n, err := b.Pick(ctx)
			if err != nil {
				t.Fatalf("key %d: %v", i, err)
			}
			order = append(order, n.Addr)
		}
		if _, err := b.Pick(ctx); err == nil {
			t.Fatalf("key %d: a seventh node", i)
		}
		ctx.Reset()
		for k, want := range order {
			if n, _ := b.Pick(ctx); n.Addr != want {
				t.Fatalf("key %d try %d: %s, before %s", i, k, n.Addr, want)
			}
		}
		// An unhealthy first choice gives the second choice.
		h.set(order[0], true)
		if got := pickDone(t, b, ctx); got != order[1] {
			t.Fatalf("key %d: first choice down: %s, want %s", i, got, order[1])
		}
		h.set(order[0], false)
	}
}
