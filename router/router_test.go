package router

import (
	"fmt"
	"net/netip"
	"testing"
)

func mustPrefix(t testing.TB, s string) netip.Prefix {
	t.Helper()
	p, err := ParsePrefix(s)
	if err != nil {
		t.Fatalf("ParsePrefix(%q): %v", s, err)
	}
	return p
}

type spec struct {
	id     string
	remote string
	server string
	port   uint16
	snis   []string
}

func build(t testing.TB, specs []spec) *Table[int] {
	t.Helper()
	entries := make([]*Entry[int], len(specs))
	for i, s := range specs {
		entries[i] = entryOf(t, s, int64(i))
	}
	tb, err := New(entries)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func entryOf(t testing.TB, s spec, seq int64) *Entry[int] {
	r := &Route{ID: s.id, RemoteAddr: mustPrefix(t, s.remote), ServerAddr: mustPrefix(t, s.server), ServerPort: s.port, SNIs: s.snis}
	return &Entry[int]{Route: r, Seq: seq, Target: int(seq)}
}

func q(remote, local string, port uint16, sni string) Query {
	return Query{Remote: netip.MustParseAddr(remote), Local: netip.MustParseAddr(local), Port: port, SNI: sni}
}

func TestMatchPriority(t *testing.T) {
	tests := []struct {
		name   string
		routes []spec
		query  Query
		want   string // "" for no match
	}{
		{"catch-all", []spec{{id: "1"}}, q("10.0.0.1", "127.0.0.1", 9100, ""), "1"},
		{"no routes", nil, q("127.0.0.1", "127.0.0.1", 9100, ""), ""},
		{"remote exact", []spec{{id: "1", remote: "127.0.0.2"}}, q("127.0.0.2", "127.0.0.1", 1, ""), "1"},
		{"remote exact miss", []spec{{id: "1", remote: "127.0.0.2"}}, q("127.0.0.3", "127.0.0.1", 1, ""), ""},
		{"remote cidr", []spec{{id: "1", remote: "127.0.0.0/24"}}, q("127.0.0.200", "127.0.0.1", 1, ""), "1"},
		{"remote v6", []spec{{id: "1", remote: "::1"}}, q("::1", "::1", 1, ""), "1"},
		{"remote v6 cidr", []spec{{id: "1", remote: "fd00::/8"}}, q("fd12::5", "::1", 1, ""), "1"},
		{"v4 filter never matches v6", []spec{{id: "1", remote: "0.0.0.0/0"}}, q("::1", "::1", 1, ""), ""},
		{"server addr and port", []spec{{id: "1", server: "127.0.0.10", port: 9101}}, q("127.0.0.1", "127.0.0.10", 9101, ""), "1"},
		{"server port miss", []spec{{id: "1", server: "127.0.0.10", port: 9101}}, q("127.0.0.1", "127.0.0.10", 9100, ""), ""},
		{"first in order wins", []spec{{id: "a", port: 9100}, {id: "b"}}, q("127.0.0.1", "127.0.0.1", 9100, ""), "a"},
		{"first in order wins, catch-all first", []spec{{id: "b"}, {id: "a", port: 9100}}, q("127.0.0.1", "127.0.0.1", 9100, ""), "b"},
		{"falls through failed filters", []spec{{id: "a", remote: "10.0.0.0/8"}, {id: "b", port: 9100}}, q("127.0.0.1", "127.0.0.1", 9100, ""), "b"},
		{"sni exact", []spec{{id: "x", snis: []string{"a.test.com"}}, {id: "plain"}}, q("127.0.0.1", "127.0.0.1", 1, "a.test.com"), "x"},
		{"sni beats earlier plain route", []spec{{id: "plain"}, {id: "x", snis: []string{"a.test.com"}}}, q("127.0.0.1", "127.0.0.1", 1, "a.test.com"), "x"},
		{"exact beats wildcard", []spec{{id: "w", snis: []string{"*.test.com"}}, {id: "e", snis: []string{"a.test.com"}}}, q("127.0.0.1", "127.0.0.1", 1, "a.test.com"), "e"},
		{"wildcard is multi-level", []spec{{id: "w", snis: []string{"*.test.com"}}}, q("127.0.0.1", "127.0.0.1", 1, "a.b.test.com"), "w"},
		{"wildcard does not match bare domain", []spec{{id: "w", snis: []string{"*.test.com"}}}, q("127.0.0.1", "127.0.0.1", 1, "test.com"), ""},
		{"longer wildcard first", []spec{{id: "short", snis: []string{"*.com"}}, {id: "long", snis: []string{"*.test.com"}}}, q("127.0.0.1", "127.0.0.1", 1, "a.test.com"), "long"},
		{"wildcard beats star", []spec{{id: "s", snis: []string{"*"}}, {id: "w", snis: []string{"*.test.com"}}}, q("127.0.0.1", "127.0.0.1", 1, "a.test.com"), "w"},
		{"star matches any sni", []spec{{id: "s", snis: []string{"*"}}}, q("127.0.0.1", "127.0.0.1", 1, "x.y"), "s"},
		{"star needs an sni", []spec{{id: "s", snis: []string{"*"}}}, q("127.0.0.1", "127.0.0.1", 1, ""), ""},
		{"exact with failing filter falls to wildcard", []spec{{id: "e", snis: []string{"a.test.com"}, port: 1}, {id: "w", snis: []string{"*.test.com"}}}, q("127.0.0.1", "127.0.0.1", 2, "a.test.com"), "w"},
		{"group order: first passing", []spec{{id: "e1", snis: []string{"a.test.com"}, remote: "10.0.0.1"}, {id: "e2", snis: []string{"a.test.com"}}}, q("127.0.0.1", "127.0.0.1", 1, "a.test.com"), "e2"},
		{"unmatched sni falls back to plain routes", []spec{{id: "x", snis: []string{"a.test.com"}}, {id: "plain"}}, q("127.0.0.1", "127.0.0.1", 1, "b.test.com"), "plain"},
		{"plain connection never matches sni route", []spec{{id: "x", snis: []string{"a.test.com"}}}, q("127.0.0.1", "127.0.0.1", 1, ""), ""},
		{"sni case is significant on the route", []spec{{id: "x", snis: []string{"A.test.com"}}}, q("127.0.0.1", "127.0.0.1", 1, "a.test.com"), ""},
		{"snis any entry", []spec{{id: "x", snis: []string{"a.test.com", "b.test.com"}}}, q("127.0.0.1", "127.0.0.1", 1, "b.test.com"), "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := build(t, tt.routes).Match(tt.query)
			gotID := ""
			if got != nil {
				gotID = got.ID
			}
			if gotID != tt.want {
				t.Errorf("Match = %q, want %q", gotID, tt.want)
			}
		})
	}
}

