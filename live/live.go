// Package live holds the process-global state that outlives any one Caddy
// config: the object registry and the data-path runtime. Every module of
// the plugin (the app, the Admin API, the layer4 handlers) reaches the
// same instances through it.
package live

import (
	"sync"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-apisix/stream/proxy"
	"github.com/caddy-apisix/stream/registry"
)

var (
	reg     = registry.New()
	once    sync.Once
	runtime *proxy.Runtime
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
