package stream

import (
	"net"
	"net/netip"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-apisix/stream/live"
	"github.com/caddy-apisix/stream/registry"
	"github.com/caddy-apisix/stream/router"
)

// routeListeners lists every address that can hand a connection to the
// stream routes, for the Admin API's "can never match" warning: the
// stream_proxy listeners and the listen addresses of the config's layer4
// servers (any of them may run layer4.handlers.apisix, perhaps behind TLS).
// It also returns the machine's networks, which wildcard listeners serve.
//
// A control plane binds no stream listeners (its data planes do, elsewhere):
// nil, unknown.
func (a *App) routeListeners(ctx caddy.Context) ([]router.Listener, []netip.Prefix) {
	if a.deploy.role == roleControlPlane {
		return nil, nil
	}
	out := []router.Listener{} // non-nil: known, maybe empty
	for _, l := range a.listeners {
		rl := router.Listener{Network: l.network, Port: l.addr.Port, TLS: l.opts.TLS || l.opts.TLSPassthrough}
		rl.Addr, _ = netip.ParseAddr(l.addr.Host)
		out = append(out, rl)
	}
	for _, u := range layer4Addresses(ctx) {
		rl := router.Listener{Network: u.network, Port: u.port, TLS: true}
		rl.Addr, _ = netip.ParseAddr(u.host)
		out = append(out, rl)
	}
	return out, localNets()
}

// boundAddrs lists the bound stream listeners as network/address
// ("tcp/127.0.0.1:9101", "udp/[::]:9200"), for the start-up log line.
func (a *App) boundAddrs() []string {
	out := make([]string, 0, len(a.tcp)+len(a.udp))
	for i, ln := range a.tcp {
		s := "tcp/" + ln.Addr().String()
		if o := a.tcpOpts[i]; o.TLS || o.TLSPassthrough || o.ProxyProtocol {
			var opts []string
			for _, f := range []struct {
				on   bool
				name string
			}{{o.TLS, "tls"}, {o.TLSPassthrough, "tls_passthrough"}, {o.ProxyProtocol, "proxy_protocol"}} {
				if f.on {
					opts = append(opts, f.name)
				}
			}
			s += " (" + strings.Join(opts, ", ") + ")"
		}
		out = append(out, s)
	}
	for _, pc := range a.udp {
		out = append(out, "udp/"+pc.LocalAddr().String())
	}
	return out
}

// warnRoutes logs, once per start, the warnings the Admin API gives on
// writes for every live stream route: a route from the Caddyfile or the
// store that is shadowed or can never match is named at start too.
func (a *App) warnRoutes() {
	live.Registry().View(func(v registry.View) {
		for _, msg := range live.AdminState().AllRouteWarnings(v, a.admin) {
			a.logger.Warn(msg)
		}
	})
}

// localNets are the networks of the machine's interfaces; nil when they
// cannot be read (then every address counts as local).
func localNets() []netip.Prefix {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Prefix
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if p, err := netip.ParsePrefix(n.String()); err == nil {
				out = append(out, p.Masked())
			}
		}
	}
	return out
}
