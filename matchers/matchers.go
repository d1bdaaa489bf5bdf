// Package matchers provides layer4.matchers.apisix, a static matcher with
// the stream-route filter fields, for hand-written layer4 routes.
package matchers

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/mholt/caddy-l4/layer4"

	"github.com/caddy-apisix/stream/router"
	"github.com/caddy-apisix/stream/tlsx"
)

func init() {
	caddy.RegisterModule(new(Match))
}

// Match is layer4.matchers.apisix: it matches a connection with the
// filters of an APISIX stream route, with the same semantics (IP or CIDR,
// v4 and v6; exact port; sni exact, "*.suffix" over any number of labels,
// or "*"). All fields set must match; none set matches everything.
type Match struct {
	// RemoteAddr is the client IP or CIDR.
	RemoteAddr string `json:"remote_addr,omitempty"`
	// ServerAddr is the local IP or CIDR the connection arrived on.
	ServerAddr string `json:"server_addr,omitempty"`
	// ServerPort is the local port the connection arrived on.
	ServerPort int `json:"server_port,omitempty"`
	// SNI is the TLS server name: read from a terminated connection, or
	// from the ClientHello without terminating.
	SNI string `json:"sni,omitempty"`
	// SNIs matches any of several server names.
	SNIs []string `json:"snis,omitempty"`

	table *router.Table[struct{}]
}

// CaddyModule returns the Caddy module information.
func (*Match) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "layer4.matchers.apisix",
		New: func() caddy.Module { return new(Match) },
	}
}

// Provision compiles the filters.
func (m *Match) Provision(caddy.Context) error {
	r := &router.Route{ID: "matcher"}
	var err error
	if r.RemoteAddr, err = router.ParsePrefix(m.RemoteAddr); err != nil {
		return fmt.Errorf("invalid remote_addr: %s", m.RemoteAddr)
	}
	if r.ServerAddr, err = router.ParsePrefix(m.ServerAddr); err != nil {
		return fmt.Errorf("invalid server_addr: %s", m.ServerAddr)
	}
	if m.ServerPort < 0 || m.ServerPort > 65535 {
		return fmt.Errorf("invalid server_port: %d", m.ServerPort)
	}
	if m.SNI != "" && len(m.SNIs) > 0 {
		return fmt.Errorf("sni and snis are exclusive")
	}
	r.ServerPort = uint16(m.ServerPort)
	if m.SNI != "" {
		r.SNIs = []string{m.SNI}
	}
	r.SNIs = append(r.SNIs, m.SNIs...)
	m.table, err = router.New([]*router.Entry[struct{}]{{Route: r}})
	return err
}

// Match reports whether the connection passes the filters.
func (m *Match) Match(cx *layer4.Connection) (bool, error) {
	q := router.NewQuery(router.AddrPortOf(cx.RemoteAddr()), router.AddrPortOf(cx.LocalAddr()), "")
	if m.SNI != "" || len(m.SNIs) > 0 {
		if tc, ok := cx.Conn.(interface{ ConnectionState() tls.ConnectionState }); ok {
			q.SNI = tc.ConnectionState().ServerName
		} else {
			info, err := tlsx.ParseClientHello(cx.MatchingBytes())
			switch {
			case errors.Is(err, tlsx.ErrNeedMore):
				return false, layer4.ErrConsumedAllPrefetchedBytes
			case err != nil:
				return false, nil
			}
			q.SNI = info.ServerName
		}
	}
	return m.table.Match(q) != nil, nil
}

// UnmarshalCaddyfile sets up the matcher from Caddyfile tokens. Syntax:
//
//	apisix {
//		remote_addr <ip|cidr>
//		server_addr <ip|cidr>
//		server_port <port>
//		sni <name>...
//	}
func (m *Match) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // matcher name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		key := d.Val()
		args := d.RemainingArgs()
		if len(args) == 0 {
			return d.ArgErr()
		}
		switch key {
		case "remote_addr", "server_addr":
			if len(args) != 1 {
				return d.ArgErr()
			}
			if key == "remote_addr" {
				m.RemoteAddr = args[0]
			} else {
				m.ServerAddr = args[0]
			}
		case "server_port":
			if len(args) != 1 {
				return d.ArgErr()
			}
			p, err := strconv.Atoi(args[0])
			if err != nil {
				return d.Errf("server_port: %v", err)
			}
			m.ServerPort = p
		case "sni":
			if len(args) == 1 {
				m.SNI = args[0]
			} else {
				m.SNIs = args
			}
		default:
			return d.Errf("unknown apisix matcher option %q", key)
		}
	}
	return nil
}

// Interface guards
var (
	_ layer4.ConnMatcher    = (*Match)(nil)
	_ caddy.Provisioner     = (*Match)(nil)
	_ caddyfile.Unmarshaler = (*Match)(nil)
)
