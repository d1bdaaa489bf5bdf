package balancer

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// fakeHealth is a Health with a fixed set of unhealthy addresses.
type fakeHealth struct {
	mu   sync.Mutex
	down map[string]bool
}

func (f *fakeHealth) Healthy(addr string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.down[addr]
}

func (f *fakeHealth) set(addr string, down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down == nil {
		f.down = map[string]bool{}
	}
	f.down[addr] = down
}

var types = []string{"roundrobin", "chash", "least_conn", "ewma"}

func mustNew(t testing.TB, typ string, nodes []Node, h Health) Balancer {
	t.Helper()
	hashOn, key := "", ""
	if typ == "chash" {
		hashOn, key = "vars", "remote_addr"
	}
	b, err := New(typ, hashOn, key, nodes, h)
	if err != nil {
		t.Fatalf("New(%s): %v", typ, err)
	}
	return b
}

// pickDone picks one node for a fresh connection and ends it at once.
func pickDone(t testing.TB, b Balancer, ctx *Context) string {
	t.Helper()
	ctx.Reset()
	n, err := b.Pick(ctx)
	if err != nil {
		t.Fatalf("Pick: %v", err)
	}
	b.Done(n, time.Millisecond, false)
	return n.Addr
}

func TestNewErrors(t *testing.T) {
	ok := []Node{{Addr: "127.0.0.1:1", Weight: 1}}
	tests := []struct {
		name, typ, hashOn, key string
		nodes                  []Node
		want                   string
	}{
		{"bad hash_on", "chash", "body", "x", ok, "invalid hash_on: body"},
		{"negative weight", "", "", "", []Node{{Addr: "127.0.0.1:1", Weight: -1}}, "node 127.0.0.1:1: invalid weight -1"},
		{"empty address", "", "", "", []Node{{Weight: 1}}, "node 0: empty address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.typ, tt.hashOn, tt.key, tt.nodes, nil)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	for _, typ := range []string{"", "roundrobin", "chash", "least_conn", "ewma"} {
		if _, err := New(typ, "consumer", "", ok, nil); err != nil {
			t.Errorf("New(%q): %v", typ, err)
		}
	}
}

// TestSchemaOnlyUpstreams: what a stream route's schema-only inline
// upstream may hold (apisix/admin/stream_routes.lua) builds, and fails or
// falls back where APISIX does at pick time.
func TestSchemaOnlyUpstreams(t *testing.T) {
	two := []Node{{Addr: "127.0.0.1:1", Weight: 1}, {Addr: "127.0.0.1:2", Weight: 1}}
	tests := []struct {
		name, typ, hashOn, key string
		nodes                  []Node
		wantErr                string // "" means Pick succeeds
	}{
		{"unknown type, two nodes", "random", "", "", two, "invalid balancer type: random"},
		{"unknown type, one node", "random", "", "", two[:1], ""},
		{"chash without key", "chash", "vars", "", two, ""},
		{"chash combinations without key", "chash", "vars_combinations", "", two, ""},
		{"chash header without key", "chash", "header", "", two, ""},
		{"chash key outside the vars pattern", "chash", "vars", "no_such_var", two, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := New(tt.typ, tt.hashOn, tt.key, tt.nodes, nil)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			n, err := b.Pick(remoteCtx("10.0.0.1", 1))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Pick: %v", err)
			case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
				t.Fatalf("Pick: %v, want %q", err, tt.wantErr)
			}
			if tt.typ != "chash" || n == nil {
				return
			}
			// no key value: the node is remote_addr's, every time
			for range 5 {
				m, err := b.Pick(remoteCtx("10.0.0.1", 1))
				if err != nil || m.Addr != n.Addr {
					t.Fatalf("Pick again: %v %v, want %s", m, err, n.Addr)
				}
			}
		})
	}
}

