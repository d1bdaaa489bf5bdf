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
	"sync/atomic"

	"github.com/caddy-apisix/stream/adminapi"
	"github.com/caddy-apisix/stream/live"
	"github.com/caddy-apisix/stream/registry"

	_ "github.com/caddy-apisix/stream/handlers" // layer4.handlers.apisix, layer4.handlers.apisix_proxy
	_ "github.com/caddy-apisix/stream/matchers" // layer4.matchers.apisix
)

// The live state is process-global: it must outlive any one Caddy config
// so that reloads (and failed reloads) never lose or re-read objects.
var (
	// liveAdmin holds the Admin API settings of the running apisix app;
	// nil while no app runs.
	liveAdmin atomic.Pointer[adminapi.Config]
)

// globalRegistry returns the process-global registry.
func globalRegistry() *registry.Registry { return live.Registry() }

// adminSettings returns the Admin API settings of the running app, or nil.
func adminSettings() *adminapi.Config { return liveAdmin.Load() }