func TestParsePrefix(t *testing.T) {
	for _, s := range []string{"1.2.3.4/33", "::1/129", "abc", ":/8"} {
		if _, err := ParsePrefix(s); err == nil {
			t.Errorf("ParsePrefix(%q) succeeded", s)
		}
	}
	if p := mustPrefix(t, "10.1.2.3/8"); p.String() != "10.0.0.0/8" {
		t.Errorf("masking: %v", p)
	}
}

// manyRoutes builds n routes in which the matching one is last in order;
// each other route differs in the given dimension.
func manyRoutes(tb testing.TB, n int, dim string) (*Table[int], Query) {
	specs := make([]spec, n)
	for i := 0; i < n-1; i++ {
		switch dim {
		case "port":
			specs[i] = spec{id: fmt.Sprint(i), port: uint16(10000 + i)}
		case "remote":
			specs[i] = spec{id: fmt.Sprint(i), remote: fmt.Sprintf("10.%d.%d.1", i/256, i%256)}
		case "local":
			specs[i] = spec{id: fmt.Sprint(i), server: fmt.Sprintf("10.%d.%d.1", i/256, i%256)}
		case "mixed":
			// half on other ports, half on our port from other clients
			if i%2 == 0 {
				specs[i] = spec{id: fmt.Sprint(i), port: uint16(10000 + i)}
			} else {
				specs[i] = spec{id: fmt.Sprint(i), port: 9100, remote: fmt.Sprintf("10.%d.%d.0/24", i/256, i%256)}
			}
		case "sni":
			specs[i] = spec{id: fmt.Sprint(i), snis: []string{fmt.Sprintf("h%d.test.com", i)}}
		}
	}
	last := spec{id: "target", port: 9100, remote: "127.0.0.1"}
	query := q("127.0.0.1", "127.0.0.1", 9100, "")
	if dim == "sni" {
		last = spec{id: "target", snis: []string{"*.example.com"}}
		query.SNI = "a.example.com"
	}
	specs[n-1] = last
	return build(tb, specs), query
}

func TestManyRoutesMatchLast(t *testing.T) {
	for _, dim := range []string{"port", "remote", "local", "mixed", "sni"} {
		tb, query := manyRoutes(t, 10000, dim)
		if r := tb.Match(query); r == nil || r.ID != "target" {
			t.Errorf("%s: got %v, want target", dim, r)
		}
	}
}

func BenchmarkMatch(b *testing.B) {
	for _, dim := range []string{"port", "remote", "local", "mixed", "sni"} {
		for _, n := range []int{1, 100, 10000} {
			b.Run(fmt.Sprintf("%s/routes=%d", dim, n), func(b *testing.B) {
				tb, query := manyRoutes(b, n, dim)
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					if tb.Match(query) == nil {
						b.Fatal("no match")
					}
				}
			})
		}
	}
}

func FuzzParsePrefix(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "10.0.0.0/8", "::1", "fd00::/8", ":/8", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePrefix(s)
		if err == nil && s != "" && !p.IsValid() {
			t.Fatalf("%q: invalid prefix without error", s)
		}
	})
}