func TestEmptyNodes(t *testing.T) {
	for _, typ := range types {
		b := mustNew(t, typ, nil, nil)
		if _, err := b.Pick(&Context{}); !errors.Is(err, ErrNoNode) {
			t.Errorf("%s: err = %v, want ErrNoNode", typ, err)
		}
	}
	if ErrNoNode.Error() != "no valid upstream node" {
		t.Errorf("ErrNoNode = %q", ErrNoNode)
	}
}

func TestSingleNode(t *testing.T) {
	h := &fakeHealth{}
	h.set("127.0.0.1:1", true)
	nodes := []Node{{Addr: "127.0.0.1:1", Weight: 0}}
	for _, typ := range []string{"roundrobin", "chash", "ewma"} {
		b := mustNew(t, typ, nodes, h)
		ctx := remoteCtx("127.0.0.1", 0)
		for i := range 3 {
			n, err := b.Pick(ctx)
			if err != nil || n.Addr != "127.0.0.1:1" {
				t.Fatalf("%s pick %d: %v %v", typ, i, n, err)
			}
		}
		if ctx.Tries() != 3 {
			t.Errorf("%s: Tries = %d, want 3", typ, ctx.Tries())
		}
	}
	// least_conn has no single-node shortcut: a tried node is not retried.
	b := mustNew(t, "least_conn", nodes, h)
	ctx := &Context{}
	if n, err := b.Pick(ctx); err != nil || n.Addr != "127.0.0.1:1" {
		t.Fatalf("least_conn first pick: %v %v", n, err)
	}
	if _, err := b.Pick(ctx); !errors.Is(err, ErrNoNode) {
		t.Fatalf("least_conn second pick: err = %v, want ErrNoNode", err)
	}
}

func addrs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("127.0.0.%d:%d", i+1, 1000+i)
	}
	return out
}

func TestPriorityTiers(t *testing.T) {
	a := addrs(5)
	nodes := []Node{
		{Addr: a[0], Weight: 1, Priority: 0},
		{Addr: a[1], Weight: 1, Priority: 1},
		{Addr: a[2], Weight: 1, Priority: -1},
		{Addr: a[3], Weight: 1, Priority: 1},
		{Addr: a[4], Weight: 1, Priority: 0},
	}
	// Each tier in order, every node once, then nothing.
	tiers := []map[string]bool{{a[1]: true, a[3]: true}, {a[0]: true, a[4]: true}, {a[2]: true}}
	for _, typ := range types {
		t.Run(typ, func(t *testing.T) {
			b := mustNew(t, typ, nodes, nil)
			for round := range 5 {
				ctx := remoteCtx(fmt.Sprintf("127.0.1.%d", round), 0)
				for ti, tier := range tiers {
					seen := map[string]bool{}
					for range tier {
						n, err := b.Pick(ctx)
						if err != nil {
							t.Fatalf("tier %d: %v", ti, err)
						}
						if !tier[n.Addr] || seen[n.Addr] {
							t.Fatalf("tier %d: picked %s, seen %v", ti, n.Addr, seen)
						}
						seen[n.Addr] = true
						b.Done(n, time.Millisecond, true)
					}
				}
				if n, err := b.Pick(ctx); !errors.Is(err, ErrNoNode) {
					t.Fatalf("after all tiers: %v %v", n, err)
				}
			}
		})
	}
}

func TestHealthFilter(t *testing.T) {
	a := addrs(3)
	nodes := []Node{{Addr: a[0], Weight: 1}, {Addr: a[1], Weight: 1}, {Addr: a[2], Weight: 1, Priority: 1}}
	for _, typ := range types {
		t.Run(typ, func(t *testing.T) {
			h := &fakeHealth{}
			b := mustNew(t, typ, nodes, h)
			ctx := remoteCtx("127.0.0.9", 0)
			// The top tier is down: the next tier serves, skipping a[0].
			h.set(a[2], true)
			h.set(a[0], true)
			for range 50 {
				if got := pickDone(t, b, ctx); got != a[1] {
					t.Fatalf("picked %s, want %s", got, a[1])
				}
			}
			// All down: every node is used again, top tier first.
			h.set(a[1], true)
			ctx.Reset()
			seen := map[string]bool{}
			for range 3 {
				n, err := b.Pick(ctx)
				if err != nil {
					t.Fatal(err)
				}
				seen[n.Addr] = true
			}
			if len(seen) != 3 {
				t.Fatalf("all unhealthy: picked %v, want all 3", seen)
			}
		})
	}
}

