package router

import (
	"fmt"
	"net/netip"
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

// Shadower returns the route that takes every connection routes[i] could
// match before routes[i] sees it, or nil. Routes are in match order.
// fallbackSNI is apisix.ssl.fallback_sni: when set, every connection has
// an SNI, so a later route with sni "*" takes the connections of a plain
// route too.
func Shadower(routes []*Route, i int, fallbackSNI string) *Route {
	b := routes[i]
	bSNIs := usableSNIs(b.SNIs)
	for j, a := range routes {
		if j == i || !coversFilters(a, b) {
			continue
		}
		aSNIs := usableSNIs(a.SNIs)
		switch {
		case len(b.SNIs) == 0 && len(a.SNIs) == 0:
			if j < i {
				return a
			}
		case len(b.SNIs) == 0:
			// SNI routes are tried first; they take everything only when
			// every connection has an SNI and a has the catch-all "*"
			if fallbackSNI != "" && contains(aSNIs, "*") {
				return a
			}
		case len(a.SNIs) == 0:
			// a plain route never sees a connection an SNI route took
		default:
			// each SNI group is tried in route order, and no other
			// pattern ranks before a pattern on every name it matches:
			// a must hold every pattern of b, and come first
			if j > i || len(bSNIs) == 0 {
				continue
			}
			all := true
			for _, s := range bSNIs {
				if !contains(aSNIs, s) {
					all = false
					break
				}
			}
			if all {
				return a
			}
		}
	}
	return nil
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
