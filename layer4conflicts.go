package stream

import (
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/mholt/caddy-l4/layer4"
)

type usedAddr struct {
	server, raw, network, host string
	port                       uint16
}

// layer4Addresses lists the addresses the config's layer4 servers listen
// on, expanded to one entry per port.
func layer4Addresses(ctx caddy.Context) []usedAddr {
	app, err := ctx.AppIfConfigured("layer4")
	if err != nil || app == nil {
		return nil
	}
	l4, ok := app.(*layer4.App)
	if !ok {
		return nil
	}
	var out []usedAddr
	for name, srv := range l4.Servers {
		for _, raw := range srv.Listen {
			na, err := caddy.ParseNetworkAddress(raw)
			if err != nil {
				continue
			}
			network := "tcp"
			if strings.HasPrefix(na.Network, "udp") {
				network = "udp"
			}
			host := na.Host
			if host == "0.0.0.0" || host == "::" {
				host = ""
			}
			for p := na.StartPort; p <= na.EndPort && p <= 65535; p++ {
				out = append(out, usedAddr{server: name, raw: raw, network: network, host: host, port: uint16(p)})
			}
		}
	}
	return out
}
