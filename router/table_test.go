package router

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/caddy-apisix/stream/internal/hash64"
)

// The universe the random tests draw from: every dimension, both
// families, overlapping prefixes, every sni kind and a repeated sni.
var (
	ports   = []uint16{0, 9100, 9101}
	addrs   = []string{"", "127.0.0.1", "127.0.0.0/24", "10.0.0.0/8", "::1", "fd00::/8"}
	sniSets = [][]string{nil, nil, {"a.test.com"}, {"*.test.com"}, {"*"}, {"*est.com"}, {"a.test.com", "a.test.com", "*.com"}}
	queries = func() []Query {
		var out []Query
		for _, remote := range []string{"127.0.0.1", "127.0.0.9", "10.1.1.1", "::1", "fd00::5"} {
			for _, port := range ports {
				for _, sni := range []string{"", "a.test.com", "b.test.com", "xtest.com", "other.org"} {
					out = append(out, q(remote, remote, port, sni))
				}
			}
		}
		return out
	}()
)

func randomSpec(r *rand.Rand, id string) spec {
	return spec{id: id, port: ports[r.IntN(len(ports))], remote: addrs[r.IntN(len(addrs))],
		server: addrs[r.IntN(len(addrs))], snis: sniSets[r.IntN(len(sniSets))]}
}

func answers(tb *Table[int]) []string {
	out := make([]string, len(queries))
	for i, qq := range queries {
		if e := tb.Match(qq); e != nil {
			out[i] = e.ID
		}
	}
	return out
}

// Put and Delete give the table New builds from the same routes, and
// every older table answers as it did when it was made.
func TestIncrementalEqualsRebuild(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	type held struct {
		tb   *Table[int]
		want []string
	}
	var old []held
	tb, err := New[int](nil)
	if err != nil {
		t.Fatal(err)
	}
	live := map[string]*Entry[int]{}
	seq := int64(0)
	for step := range 600 {
		id := fmt.Sprint(r.IntN(24))
		if prev := live[id]; prev != nil && r.IntN(3) == 0 {
			tb = tb.Delete(id)
			delete(live, id)
		} else {
			s := randomSpec(r, id)
			e := entryOf(t, s, 0)
			if prev != nil && r.IntN(2) == 0 {
				e.Seq = prev.Seq // replaced in place
			} else {
				seq++
				e.Seq = seq // removed and added again: last
			}
			if tb, err = tb.Put(e); err != nil {
				t.Fatal(err)
			}
			live[id] = e
		}
		rebuilt, err := New(slices.Collect(maps.Values(live)))
		if err != nil {
			t.Fatal(err)
		}
		got, want := answers(tb), answers(rebuilt)
		if !slices.Equal(got, want) {
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("step %d: %+v: incremental %q, rebuilt %q", step, queries[i], got[i], want[i])
				}
			}
		}
		if tb.Len() != len(live) {
			t.Fatalf("step %d: Len %d, want %d", step, tb.Len(), len(live))
		}
		if step%50 == 0 {
			old = append(old, held{tb, got})
		}
	}
	for i, h := range old {
		if got := answers(h.tb); !slices.Equal(got, h.want) {
			t.Fatalf("table %d changed after later Puts and Deletes", i)
		}
	}
}

func TestPutRejectsBadSNI(t *testing.T) {
	tb := build(t, []spec{{id: "1"}})
	if _, err := tb.Put(entryOf(t, spec{id: "2", snis: []string{"*."}}, 5)); err == nil {
		t.Fatal(`Put accepted sni "*."`)
	}
	if tb.Len() != 1 {
		t.Fatalf("a refused Put changed the table: %d routes", tb.Len())
	}
}

// pmap against a Go map, with a hash that collides on purpose (equal
// hashes and hashes that share long prefixes), old versions unchanged.
func TestPmap(t *testing.T) {
	for name, hash := range map[string]func(int) uint64{
		"mixed":     func(k int) uint64 { return hash64.Mix(uint64(k)) },
		"colliding": func(k int) uint64 { return uint64(k%7) << 59 },
	} {
		t.Run(name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, 4))
			m := pmap[int, int]{hash: hash}
			ref := map[int]int{}
			type version struct {
				m   pmap[int, int]
				ref map[int]int
			}
			var versions []version
			for step := range 3000 {
				k := r.IntN(200)
				if r.IntN(3) == 0 {
					m = m.del(k)
					delete(ref, k)
				} else {
					m = m.set(k, step)
					ref[k] = step
				}
				if step%300 == 0 {
					versions = append(versions, version{m, maps.Clone(ref)})
				}
			}
			versions = append(versions, version{m, ref})
			built := pmapOf(ref, hash)
			versions = append(versions, version{built, ref})
			for i, v := range versions {
				if v.m.len() != len(v.ref) {
					t.Fatalf("version %d: len %d, want %d", i, v.m.len(), len(v.ref))
				}
				for k := range 200 {
					got, ok := v.m.get(k)
					want, wok := v.ref[k]
					if ok != wok || got != want {
						t.Fatalf("version %d: get(%d) = %d %v, want %d %v", i, k, got, ok, want, wok)
					}
				}
			}
		})
	}
}

