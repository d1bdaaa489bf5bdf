// Package listen parses APISIX's stream_proxy listen entries (integer
// ports, "ip:port", "[v6]:port", port ranges and the object form) and
// validates them with APISIX's startup error texts.
package listen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Entry is one item of stream_proxy.tcp or stream_proxy.udp. In JSON it is
// an integer port, a string ("9100", "127.0.0.1:9101", "[::1]:9100",
// "2000-2005", "127.0.0.1:4000-4100") or, for tcp, an object with addr and
// options.
type Entry struct {
	// Addr is the listen address: a port, "ip:port", "[v6]:port", or a
	// port range in either form. A bare port listens on all IPv4 and IPv6
	// interfaces.
	Addr string `json:"addr"`
	// Options are the listener's options (tcp only).
	Options

	// short records that the entry was written as a bare port or string,
	// so it marshals back the same way.
	short   bool
	numeric bool
}

// HasOptions reports whether any option beyond the address is set.
func (e Entry) HasOptions() bool {
	return !e.Options.IsZero()
}

// UnmarshalJSON accepts an integer, a string or an object.
func (e *Entry) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0:
		return fmt.Errorf("empty entry")
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*e = Entry{Addr: s, short: true}
		return nil
	case b[0] == '{':
		type plain Entry
		var raw struct {
			plain
			Addr json.RawMessage `json:"addr"`
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		*e = Entry(raw.plain)
		if len(raw.Addr) == 0 {
			return fmt.Errorf("missing addr")
		}
		var inner Entry
		if err := inner.UnmarshalJSON(raw.Addr); err != nil {
			return err
		}
		if !inner.short {
			return fmt.Errorf("addr must be an integer or a string")
		}
		e.Addr, e.numeric = inner.Addr, inner.numeric
		return nil
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return err
		}
		if _, err := strconv.Atoi(n.String()); err != nil {
			return fmt.Errorf("port must be an integer, got: %s", n)
		}
		*e = Entry{Addr: n.String(), short: true, numeric: true}
		return nil
	}
	return fmt.Errorf("invalid port value type: %s", jsonType(b))
}

// MarshalJSON writes the entry back in the form it was given.
func (e Entry) MarshalJSON() ([]byte, error) {
	addr := any(e.Addr)
	if e.numeric {
		n, _ := strconv.Atoi(e.Addr)
		addr = n
	}
	if !e.HasOptions() && (e.short || e.Addr != "") {
		return json.Marshal(addr)
	}
	type plain Entry
	return json.Marshal(struct {
		Addr any `json:"addr"`
		plain
	}{addr, plain(e)})
}

func jsonType(b []byte) string {
	switch b[0] {
	case '[':
		return "table"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "nil"
	}
	return "unknown"
}

// Address is one socket to bind.
type Address struct {
	// Host is the IP to bind, or "" for all interfaces.
	Host string
	Port uint16
}

// String is the dial/listen form, host:port.
func (a Address) String() string { return net.JoinHostPort(a.Host, strconv.Itoa(int(a.Port))) }

// Expand validates an entry and returns the addresses it binds. The error
// text is APISIX's reason ("port out of range (1-65535): 70000"); the
// caller prefixes "invalid stream_proxy.tcp entry: ".
func (e Entry) Expand() ([]Address, error) {
	s := strings.TrimSpace(e.Addr)
	if s == "" {
		return nil, fmt.Errorf("missing port: %q", e.Addr)
	}
	host, portPart := "", s
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.Index(s, "]")
		if end < 0 {
			return nil, fmt.Errorf("invalid port format: %s", s)
		}
		host = s[1:end]
		rest := s[end+1:]
		if !strings.HasPrefix(rest, ":") || len(rest) == 1 {
			return nil, fmt.Errorf("missing port: %s", s)
		}
		portPart = rest[1:]
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() {
			return nil, fmt.Errorf("invalid IPv6 address: %s", s)
		}
	case strings.Contains(s, ":"):
		if strings.Count(s, ":") > 1 {
			return nil, fmt.Errorf("invalid port format: %s (IPv6 addresses must be bracketed: [::1]:9100)", s)
		}
		i := strings.LastIndex(s, ":")
		host, portPart = s[:i], s[i+1:]
		if portPart == "" {
			return nil, fmt.Errorf("missing port: %s", s)
		}
		if a, err := netip.ParseAddr(host); err != nil || !a.Is4() {
			return nil, fmt.Errorf("invalid IP address: %s", s)
		}
	}
	lo, hi, err := portRange(portPart, s)
	if err != nil {
		return nil, err
	}
	out := make([]Address, 0, hi-lo+1)
	for p := lo; p <= hi; p++ {
		out = append(out, Address{Host: host, Port: uint16(p)})
	}
	return out, nil
}

func portRange(s, whole string) (lo, hi int, err error) {
	a, b, isRange := strings.Cut(s, "-")
	lo, err = parsePort(a, whole)
	if err != nil {
		return 0, 0, err
	}
	hi = lo
	if isRange {
		if hi, err = parsePort(b, whole); err != nil {
			return 0, 0, err
		}
		if lo > hi {
			return 0, 0, fmt.Errorf("invalid port range (start > end): %s", whole)
		}
	}
	return lo, hi, nil
}

func parsePort(s, whole string) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("missing port: %s", whole)
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("invalid port format: %s", whole)
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port out of range (1-65535): %s", s)
	}
	return n, nil
}
