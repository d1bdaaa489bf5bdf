// Package handlers provides the layer4 handlers of the plugin:
// layer4.handlers.apisix, the dispatcher over the live stream routes, and
// layer4.handlers.apisix_proxy, a static proxy to one APISIX upstream.
package handlers

import (
	"io"
	"net"

	"github.com/mholt/caddy-l4/layer4"
)

// takePrefetched drains what caddy-l4 read ahead for matching, so that the
// raw connection underneath can be used (and copied with raw system calls) directly.
func takePrefetched(cx *layer4.Connection) ([]byte, net.Conn, error) {
	pending := cx.MatchingBytes()
	var pre []byte
	if len(pending) > 0 {
		pre = make([]byte, len(pending))
		if _, err := io.ReadFull(cx, pre); err != nil {
			return nil, nil, err
		}
	}
	return pre, cx.Conn, nil
}

func isPacket(cx *layer4.Connection) bool {
	_, ok := cx.LocalAddr().(*net.UDPAddr)
	return ok
}
