package handlers

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/mholt/caddy-l4/layer4"

	"github.com/caddy-apisix/stream/live"
	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/proxy"
)

func init() {
	caddy.RegisterModule(new(Proxy))
}

// Proxy is layer4.handlers.apisix_proxy: a static proxy to one APISIX
// upstream object, for hand-written layer4 routes. It uses the same
// balancers, retries, timeouts, health checks and upstream TLS as the
// stream routes. It is terminal. TCP only.
type Proxy struct {
	// Upstream is an APISIX upstream object (nodes, type, retries,
	// timeout, scheme, tls, checks ...), validated as /apisix/admin/upstreams
	// validates it.
	Upstream json.RawMessage `json:"upstream"`

	// Name labels the handler's sessions as a stream route id would,
	// behind "apisix_proxy/" (added unless the name starts with it): the
	// route label of the apisix_stream_* metrics, the route field of the
	// access log and of the logs of failed nodes, and the upstream id of
	// its health-check logs. "redis" labels them apisix_proxy/redis, which
	// no stream route id can be, so a handler and a route never share
	// series. Default: the upstream's node addresses, sorted and
	// comma-separated (apisix_proxy/127.0.0.1:6379,127.0.0.1:6380), so
	// that handlers with different nodes never share series.
	Name string `json:"name,omitempty"`

	upstream *proxy.Upstream
}

// CaddyModule returns the Caddy module information.
func (*Proxy) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "layer4.handlers.apisix_proxy",
		New: func() caddy.Module { return new(Proxy) },
	}
}

// Provision validates and compiles the upstream; its health checks start.
func (h *Proxy) Provision(ctx caddy.Context) error {
	if len(h.Upstream) == 0 {
		return fmt.Errorf("apisix_proxy: upstream is required")
	}
	obj, err := model.DecodeObject(h.Upstream)
	if err != nil {
		return fmt.Errorf("apisix_proxy: upstream: invalid JSON: %w", err)
	}
	if err := model.CheckUpstream(obj, model.Refs{}); err != nil {
		return fmt.Errorf("apisix_proxy: upstream: %w", err)
	}
	u, err := model.ParseUpstream(h.Upstream)
	if err != nil {
		return fmt.Errorf("apisix_proxy: upstream: %w", err)
	}
	name := h.Name
	if name == "" {
		addrs := make([]string, len(u.Nodes))
		for i, n := range u.Nodes {
			addrs[i] = n.Addr()
		}
		slices.Sort(addrs)
		name = strings.Join(addrs, ",")
	}
	h.upstream, err = live.Runtime().NewStaticUpstream(u, h.Upstream, name, ctx.Logger())
	if err != nil {
		return fmt.Errorf("apisix_proxy: %w", err)
	}
	return nil
}

// Cleanup stops the upstream's health checks.
func (h *Proxy) Cleanup() error {
	if h.upstream != nil {
		h.upstream.Close()
	}
	return nil
}

// Handle proxies the connection to the upstream.
func (h *Proxy) Handle(cx *layer4.Connection, _ layer4.Handler) error {
	if isPacket(cx) {
		return fmt.Errorf("apisix_proxy: UDP is not supported; use the apisix handler with a stream route")
	}
	pre, conn, err := takePrefetched(cx)
	if err != nil {
		return err
	}
	live.Runtime().ServeUpstream(conn, pre, h.upstream)
	return nil
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	apisix_proxy <host:port[=weight]>... [<option>=<value>...] {
//		name     <name>
//		type     roundrobin|chash|least_conn|ewma
//		key      <variable>
//		hash_on  vars|...
//		retries  <n>
//		timeout  <connect> <send> <read>
//		scheme   tcp|tls
//	}
//
// Timeouts are in seconds, as in APISIX. Caddy's Caddyfile grammar has no
// one-line blocks ("{ type chash }" on the directive's line is refused by
// the Caddyfile parser before any module sees it), so every option can
// also be given on the directive line as <option>=<value>, the timeout as
// timeout=<connect>,<send>,<read>:
//
//	apisix_proxy 127.0.0.1:6379 127.0.0.1:6380=2 type=chash key=remote_addr retries=1 timeout=1,60,60
func (h *Proxy) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // handler name
	up := map[string]any{}
	nodes := map[string]int{}
	for d.NextArg() {
		if name, ok := strings.CutPrefix(d.Val(), "name="); ok {
			h.Name = name
			continue
		}
		if key, val, isOpt := inlineOption(d.Val()); isOpt {
			args := []string{val}
			if key == "timeout" {
				args = strings.Split(val, ",")
			}
			if err := setProxyOption(d, up, key, args); err != nil {
				return err
			}
			continue
		}
		addr, w, found := strings.Cut(d.Val(), "=")
		weight := 1
		if found {
			var err error
			if weight, err = strconv.Atoi(w); err != nil {
				return d.Errf("invalid weight in %q: %v", d.Val(), err)
			}
		}
		nodes[addr] = weight
	}
	for d.NextBlock(0) {
		key := d.Val()
		if key == "name" {
			if !d.NextArg() {
				return d.ArgErr()
			}
			h.Name = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
			continue
		}
		if err := setProxyOption(d, up, key, d.RemainingArgs()); err != nil {
			return err
		}
	}
	if len(nodes) == 0 {
		return d.Err("apisix_proxy: at least one node is required")
	}
	up["nodes"] = nodes
	b, err := json.Marshal(up)
	if err != nil {
		return err
	}
	h.Upstream = b
	return nil
}

// proxyOptions are the apisix_proxy options.
var proxyOptions = map[string]bool{"type": true, "key": true, "scheme": true, "hash_on": true, "retries": true, "timeout": true}

// inlineOption splits an <option>=<value> argument; a node (host:port=w)
// never names an option before its "=".
func inlineOption(arg string) (key, val string, ok bool) {
	key, val, found := strings.Cut(arg, "=")
	if !found || !proxyOptions[key] {
		return "", "", false
	}
	return key, val, true
}

// setProxyOption sets one upstream option from its arguments.
func setProxyOption(d *caddyfile.Dispenser, up map[string]any, key string, args []string) error {
	switch key {
	case "type", "key", "scheme", "hash_on":
		if len(args) != 1 {
			return d.ArgErr()
		}
		up[key] = args[0]
	case "retries":
		if len(args) != 1 {
			return d.ArgErr()
		}
		n, err := strconv.Atoi(args[0])
		if err != nil {
			return d.Errf("retries: %v", err)
		}
		up[key] = n
	case "timeout":
		if len(args) != 3 {
			return d.Errf("timeout: want <connect> <send> <read> in seconds")
		}
		var t [3]float64
		for i, a := range args {
			var err error
			if t[i], err = strconv.ParseFloat(a, 64); err != nil {
				return d.Errf("timeout: %v", err)
			}
		}
		up[key] = map[string]float64{"connect": t[0], "send": t[1], "read": t[2]}
	default:
		return d.Errf("unknown apisix_proxy option %q", key)
	}
	return nil
}

// Interface guards
var (
	_ layer4.NextHandler    = (*Proxy)(nil)
	_ caddy.Provisioner     = (*Proxy)(nil)
	_ caddy.CleanerUpper    = (*Proxy)(nil)
	_ caddyfile.Unmarshaler = (*Proxy)(nil)
)
