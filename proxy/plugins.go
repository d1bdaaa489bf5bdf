package proxy

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/router"
)

// Plugin is a stream plugin: it runs in the preread phase, after the route
// matched and before the upstream is dialled.
type Plugin interface {
	// Preread returns false to close the session without a byte, as
	// APISIX does; release, if not nil, runs when the session ends.
	Preread(s *Session) (ok bool, release func())
}

// preread runs the route's plugins in priority order. The caller owns the
// returned releases (run them when the session ends) whether or not the
// session may go on.
func (r *Route) preread(s *Session) (releases []func(), ok bool) {
	for _, p := range r.Plugins {
		ok, release := p.Preread(s)
		if release != nil {
			releases = append(releases, release)
		}
		if !ok {
			return releases, false
		}
	}
	return releases, true
}

// Session is what plugins see of a connection or UDP session.
type Session struct {
	Remote  netip.Addr
	Local   netip.Addr
	Port    uint16
	SNI     string
	RouteID string
}

// buildPlugins compiles a route's plugins, highest priority first. Confs
// with _meta.disable are skipped. Stateful plugins are shared across
// snapshots while the route's conf is unchanged (limit-conn counts).
func (c *compiler) buildPlugins(routeID string, confs map[string]json.RawMessage) ([]Plugin, error) {
	type named struct {
		name string
		prio int
		p    Plugin
	}
	var list []named
	for name, raw := range confs {
		var meta struct {
			Meta struct {
				Disable bool `json:"disable"`
			} `json:"_meta"`
		}
		_ = json.Unmarshal(raw, &meta)
		if meta.Meta.Disable {
			continue
		}
		key := "stream_routes/" + routeID + "/" + name + "/" + string(raw)
		p := c.prevPlugins[key]
		if p == nil {
			var err error
			switch name {
			case "ip-restriction":
				p, err = newIPRestriction(raw)
			case "limit-conn":
				p, err = newLimitConn(raw)
			default:
				err = fmt.Errorf("unknown plugin [%s]", name)
			}
			if err != nil {
				return nil, err
			}
		}
		c.nextPlugins[key] = p
		list = append(list, named{name, model.KnownStreamPlugins[name], p})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].prio > list[j].prio })
	out := make([]Plugin, len(list))
	for i, n := range list {
		out[i] = n.p
	}
	return out, nil
}

// ipRestriction is APISIX's ip-restriction: a whitelist or a blacklist of
// IPs and CIDRs checked against the client address.
type ipRestriction struct {
	allow    bool
	prefixes []netip.Prefix
}

func newIPRestriction(raw json.RawMessage) (Plugin, error) {
	var conf struct {
		Whitelist []string `json:"whitelist"`
		Blacklist []string `json:"blacklist"`
	}
	if err := json.Unmarshal(raw, &conf); err != nil {
		return nil, fmt.Errorf("ip-restriction: %v", err)
	}
	p := &ipRestriction{allow: conf.Whitelist != nil}
	list := conf.Blacklist
	if p.allow {
		list = conf.Whitelist
	}
	for _, s := range list {
		pfx, err := router.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("ip-restriction: invalid ip %q", s)
		}
		p.prefixes = append(p.prefixes, pfx)
	}
	return p, nil
}

func (p *ipRestriction) Preread(s *Session) (bool, func()) {
	hit := false
	for _, pfx := range p.prefixes {
		if pfx.Contains(s.Remote) {
			hit = true
			break
		}
	}
	return hit == p.allow, nil
}

// limitConn is APISIX's limit-conn: concurrent sessions per key; above
// conn (up to conn+burst) a session is delayed, above that it is closed.
type limitConn struct {
	conn, burst int
	delay       time.Duration
	onlyDefault bool
	key         string

	mu     sync.Mutex
	active map[string]int
}

func newLimitConn(raw json.RawMessage) (Plugin, error) {
	var conf struct {
		Conn                int     `json:"conn"`
		Burst               int     `json:"burst"`
		DefaultConnDelay    float64 `json:"default_conn_delay"`
		Key                 string  `json:"key"`
		OnlyUseDefaultDelay bool    `json:"only_use_default_delay"`
	}
	if err := json.Unmarshal(raw, &conf); err != nil {
		return nil, fmt.Errorf("limit-conn: %v", err)
	}
	if conf.Conn <= 0 {
		return nil, fmt.Errorf("limit-conn: conn must be > 0")
	}
	return &limitConn{
		conn: conf.Conn, burst: conf.Burst, delay: seconds(conf.DefaultConnDelay),
		onlyDefault: conf.OnlyUseDefaultDelay, key: conf.Key, active: map[string]int{},
	}, nil
}

func (p *limitConn) keyOf(s *Session) string {
	switch p.key {
	case "server_addr":
		return s.Local.String()
	case "server_port":
		return fmt.Sprint(s.Port)
	case "server_name":
		if s.SNI != "" {
			return s.SNI
		}
	case "route_id":
		return s.RouteID
	}
	// remote_addr, and the APISIX fallback for an empty key value
	return s.Remote.String()
}

func (p *limitConn) Preread(s *Session) (bool, func()) {
	key := p.keyOf(s)
	p.mu.Lock()
	n := p.active[key] + 1
	if n > p.conn+p.burst {
		p.mu.Unlock()
		return false, nil
	}
	p.active[key] = n
	p.mu.Unlock()
	release := func() {
		p.mu.Lock()
		if p.active[key] <= 1 {
			delete(p.active, key)
		} else {
			p.active[key]--
		}
		p.mu.Unlock()
	}
	if n > p.conn {
		d := p.delay
		if !p.onlyDefault {
			d = p.delay * time.Duration((n-1)/p.conn)
		}
		time.Sleep(d)
	}
	return true, release
}
