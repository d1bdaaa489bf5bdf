// Package stream is a Caddy v2 plugin that gives Caddy Apache APISIX's L4
// stream proxy: stream routes that match TCP, UDP and TLS connections on the
// client address, the local address and port and the TLS SNI, proxied to
// APISIX upstreams, and managed at runtime through an APISIX-compatible Admin
// API on Caddy's admin endpoint.
//
// The Caddy modules are:
//
//   - apisix: the app (listeners, settings, static objects);
//   - admin.api.apisix: the Admin API under /apisix/admin/;
//   - layer4.handlers.apisix: the dispatcher over the live stream routes;
//   - layer4.matchers.apisix: a static stream-route matcher;
//   - layer4.handlers.apisix_proxy: a static proxy to one APISIX upstream.
package stream

import (
	_ "github.com/caddy-apisix/stream/handlers" // layer4.handlers.apisix, layer4.handlers.apisix_proxy
	_ "github.com/caddy-apisix/stream/matchers" // layer4.matchers.apisix
)
