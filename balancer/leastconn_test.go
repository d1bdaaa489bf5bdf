package balancer

import (
	"testing"
	"time"
)

func TestLeastConn(t *testing.T) {
	a := addrs(3)
	b := mustNew(t, "least_conn", []Node{{Addr: a[0], Weight: 1}, {Addr: a[1], Weight: 1}, {Addr: a[2], Weight: 1}}, nil)
	// Three open connections spread over the three nodes.
	open := map[string]*Node{}
	for range 3 {
		n, err := b.Pick(&Context{})
		if err != nil {
			t.Fatal(err)
		}
		if open[n.Addr] != nil {
			t.Fatalf("%s picked twice while others are idle", n.Addr)
		}
		open[n.Addr] = n
	}
	// Releasing one makes it the least loaded.
	b.Done(open[a[1]], time.Millisecond, false)
	for range 3 {
		n, err := b.Pick(&Context{})
		if err != nil {
			t.Fatal(err)
		}
		if n.Addr != a[1] {
			t.Fatalf("picked %s, want the released %s", n.Addr, a[1])
		}
		b.Done(n, time.Millisecond, false)
	}
}

func TestLeastConnWeighted(t *testing.T) {
	a := addrs(2)
	b := mustNew(t, "least_conn", []Node{{Addr: a[0], Weight: 1}, {Addr: a[1], Weight: 3}}, nil)
	got := map[string]int{}
	for range 400 {
		n, err := b.Pick(&Context{})
		if err != nil {
			t.Fatal(err)
		}
		got[n.Addr]++ // never released: counts are the active connections
	}
	// (active+1)/weight stays balanced: 100 and 300, give or take a tie.
	if got[a[0]] < 99 || got[a[0]] > 101 {
		t.Fatalf("active = %v, want about 100:300", got)
	}
}

// TestLeastConnReleaseOnRetry: a failed try released with Done does not
// keep counting against the node.
func TestLeastConnReleaseOnRetry(t *testing.T) {
	a := addrs(2)
	b := mustNew(t, "least_conn", []Node{{Addr: a[0], Weight: 1}, {Addr: a[1], Weight: 1}}, nil)
	for range 100 {
		ctx := &Context{}
		n1, _ := b.Pick(ctx)
		b.Done(n1, time.Millisecond, true)
		n2, err := b.Pick(ctx)
		if err != nil || n2 == n1 {
			t.Fatalf("retry: %v %v", n2, err)
		}
		b.Done(n2, time.Millisecond, false)
	}
	// Both idle again: two new connections go to different nodes.
	x, _ := b.Pick(&Context{})
	y, _ := b.Pick(&Context{})
	if x == y {
		t.Fatalf("both connections on %s: active counts leaked", x.Addr)
	}
}