func TestContextAcrossBalancers(t *testing.T) {
	nodes := []Node{{Addr: "127.0.0.1:1", Weight: 1}, {Addr: "127.0.0.1:2", Weight: 1}}
	b1 := mustNew(t, "roundrobin", nodes, nil)
	b2 := mustNew(t, "roundrobin", nodes, nil)
	ctx := &Context{}
	for range 2 {
		if _, err := b1.Pick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b1.Pick(ctx); !errors.Is(err, ErrNoNode) {
		t.Fatalf("b1 exhausted: err = %v", err)
	}
	// A new upstream version starts with nothing tried.
	if _, err := b2.Pick(ctx); err != nil {
		t.Fatalf("b2: %v", err)
	}
	// Done with a node of another balancer is ignored.
	n, _ := b2.Pick(ctx)
	b1.Done(n, 0, false)
	b1.Done(nil, 0, false)
	b1.Done(&Node{Addr: "127.0.0.1:1", idx: 5}, 0, false)
}

func TestConcurrentPicks(t *testing.T) {
	a := addrs(4)
	nodes := []Node{{Addr: a[0], Weight: 1}, {Addr: a[1], Weight: 2}, {Addr: a[2], Weight: 3, Priority: 1}, {Addr: a[3], Weight: 0}}
	for _, typ := range types {
		t.Run(typ, func(t *testing.T) {
			h := &fakeHealth{}
			b := mustNew(t, typ, nodes, h)
			var wg sync.WaitGroup
			for g := range 4 {
				wg.Go(func() {
					ctx := remoteCtx(fmt.Sprintf("127.0.2.%d", g), 0)
					for i := range 500 {
						if g == 0 && i%50 == 0 {
							h.set(a[2], i%100 == 0)
						}
						ctx.Reset()
						for {
							n, err := b.Pick(ctx)
							if err != nil {
								break
							}
							if n.Addr == a[3] {
								t.Errorf("picked the weight-0 node %s", n.Addr)
							}
							b.Done(n, time.Duration(i)*time.Microsecond, i%7 == 0)
						}
						// a[2] may be down (2 tries) or up (3); a[3] has
						// weight 0 and is never reached.
						if n := ctx.Tries(); n != 2 && n != 3 {
							t.Errorf("tries = %d, want 2 or 3", n)
							return
						}
					}
				})
			}
			wg.Wait()
		})
	}
}

// TestManyNodes covers upstreams beyond the 256 nodes kept inline.
func TestManyNodes(t *testing.T) {
	var nodes []Node
	for i := range 300 {
		nodes = append(nodes, Node{Addr: fmt.Sprintf("127.0.%d.%d:80", i/250, i%250+1), Weight: 1})
	}
	down := nodes[290].Addr
	for _, typ := range types {
		t.Run(typ, func(t *testing.T) {
			h := &fakeHealth{}
			h.set(down, true)
			b := mustNew(t, typ, nodes, h)
			ctx := remoteCtx("127.0.0.1", 0)
			seen := map[string]bool{}
			for range len(nodes) {
				n, err := b.Pick(ctx)
				if err != nil {
					break
				}
				if seen[n.Addr] || n.Addr == down {
					t.Fatalf("picked %s again or while down", n.Addr)
				}
				seen[n.Addr] = true
			}
			if len(seen) != len(nodes)-1 {
				t.Fatalf("picked %d distinct nodes, want %d", len(seen), len(nodes)-1)
			}
			if _, err := b.Pick(ctx); !errors.Is(err, ErrNoNode) {
				t.Fatalf("err = %v, want ErrNoNode", err)
			}
		})
	}
}
