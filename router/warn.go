package router

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// This file answers two questions about a route list without any traffic,
// for the warnings the Admin API gives on writes: is a route shadowed by
// another on every connection it could match, and can it match any
// listener at all. The answers follow Match exactly (docs/apisix/stream-routes.md,
// "Matching a connection" and "Matching priority"; apisix/stream/router/ip_port.lua).

// Listener is one address that hands connections to the stream routes.
type Listener struct {
	// Network is "tcp" or "udp".
	Network string
	// Addr is the bound IP; the zero Addr means every local address.
	Addr netip.Addr
	Port uint16
	// TLS is true when the listener terminates TLS or reads the SNI of a
	// passed-through ClientHello, so that a connection can carry an SNI.
	TLS bool
}

func (l Listener) String() string {
	host := "*"
	if l.Addr.IsValid() {
		host = l.Addr.String()
		if l.Addr.Is6() {
			host = "[" + host + "]"
		}
	}
	return fmt.Sprintf("%s/%s:%d", l.Network, host, l.Port)
}

// Shadows reports whether routes[j] takes every connection routes[i]
// could match before routes[i] sees it. Routes are in match order.
// fallbackSNI is apisix.ssl.fallback_sni: when set, every connection has
// an SNI, so even a later route with sni "*" takes the connections of a
// plain route.
func Shadows(routes []*Route, j, i int, fallbackSNI string) bool {
	a, b := routes[j], routes[i]
	if j == i || !coversFilters(a, b) {
		return false
	}
	switch {
	case len(b.SNIs) == 0 && len(a.SNIs) == 0:
		return j < i
	case len(b.SNIs) == 0:
		// SNI routes are tried first; they take everything only when
		// every connection has an SNI and a has the catch-all "*"
		return fallbackSNI != "" && contains(usableSNIs(a.SNIs), "*")
	case len(a.SNIs) == 0:
		// a plain route never sees a connection an SNI route took
		return false
	}
	// each SNI group is tried in route order, and no other pattern ranks
	// before a pattern on every name it matches: a must hold every
	// pattern of b, and come first
	bSNIs := usableSNIs(b.SNIs)
	if j > i || len(bSNIs) == 0 {
		return false
	}
	aSNIs := usableSNIs(a.SNIs)
	for _, s := range bSNIs {
		if !contains(aSNIs, s) {
			return false
		}
	}
	return true
}

// ShadowIndex answers Shadows for many routes without comparing every
// pair: only routes that can cover each other (same port or none, a
// shared SNI pattern, the catch-all "*") are compared.
type ShadowIndex struct {
	routes      []*Route
	fallbackSNI string
	anyPort     []int            // plain routes without server_port
	byPort      map[uint16][]int // plain routes by server_port
	bySNI       map[string][]int // SNI routes by usable pattern
}

// NewShadowIndex indexes routes (in match order).
func NewShadowIndex(routes []*Route, fallbackSNI string) *ShadowIndex {
	x := &ShadowIndex{routes: routes, fallbackSNI: fallbackSNI, byPort: map[uint16][]int{}, bySNI: map[string][]int{}}
	for i, r := range routes {
		switch {
		case len(r.SNIs) > 0:
			for _, s := range usableSNIs(r.SNIs) {
				if l := x.bySNI[s]; len(l) == 0 || l[len(l)-1] != i {
					x.bySNI[s] = append(l, i)
				}
			}
		case r.ServerPort == 0:
			x.anyPort = append(x.anyPort, i)
		default:
			x.byPort[r.ServerPort] = append(x.byPort[r.ServerPort], i)
		}
	}
	return x
}

// candidates are the positions of the routes that may shadow routes[i]
// or be shadowed by it, ascending.
func (x *ShadowIndex) candidates(i int) []int {
	r := x.routes[i]
	if len(r.SNIs) > 0 {
		snis := usableSNIs(r.SNIs)
		var out []int
		for _, s := range snis {
			out = append(out, x.bySNI[s]...)
		}
		if x.fallbackSNI != "" && contains(snis, "*") {
			out = append(append(out, x.anyPort...), x.allPorts()...)
		}
		return out
	}
	out := append([]int(nil), x.anyPort...)
	if r.ServerPort == 0 {
		out = append(out, x.allPorts()...)
	} else {
		out = append(out, x.byPort[r.ServerPort]...)
	}
	if x.fallbackSNI != "" {
		out = append(out, x.bySNI["*"]...)
	}
	return out
}

func (x *ShadowIndex) allPorts() []int {
	var out []int
	for _, l := range x.byPort {
		out = append(out, l...)
	}
	return out
}

// Shadower returns the first route (in match order) that shadows
// routes[i], or nil.
func (x *ShadowIndex) Shadower(i int) *Route {
	best := -1
	for _, j := range x.candidates(i) {
		if (best < 0 || j < best) && Shadows(x.routes, j, i, x.fallbackSNI) {
			best = j
		}
	}
	if best < 0 {
		return nil
	}
	return x.routes[best]
}

