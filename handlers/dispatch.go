package handlers

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/mholt/caddy-l4/layer4"

	"github.com/caddy-apisix/stream/listen"
	"github.com/caddy-apisix/stream/live"
)

func init() {
	caddy.RegisterModule(new(Dispatch))
}

// Dispatch is layer4.handlers.apisix: it matches the connection against
// the live stream routes (those of the Admin API and the apisix app) and
// proxies it to the route's upstream. It is terminal. In a user's own
// layer4 server it serves TCP and UDP; TLS options work as on a
// stream_proxy listener.
type Dispatch struct {
	// Options are the listener options of a stream_proxy.tcp entry: tls,
	// tls_passthrough, proxy_protocol, proxy_protocol_to_upstream.
	listen.Options
}

// CaddyModule returns the Caddy module information.
func (*Dispatch) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "layer4.handlers.apisix",
		New: func() caddy.Module { return new(Dispatch) },
	}
}

// Handle dispatches the connection.
func (h *Dispatch) Handle(cx *layer4.Connection, _ layer4.Handler) error {
	pre, conn, err := takePrefetched(cx)
	if err != nil {
		return err
	}
	rt := live.Runtime()
	if isPacket(cx) {
		rt.ServePacketSession(cx, pre)
		return nil
	}
	rt.ServeStream(conn, pre, h.Options)
	return nil
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	apisix [{
//		tls
//		tls_passthrough
//		proxy_protocol
//		proxy_protocol_to_upstream
//	}]
func (h *Dispatch) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // handler name
	if d.NextArg() {
		return d.ArgErr()
	}
	return h.Options.UnmarshalCaddyfile(d, "apisix handler")
}

// Interface guards
var (
	_ layer4.NextHandler    = (*Dispatch)(nil)
	_ caddyfile.Unmarshaler = (*Dispatch)(nil)
)