// tenThousand is the shape of the propagation benchmark: routes that
// differ in their remote address.
func tenThousand(tb testing.TB, n int) *Table[int] {
	specs := make([]spec, n)
	for i := range specs {
		specs[i] = spec{id: fmt.Sprintf("bulk%05d", i), remote: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)}
	}
	return build(tb, specs)
}

// BenchmarkRouteChange is one route replaced in a table of n: Put is the
// incremental update, New the rebuild every change cost before.
func BenchmarkRouteChange(b *testing.B) {
	for _, n := range []int{100, 10000} {
		tb := tenThousand(b, n)
		b.Run(fmt.Sprintf("Put/routes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				e := entryOf(b, spec{id: "bulk00042", port: uint16(9000 + i%2)}, 42)
				if _, err := tb.Put(e); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("New/routes=%d", n), func(b *testing.B) {
			entries := make([]*Entry[int], 0, n)
			for i := range n {
				entries = append(entries, tb.Get(fmt.Sprintf("bulk%05d", i)))
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := New(entries); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// list against a sorted slice, across chunk splits and emptied chunks,
// older versions unchanged.
func TestListChunks(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	pool := make([]*Entry[int], 3000)
	for i := range pool {
		pool[i] = &Entry[int]{Route: &Route{ID: fmt.Sprint(i)}, Seq: int64(i * 2)}
	}
	flat := func(l list[int]) []*Entry[int] {
		var out []*Entry[int]
		for _, c := range l.chunks {
			if len(c) == 0 || len(c) > chunkMax {
				t.Fatalf("chunk of %d entries", len(c))
			}
			out = append(out, c...)
		}
		if len(out) != l.n {
			t.Fatalf("n = %d, holds %d", l.n, len(out))
		}
		return out
	}
	l := listOf(pool[:500:500])
	ref := slices.Clone(pool[:500])
	type version struct {
		l   list[int]
		ref []*Entry[int]
	}
	var versions []version
	for step := range 6000 {
		e := pool[r.IntN(len(pool))]
		if i, found := slices.BinarySearchFunc(ref, e.Seq, bySeq[int]); found {
			l, ref = l.without(e), slices.Delete(slices.Clone(ref), i, i+1)
		} else {
			l, ref = l.with(e), slices.Insert(slices.Clone(ref), i, e)
		}
		if step%500 == 0 {
			versions = append(versions, version{l, ref})
		}
	}
	versions = append(versions, version{l, ref})
	for i, v := range versions {
		if got := flat(v.l); !slices.Equal(got, v.ref) {
			t.Fatalf("version %d: %d entries, want %d (or out of order)", i, len(got), len(v.ref))
		}
	}
}

// pmapGroup against a Go map of slices, with a hash that collides often
// (several keys per leaf) and one that never does.
func TestPmapGroup(t *testing.T) {
	for name, hash := range map[string]func(int) uint64{"collide": func(k int) uint64 { return uint64(k % 7) }, "mix": func(k int) uint64 { return hash64.Mix(uint64(k)) }} {
		t.Run(name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, 4))
			items := make([]pkv[int, int], 2000)
			ref := map[int][]int{}
			for i := range items {
				k := r.IntN(300)
				items[i] = pkv[int, int]{k, i}
				ref[k] = append(ref[k], i)
			}
			m := pmapGroup(items, hash, &pslab[int, []int]{}, func(_ int, g []hidx) []int {
				var out []int
				for _, it := range g {
					out = append(out, items[it.i].v)
				}
				return out
			})
			if m.len() != len(ref) {
				t.Fatalf("len %d, want %d", m.len(), len(ref))
			}
			for k, want := range ref {
				if got, _ := m.get(k); !slices.Equal(got, want) {
					t.Fatalf("get(%d) = %v, want %v", k, got, want)
				}
			}
		})
	}
}