// Victims returns the positions of the routes routes[j] shadows, ascending.
func (x *ShadowIndex) Victims(j int) []int {
	var out []int
	seen := map[int]bool{}
	for _, i := range x.candidates(j) {
		if !seen[i] && Shadows(x.routes, j, i, x.fallbackSNI) {
			seen[i] = true
			out = append(out, i)
		}
	}
	slices.Sort(out)
	return out
}

// Shadower returns the first route that shadows routes[i], or nil; for
// many questions about one list, use a ShadowIndex.
func Shadower(routes []*Route, i int, fallbackSNI string) *Route {
	return NewShadowIndex(routes, fallbackSNI).Shadower(i)
}

// coversFilters reports whether every connection that passes b's address
// and port filters passes a's too.
func coversFilters(a, b *Route) bool {
	if a.ServerPort != 0 && a.ServerPort != b.ServerPort {
		return false
	}
	return prefixCovers(a.RemoteAddr, b.RemoteAddr) && prefixCovers(a.ServerAddr, b.ServerAddr)
}

// prefixCovers reports whether filter a passes every address filter b
// passes; the zero Prefix is no filter.
func prefixCovers(a, b netip.Prefix) bool {
	if !a.IsValid() {
		return true
	}
	if !b.IsValid() || a.Addr().Is4() != b.Addr().Is4() {
		return false
	}
	return a.Bits() <= b.Bits() && a.Contains(b.Addr())
}

// usableSNIs drops the patterns that can never match: the client's SNI is
// lowercased but the route's is not (apisix/ssl.lua server_name).
func usableSNIs(snis []string) []string {
	var out []string
	for _, s := range snis {
		if strings.ToLower(s) == s {
			out = append(out, s)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Unreachable explains why no listener can ever hand r a connection, or
// returns "" when one can. local are the machine's own networks, for
// listeners bound to every address; nil means unknown (any address may be
// local).
func Unreachable(r *Route, listeners []Listener, local []netip.Prefix, fallbackSNI string) string {
	if len(r.SNIs) > 0 && len(usableSNIs(r.SNIs)) == 0 {
		return "its sni has upper-case letters and client SNIs are lowercased, so it never matches"
	}
	var byPort, byAddr []Listener
	for _, l := range listeners {
		if r.ServerPort == 0 || r.ServerPort == l.Port {
			byPort = append(byPort, l)
		}
	}
	if len(byPort) == 0 {
		if r.ServerPort == 0 {
			return "there is no stream_proxy listener"
		}
		return fmt.Sprintf("no stream_proxy listener is on server_port %d", r.ServerPort)
	}
	for _, l := range byPort {
		if addrReachable(r.ServerAddr, l.Addr, local) {
			byAddr = append(byAddr, l)
		}
	}
	if len(byAddr) == 0 {
		return fmt.Sprintf("server_addr %s is not an address a listener binds (%s)", r.ServerAddr, listenerList(byPort))
	}
	if len(r.SNIs) == 0 || fallbackSNI != "" {
		return ""
	}
	for _, l := range byAddr {
		if Reaches(r, l, local, fallbackSNI) {
			return ""
		}
	}
	return fmt.Sprintf("it matches on sni but no listener it can reach terminates or passes through TLS (%s), and fallback_sni is not set", listenerList(byAddr))
}

// Reaches reports whether listener l can hand r a connection.
func Reaches(r *Route, l Listener, local []netip.Prefix, fallbackSNI string) bool {
	if r.ServerPort != 0 && r.ServerPort != l.Port {
		return false
	}
	if !addrReachable(r.ServerAddr, l.Addr, local) {
		return false
	}
	if len(r.SNIs) > 0 && (len(usableSNIs(r.SNIs)) == 0 || (fallbackSNI == "" && !l.TLS)) {
		return false
	}
	return true
}

// addrReachable reports whether a connection to a listener bound to bound
// (zero: every local address) can have a local address inside filter.
func addrReachable(filter netip.Prefix, bound netip.Addr, local []netip.Prefix) bool {
	if !filter.IsValid() {
		return true
	}
	if bound.IsValid() && !bound.Unmap().IsUnspecified() {
		return filter.Contains(bound.Unmap())
	}
	if local == nil {
		return true
	}
	for _, p := range local {
		if filter.Overlaps(p) {
			return true
		}
	}
	return false
}

func listenerList(ls []Listener) string {
	parts := make([]string, 0, len(ls))
	for _, l := range ls {
		parts = append(parts, l.String())
	}
	if len(parts) > 8 {
		parts = append(parts[:8], fmt.Sprintf("and %d more", len(ls)-8))
	}
	return strings.Join(parts, ", ")
}
