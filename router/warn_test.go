package router

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

func rt(id, remote, server string, port uint16, snis ...string) *Route {
	r := &Route{ID: id, ServerPort: port, SNIs: snis}
	r.RemoteAddr, _ = ParsePrefix(remote)
	r.ServerAddr, _ = ParsePrefix(server)
	return r
}

func TestShadower(t *testing.T) {
	tests := []struct {
		name     string
		routes   []*Route
		i        int
		fallback string
		want     string // id of the shadowing route, "" for none
	}{
		{"no filters catches later", []*Route{rt("1", "", "", 0), rt("2", "", "127.0.0.1", 9101)}, 1, "", "1"},
		{"later never shadows earlier", []*Route{rt("1", "", "127.0.0.1", 9101), rt("2", "", "", 0)}, 0, "", ""},
		{"same port", []*Route{rt("1", "", "", 9100), rt("2", "127.0.0.1", "", 9100)}, 1, "", "1"},
		{"other port", []*Route{rt("1", "", "", 9100), rt("2", "", "", 9101)}, 1, "", ""},
		{"port filter vs none", []*Route{rt("1", "", "", 9100), rt("2", "", "", 0)}, 1, "", ""},
		{"wider cidr", []*Route{rt("1", "10.0.0.0/8", "", 0), rt("2", "10.1.0.0/16", "", 0)}, 1, "", "1"},
		{"narrower cidr", []*Route{rt("1", "10.1.0.0/16", "", 0), rt("2", "10.0.0.0/8", "", 0)}, 1, "", ""},
		{"filter vs none", []*Route{rt("1", "127.0.0.1", "", 0), rt("2", "", "", 0)}, 1, "", ""},
		{"v4 vs v6", []*Route{rt("1", "0.0.0.0/0", "", 0), rt("2", "::1", "", 0)}, 1, "", ""},
		{"same server addr", []*Route{rt("1", "", "127.0.0.1", 0), rt("2", "", "127.0.0.1", 9100)}, 1, "", "1"},
		{"sni route does not shadow plain", []*Route{rt("1", "", "", 0, "*"), rt("2", "", "", 0)}, 1, "", ""},
		{"star with fallback_sni shadows plain, any order", []*Route{rt("2", "", "", 0), rt("1", "", "", 0, "*")}, 0, "default.test", "1"},
		{"plain never shadows sni", []*Route{rt("1", "", "", 0), rt("2", "", "", 0, "a.test")}, 1, "", ""},
		{"same sni earlier", []*Route{rt("1", "", "", 0, "a.test"), rt("2", "", "", 9100, "a.test")}, 1, "", "1"},
		{"same sni later", []*Route{rt("1", "", "", 9100, "a.test"), rt("2", "", "", 0, "a.test")}, 0, "", ""},
		{"wildcard does not shadow exact", []*Route{rt("1", "", "", 0, "*.test"), rt("2", "", "", 0, "a.test")}, 1, "", ""},
		{"star does not shadow exact", []*Route{rt("1", "", "", 0, "*"), rt("2", "", "", 0, "a.test")}, 1, "", ""},
		{"snis subset", []*Route{rt("1", "", "", 0, "a.test", "b.test"), rt("2", "", "", 0, "b.test")}, 1, "", "1"},
		{"snis not covered", []*Route{rt("1", "", "", 0, "a.test"), rt("2", "", "", 0, "a.test", "b.test")}, 1, "", ""},
	}
	for _, tt := range tests {
		got := Shadower(tt.routes, tt.i, tt.fallback)
		id := ""
		if got != nil {
			id = got.ID
		}
		if id != tt.want {
			t.Errorf("%s: shadower %q, want %q", tt.name, id, tt.want)
		}
	}
}

// TestShadowerAgreesWithMatch checks every "shadowed" answer against the
// matcher itself: no probe connection may reach a shadowed route.
func TestShadowerAgreesWithMatch(t *testing.T) {
	routes := []*Route{
		rt("a", "", "", 9100), rt("b", "127.0.0.0/8", "", 9100), rt("c", "", "127.0.0.1", 0),
		rt("d", "", "127.0.0.1", 9101), rt("e", "", "", 0, "x.test"), rt("f", "", "", 9101, "x.test"),
		rt("g", "", "", 0, "*.test"), rt("h", "", "", 0),
	}
	entries := make([]*Entry[struct{}], len(routes))
	for i, r := range routes {
		entries[i] = &Entry[struct{}]{Route: r, Seq: int64(i)}
	}
	tab, err := New(entries)
	if err != nil {
		t.Fatal(err)
	}
	hit := map[string]bool{}
	for _, remote := range []string{"127.0.0.1", "10.0.0.1", "::1"} {
		for _, local := range []string{"127.0.0.1", "127.0.0.2", "::1"} {
			for _, port := range []uint16{9100, 9101, 9102} {
				for _, sni := range []string{"", "x.test", "y.test", "other"} {
					q := Query{Remote: netip.MustParseAddr(remote), Local: netip.MustParseAddr(local), Port: port, SNI: sni}
					if r := tab.Match(q); r != nil {
						hit[r.ID] = true
					}
				}
			}
		}
	}
	for i, r := range routes {
		shadowed := Shadower(routes, i, "") != nil
		if shadowed && hit[r.ID] {
			t.Errorf("route %s reported shadowed but matched a probe", r.ID)
		}
		if !shadowed && !hit[r.ID] {
			t.Errorf("route %s not reported shadowed but no probe reached it", r.ID)
		}
	}
}

