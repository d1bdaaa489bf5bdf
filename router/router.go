// Package router matches a connection against the stream routes exactly as
// APISIX's ip_port router does (docs/apisix/stream-routes.md#matching-priority), with an index so that the cost
// of a match does not grow with the number of routes. The index is
// persistent (table.go, pmap.go): a change to one route makes a new table
// that shares everything else with the old one, which stays valid for the
// connections that hold it.
package router

import (
	"net"
	"net/netip"

	"github.com/caddy-apisix/stream/model"
)

// Route is one stream route's filters.
type Route struct {
	ID string
	// RemoteAddr and ServerAddr are the address filters; the zero Prefix
	// means no filter.
	RemoteAddr, ServerAddr netip.Prefix
	// ServerPort is the port filter; 0 means none.
	ServerPort uint16
	// SNIs are the route's sni/snis values as written: exact names,
	// "*.suffix" (any number of labels) or "*".
	SNIs []string
}

// ParsePrefix parses an APISIX remote_addr/server_addr value with the
// parser the Admin API checks it with (model.ParseCIDROrIP). The empty
// string means no filter.
func ParsePrefix(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, nil
	}
	return model.ParseCIDROrIP(s)
}

// AddrPortOf converts a connection's net.Addr to a netip.AddrPort.
func AddrPortOf(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort()
	case *net.UDPAddr:
		return a.AddrPort()
	case nil:
		return netip.AddrPort{}
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// NewQuery builds the query of a connection from its addresses (an IPv4
// address mapped into IPv6 matches as IPv4) and its server name.
func NewQuery(remote, local netip.AddrPort, sni string) Query {
	return Query{Remote: remote.Addr().Unmap(), Local: local.Addr().Unmap(), Port: local.Port(), SNI: sni}
}

// Query is what a connection offers for matching.
type Query struct {
	Remote, Local netip.Addr
	Port          uint16
	// SNI is the TLS server name (lowercased, no trailing dot), or
	// fallback_sni, or empty.
	SNI string
}
