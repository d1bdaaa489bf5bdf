package balancer

import (
	"testing"
	"time"
)

// newEWMA returns an ewma balancer with a clock the test moves.
func newEWMA(t *testing.T, nodes []Node) (*balancer, *int64) {
	t.Helper()
	b := mustNew(t, "ewma", nodes, nil).(*balancer)
	now := new(int64)
	*now = 1
	b.ewma.clock = func() int64 { return *now }
	return b, now
}

func TestEWMAPrefersFaster(t *testing.T) {
	a := addrs(2)
	b, now := newEWMA(t, []Node{{Addr: a[0], Weight: 1}, {Addr: a[1], Weight: 1}})
	rtt := map[string]time.Duration{a[0]: 20 * time.Millisecond, a[1]: time.Millisecond}
	got := map[string]int{}
	for range 200 {
		*now += int64(10 * time.Millisecond)
		n, err := b.Pick(&Context{})
		if err != nil {
			t.Fatal(err)
		}
		got[n.Addr]++
		b.Done(n, rtt[n.Addr], false)
	}
	// Both are tried once while unknown, then the fast one wins.
	if got[a[1]] < 190 {
		t.Fatalf("picks = %v, want nearly all on the fast %s", got, a[1])
	}
}

func TestEWMAFailureAndDecay(t *testing.T) {
	a := addrs(2)
	b, now := newEWMA(t, []Node{{Addr: a[0], Weight: 1}, {Addr: a[1], Weight: 1}})
	pick := func() *Node {
		n, err := b.Pick(&Context{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	fast, slow := &b.nodes[0], &b.nodes[1]
	// Learn 1 ms and 10 ms.
	b.ewma.active[0], b.ewma.active[1] = 1, 1
	b.Done(fast, time.Millisecond, false)
	b.Done(slow, 10*time.Millisecond, false)
	if n := pick(); n != fast {
		t.Fatalf("picked %s, want the fast node", n.Addr)
	}
	b.Done(fast, time.Millisecond, false)
	// A refused connect is quick but costs the failure penalty (peak).
	*now += int64(time.Millisecond)
	b.ewma.active[0]++
	b.Done(fast, 0, true)
	if n := pick(); n != slow {
		t.Fatalf("after a failure picked %s, want the slow node", n.Addr)
	}
	b.Done(slow, 10*time.Millisecond, false)
	// Scores decay while idle: after a minute the failed node's score
	// (1 s decayed) is below the slow node's recent 10 ms.
	*now += int64(time.Minute)
	b.Done(slow, 10*time.Millisecond, false)
	if n := pick(); n != fast {
		t.Fatalf("after decay picked %s, want the fast node again", n.Addr)
	}
}

func TestEWMAActiveCounts(t *testing.T) {
	a := addrs(2)
	b, _ := newEWMA(t, []Node{{Addr: a[0], Weight: 1}, {Addr: a[1], Weight: 1}})
	b.ewma.active[0], b.ewma.active[1] = 1, 1
	b.Done(&b.nodes[0], 10*time.Millisecond, false)
	b.Done(&b.nodes[1], 12*time.Millisecond, false)
	// Open connections weigh in: 10 ms with one open loses to 12 ms idle.
	n, _ := b.Pick(&Context{})
	if n != &b.nodes[0] {
		t.Fatalf("first pick %s", n.Addr)
	}
	if n, _ := b.Pick(&Context{}); n != &b.nodes[1] {
		t.Fatalf("second pick %s, want the idle node", n.Addr)
	}
}
