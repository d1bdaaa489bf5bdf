package balancer

import (
	"fmt"
	"testing"
)

func TestRoundRobinDistribution(t *testing.T) {
	tests := []struct {
		name    string
		weights []int
		picks   int
		want    []int
	}{
		{"1:2:3", []int{1, 2, 3}, 6000, []int{1000, 2000, 3000}},
		{"equal", []int{1, 1, 1, 1}, 400, []int{100, 100, 100, 100}},
		{"large weights", []int{100, 300}, 4000, []int{1000, 3000}},
		{"weight 0 beside positive", []int{5, 0, 5}, 1000, []int{500, 0, 500}},
		{"all weight 0", []int{0, 0}, 100, []int{50, 50}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := addrs(len(tt.weights))
			var nodes []Node
			for i, w := range tt.weights {
				nodes = append(nodes, Node{Addr: a[i], Weight: w})
			}
			for _, typ := range []string{"", "roundrobin"} {
				b := mustNew(t, typ, nodes, nil)
				got := map[string]int{}
				ctx := &Context{}
				for range tt.picks {
					got[pickDone(t, b, ctx)]++
				}
				for i, w := range tt.want {
					if got[a[i]] != w {
						t.Errorf("type %q: node %d picked %d times, want %d (all %v)", typ, i, got[a[i]], w, got)
					}
				}
			}
		})
	}
}

// TestRoundRobinSmooth checks nginx's interleaving: weights 5:1:1 give
// a a b a c a a (at most four a in a row across cycles), not five a then
// b then c.
func TestRoundRobinSmooth(t *testing.T) {
	a := addrs(3)
	b := mustNew(t, "roundrobin", []Node{{Addr: a[0], Weight: 5}, {Addr: a[1], Weight: 1}, {Addr: a[2], Weight: 1}}, nil)
	ctx := &Context{}
	run := 0
	for i := range 700 {
		if pickDone(t, b, ctx) == a[0] {
			run++
		} else {
			run = 0
		}
		if run > 4 {
			t.Fatalf("pick %d: %d picks of the heavy node in a row", i, run)
		}
	}
}

func TestRoundRobinRandomStart(t *testing.T) {
	a := addrs(3)
	nodes := []Node{{Addr: a[0], Weight: 1}, {Addr: a[1], Weight: 1}, {Addr: a[2], Weight: 1}}
	first := map[string]int{}
	for range 300 {
		b := mustNew(t, "roundrobin", nodes, nil)
		first[pickDone(t, b, &Context{})]++
	}
	// Each node starts a third of the time; all three must show up.
	if len(first) != 3 {
		t.Fatalf("first picks over 300 instances: %v, want all 3 nodes", first)
	}
}

func TestRoundRobinRetrySkipsTried(t *testing.T) {
	a := addrs(3)
	b := mustNew(t, "roundrobin", []Node{{Addr: a[0], Weight: 10}, {Addr: a[1], Weight: 1}, {Addr: a[2], Weight: 1}}, nil)
	for round := range 20 {
		ctx := &Context{}
		seen := map[string]bool{}
		for range 3 {
			n, err := b.Pick(ctx)
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			if seen[n.Addr] {
				t.Fatalf("round %d: %s picked twice", round, n.Addr)
			}
			seen[n.Addr] = true
		}
		if n, err := b.Pick(ctx); err == nil {
			t.Fatalf("round %d: fourth pick %s", round, n.Addr)
		}
	}
}

func TestWeightZeroFallback(t *testing.T) {
	a := addrs(3)
	h := &fakeHealth{}
	nodes := []Node{{Addr: a[0], Weight: 3}, {Addr: a[1], Weight: 0}, {Addr: a[2], Weight: 1, Priority: -1}}
	for _, typ := range types {
		t.Run(typ, func(t *testing.T) {
			b := mustNew(t, typ, nodes, h)
			h.set(a[0], false)
			// The positive node was tried: the weight-0 node is not used,
			// the lower tier is.
			ctx := remoteCtx("127.0.0.1", 0)
			var got []string
			for {
				n, err := b.Pick(ctx)
				if err != nil {
					break
				}
				got = append(got, n.Addr)
			}
			if fmt.Sprint(got) != fmt.Sprint([]string{a[0], a[2]}) {
				t.Fatalf("healthy: picked %v", got)
			}
			// The positive node is down: the weight-0 node takes over.
			h.set(a[0], true)
			if got := pickDone(t, b, ctx); got != a[1] {
				t.Fatalf("positive node down: picked %s, want %s", got, a[1])
			}
		})
	}
}
