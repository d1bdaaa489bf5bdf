package handlers

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/mholt/caddy-l4/layer4"

	"github.com/caddy-apisix/stream/live"
	"github.com/caddy-apisix/stream/proxy"
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
	// TLS terminates TLS with the certificates of the SSL objects.
	TLS bool `json:"tls,omitempty"`
	// TLSPassthrough routes by the ClientHello's SNI without
	// terminating; with tls too, the matched route's tls_passthrough decides.
	TLSPassthrough bool `json:"tls_passthrough,omitempty"`
	// ProxyProtocol expects a PROXY v1/v2 header from the client.
	ProxyProtocol bool `json:"proxy_protocol,omitempty"`
	// ProxyProtocolToUpstream sends a PROXY v1 header to the upstream.
	ProxyProtocolToUpstream bool `json:"proxy_protocol_to_upstream,omitempty"`
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
	rt.ServeStream(conn, pre, proxy.ListenerOptions{
		TLS: h.TLS, TLSPassthrough: h.TLSPassthrough,
		ProxyProtocol: h.ProxyProtocol, ProxyProtocolToUpstream: h.ProxyProtocolToUpstream,
	})
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
	for d.NextBlock(0) {
		opt := d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
		switch opt {
		case "tls":
			h.TLS = true
		case "tls_passthrough":
			h.TLSPassthrough = true
		case "proxy_protocol":
			h.ProxyProtocol = true
		case "proxy_protocol_to_upstream":
			h.ProxyProtocolToUpstream = true
		default:
			return d.Errf("unknown apisix handler option %q", opt)
		}
	}
	return nil
}

// Interface guards
var (
	_ layer4.NextHandler    = (*Dispatch)(nil)
	_ caddyfile.Unmarshaler = (*Dispatch)(nil)
)
