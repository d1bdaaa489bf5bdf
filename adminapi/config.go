// Package adminapi serves the APISIX-compatible Admin API
// (/apisix/admin/stream_routes, /upstreams, /ssls, ...) over a registry.
//
// It is plain Go: Handler is an http.Handler that the Caddy module
// admin.api.apisix mounts on Caddy's admin endpoint, and that tests drive
// over httptest. Behaviour, status codes and error texts follow
// docs/apisix/admin-api.md, docs/apisix/upstreams.md#upstream-resource-checks
// and docs/apisix/tls.md#ssl-object-schema.
package adminapi

import (
	"net/netip"

	"github.com/caddy-apisix/stream/router"
	"github.com/caddy-apisix/stream/standalone"
)

// Config is what the Admin API needs from the running apisix app.
type Config struct {
	// StreamEnabled is false when the app has no stream_proxy: every
	// stream_routes call then answers 400 (docs/apisix/config.md#stream-mode-disabled).
	StreamEnabled bool
	// Keys are the admin keys; none means no key check.
	Keys []Key
	// AllowAdmin are the client networks allowed; empty means the APISIX
	// default, 127.0.0.0/24 (plus ::1).
	AllowAdmin []netip.Prefix
	// KeyPrefix is the etcd-style prefix shown in response keys
	// ("/apisix/stream_routes/1"); empty means "/apisix".
	KeyPrefix string
	// Listeners are the addresses that hand connections to the stream
	// routes, for the warnings on writes (warnings.go); nil means unknown
	// and skips the "can never match" check.
	Listeners []router.Listener
	// LocalNets are the machine's own networks, for listeners bound to
	// every address; nil means any address may be local.
	LocalNets []netip.Prefix
	// FallbackSNI is apisix.ssl.fallback_sni (route sni matching).
	FallbackSNI string
	// Standalone is the API-driven standalone configuration (role
	// traditional, config_provider yaml or json): /apisix/admin/configs
	// serves it. Nil otherwise.
	Standalone *standalone.Configs
	// ReadOnly, when set, is the error_msg of the 405 that answers every
	// write to an object resource (a data plane, a standalone node).
	ReadOnly string
	// StoreBody stores objects as sent (plus id and timestamps), without
	// the schema defaults the checks fill in, as APISIX does. Set it only
	// when every reader applies the defaults itself (the etcd store's
	// watch does, through CheckStored).
	StoreBody bool
}

// Key is one admin_key entry.
type Key struct {
	// Name labels the key (APISIX's admin_key[].name); it is not checked.
	Name string
	// Key is the secret clients send; an empty Key never matches.
	Key string
	// Role is "admin" or "viewer" (GET only); anything else is admin.
	Role string
}

// defaultAllowAdmin is APISIX's allow_admin default plus IPv6 loopback.
var defaultAllowAdmin = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/24"),
	netip.MustParsePrefix("::1/128"),
}

func (c *Config) keyPrefix() string {
	if c.KeyPrefix == "" {
		return "/apisix"
	}
	return c.KeyPrefix
}
