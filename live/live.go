// Package live holds the process-global state that outlives any one Caddy
// config: the object registry, the data-path runtime and the Admin API
// settings of the running apisix app. Every module of the plugin (the app,
// the Admin API, the layer4 handlers) reaches the same instances through
// it, so reloads (and failed reloads) never lose or re-read objects.
package live

import (
	"sync"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-apisix/stream/adminapi"
	"github.com/caddy-apisix/stream/proxy"
	"github.com/caddy-apisix/stream/registry"
)

var (
	reg     = registry.New()
	once    sync.Once
	runtime *proxy.Runtime
	admin   atomic.Pointer[adminapi.Config]
	adminSt = adminapi.NewState()
)

// Registry is the process-global object registry.
func Registry() *registry.Registry { return reg }

// Runtime is the process-global data path. Until an apisix app opens the
// store, it serves the registry's objects without persistence.
func Runtime() *proxy.Runtime {
	once.Do(func() {
		runtime = proxy.NewRuntime(caddy.Log().Named("apisix"))
		_ = reg.SetCompile(runtime.Compile)
	})
	return runtime
}

// AdminConfig returns the Admin API settings of the running apisix app,
// nil while none runs.
func AdminConfig() *adminapi.Config { return admin.Load() }

// AdminState is the Admin API state every adminapi.Handler of the process
// shares (the write bound, the parsed-filter cache of the warnings).
func AdminState() *adminapi.State { return adminSt }

// SetAdminConfig publishes the running app's Admin API settings; nil when
// no apisix app is left.
func SetAdminConfig(c *adminapi.Config) { admin.Store(c) }
