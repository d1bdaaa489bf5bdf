package model

import (
	"net/netip"
	"strconv"
	"strings"
)

// parseIPv4 is inet_pton(AF_INET): dotted quad, no leading zeros.
func parseIPv4(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is4()
}

// parseIPv6 is inet_pton(AF_INET6): no zone, IPv4 tail allowed. Like
// resty.ipmatcher it accepts the address inside brackets too.
func parseIPv6(s string) bool {
	if len(s) >= 2 && s[0] == '[' && s[len(s)-1] == ']' {
		s = s[1 : len(s)-1]
	}
	if !strings.Contains(s, ":") || strings.Contains(s, "%") {
		return false
	}
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is6()
}

// LuaToNumber is Lua's tonumber on a string: decimal or hex, surrounding
// spaces allowed, no inf/nan words.
func LuaToNumber(s string) (float64, bool) { return luaToNumber(s) }

// luaToNumber is LuaToNumber.
func luaToNumber(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	if s == "" || strings.ContainsAny(s, "_iInN") {
		return 0, false
	}
	neg := false
	body := s
	if body[0] == '-' || body[0] == '+' {
		neg = body[0] == '-'
		body = body[1:]
	}
	if strings.HasPrefix(body, "0x") || strings.HasPrefix(body, "0X") {
		u, err := strconv.ParseUint(body[2:], 16, 64)
		if err != nil {
			return 0, false
		}
		f := float64(u)
		if neg {
			f = -f
		}
		return f, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, false
	}
	return f, true
}

// validCIDROrIP is APISIX's core.ip.validate_cidr_or_ip: an IPv4 or IPv6
// address with an optional "/mask" (≤32 for v4, ≤128 for v6).
func validCIDROrIP(s string) bool {
	mask := 0.0
	if i := strings.IndexByte(s, '/'); i >= 0 {
		m, ok := luaToNumber(s[i+1:])
		if !ok {
			return false
		}
		mask = m
		s = s[:i]
	}
	if parseIPv4(s) {
		return mask >= 0 && mask <= 32
	}
	if mask < 0 || mask > 128 {
		return false
	}
	return parseIPv6(s)
}
