package model

import (
	"fmt"
	"math"
	"net/netip"
	"strings"

	"github.com/caddy-apisix/stream/internal/lua"
)

// parseIPv4 is inet_pton(AF_INET): dotted quad, no leading zeros.
func parseIPv4(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	return a, err == nil && a.Is4()
}

// parseIPv6 is inet_pton(AF_INET6): no zone, IPv4 tail allowed. Like
// resty.ipmatcher it accepts the address inside brackets too.
func parseIPv6(s string) (netip.Addr, bool) {
	if len(s) >= 2 && s[0] == '[' && s[len(s)-1] == ']' {
		s = s[1 : len(s)-1]
	}
	if !strings.Contains(s, ":") || strings.Contains(s, "%") {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	return a, err == nil && a.Is6()
}

// ParseCIDROrIP parses an IP or a CIDR, v4 or v6, as APISIX reads one: the
// Admin API checks it with core.ip.validate_cidr_or_ip (apisix/core/ip.lua)
// and matches it with resty.ipmatcher (lua-resty-ipmatcher), which read the
// text the same way: inet_pton for the address (a v6 one may be in
// brackets, never with a zone) and Lua's tonumber for the mask, so
// "::1/064", "::1/0x40" and "::1/ 64" are all ::1/64; at most 32 for v4 and
// 128 for v6. Both the checks and the compiled filters (remote_addr,
// server_addr, ip-restriction, allow_admin) use this one function.
//
// A mask that is not a whole number never passes the schemas' ip_def
// patterns (apisix/schema_def.lua); it is refused here too.
func ParseCIDROrIP(s string) (netip.Prefix, error) {
	addr, bits := s, -1
	if i := strings.IndexByte(s, '/'); i >= 0 {
		m, ok := lua.ToNumber(s[i+1:])
		if !ok || m != math.Trunc(m) || m < 0 || m > 128 {
			return netip.Prefix{}, fmt.Errorf("invalid ip address: %s", s)
		}
		addr, bits = s[:i], int(m)
	}
	a, ok := parseIPv4(addr)
	if !ok {
		a, ok = parseIPv6(addr)
	}
	if !ok || bits > a.BitLen() {
		return netip.Prefix{}, fmt.Errorf("invalid ip address: %s", s)
	}
	if bits < 0 {
		bits = a.BitLen()
	}
	return netip.PrefixFrom(a, bits).Masked(), nil
}

// validCIDROrIP is APISIX's core.ip.validate_cidr_or_ip.
func validCIDROrIP(s string) bool {
	_, err := ParseCIDROrIP(s)
	return err == nil
}
