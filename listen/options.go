package listen

import "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

// Options are a TCP listener's options, declared once for the JSON and
// Caddyfile forms of a stream_proxy.tcp entry (Entry) and of the
// layer4.handlers.apisix handler, and passed as they are to the data path
// (proxy.ListenerOptions).
type Options struct {
	// TLS terminates TLS with the certificates of the SSL objects.
	TLS bool `json:"tls,omitempty"`
	// TLSPassthrough routes by the ClientHello's SNI and forwards TLS
	// untouched; with tls too, the matched route's tls_passthrough decides.
	TLSPassthrough bool `json:"tls_passthrough,omitempty"`
	// ProxyProtocol requires a PROXY protocol v1/v2 header from clients;
	// its source address becomes remote_addr.
	ProxyProtocol bool `json:"proxy_protocol,omitempty"`
	// ProxyProtocolToUpstream sends a PROXY protocol v1 header upstream.
	ProxyProtocolToUpstream bool `json:"proxy_protocol_to_upstream,omitempty"`
}

// IsZero reports whether no option is set.
func (o Options) IsZero() bool { return o == Options{} }

// UnmarshalCaddyfile reads the block that follows the current token, one
// option a line, named as in JSON:
//
//	{
//		tls
//		tls_passthrough
//		proxy_protocol
//		proxy_protocol_to_upstream
//	}
//
// what names the block in the error for an unknown option
// (`unknown <what> option "x"`).
func (o *Options) UnmarshalCaddyfile(d *caddyfile.Dispenser, what string) error {
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
		switch opt {
		case "tls":
			o.TLS = true
		case "tls_passthrough":
			o.TLSPassthrough = true
		case "proxy_protocol":
			o.ProxyProtocol = true
		case "proxy_protocol_to_upstream":
			o.ProxyProtocolToUpstream = true
		default:
			return d.Errf("unknown %s option %q", what, opt)
		}
	}
	return nil
}