func TestUnreachable(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	ls := []Listener{
		{Network: "tcp", Port: 9100},
		{Network: "tcp", Addr: lo, Port: 9101},
		{Network: "tcp", Port: 9102, TLS: true},
		{Network: "udp", Addr: lo, Port: 9211},
	}
	local := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	tests := []struct {
		name     string
		r        *Route
		ls       []Listener
		fallback string
		want     string // substring; "" for reachable
	}{
		{"no filters", rt("1", "", "", 0), ls, "", ""},
		{"port with listener", rt("1", "", "", 9101), ls, "", ""},
		{"udp port", rt("1", "", "127.0.0.1", 9211), ls, "", ""},
		{"port without listener", rt("1", "", "", 9999), ls, "", "no stream_proxy listener is on server_port 9999"},
		{"no listeners", rt("1", "", "", 0), []Listener{}, "", "there is no stream_proxy listener"},
		{"addr not bound", rt("1", "", "127.0.0.2", 9101), ls, "", "server_addr 127.0.0.2/32 is not an address a listener binds (tcp/127.0.0.1:9101)"},
		{"addr on wildcard, local", rt("1", "", "127.0.0.2", 9100), ls, "", ""},
		{"addr on wildcard, not local", rt("1", "", "192.0.2.1", 9100), ls, "", "server_addr 192.0.2.1/32 is not an address a listener binds (tcp/*:9100)"},
		{"sni on tls listener", rt("1", "", "", 0, "a.test"), ls, "", ""},
		{"sni without tls listener", rt("1", "", "", 9101, "a.test"), ls, "", "no listener it can reach terminates or passes through TLS (tcp/127.0.0.1:9101)"},
		{"sni with fallback_sni", rt("1", "", "", 9101, "a.test"), ls, "a.test", ""},
		{"upper-case sni", rt("1", "", "", 0, "A.test"), ls, "", "upper-case"},
	}
	for _, tt := range tests {
		got := Unreachable(tt.r, tt.ls, local, tt.fallback)
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestShadowIndexAgreesWithPairs compares the index with every pair on
// generated route lists.
func TestShadowIndexAgreesWithPairs(t *testing.T) {
	remotes := []string{"", "127.0.0.1", "127.0.0.0/8", "::1"}
	servers := []string{"", "127.0.0.1"}
	ports := []uint16{0, 9100, 9101}
	snis := [][]string{nil, nil, {"a.test"}, {"a.test", "b.test"}, {"b.test"}, {"*"}, {"*.test"}}
	for seed := 0; seed < 200; seed++ {
		var routes []*Route
		x := uint32(seed*2654435761 + 1)
		next := func(n int) int {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			return int(x % uint32(n))
		}
		for i := 0; i < 12; i++ {
			routes = append(routes, rt(string(rune('a'+i)), remotes[next(len(remotes))], servers[next(len(servers))],
				ports[next(len(ports))], snis[next(len(snis))]...))
		}
		for _, fallback := range []string{"", "x.test"} {
			ix := NewShadowIndex(routes, fallback)
			for i := range routes {
				var want *Route
				var victims []int
				for j := range routes {
					if want == nil && Shadows(routes, j, i, fallback) {
						want = routes[j]
					}
					if Shadows(routes, i, j, fallback) {
						victims = append(victims, j)
					}
				}
				if got := ix.Shadower(i); got != want {
					t.Fatalf("seed %d fallback %q route %d: shadower %v, want %v", seed, fallback, i, got, want)
				}
				if got := ix.Victims(i); fmt.Sprint(got) != fmt.Sprint(victims) {
					t.Fatalf("seed %d fallback %q route %d: victims %v, want %v", seed, fallback, i, got, victims)
				}
			}
		}
	}
}
