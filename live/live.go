// Package live holds the process-global state that outlives any one Caddy
// config: the object registry, the data-path runtime and the Admin API
// settings of the running apisix app. Every module of the plugin (the app,
// the Admin API, the layer4 handlers) reaches the same instances through
// it, so reloads (and failed reloads) never lose or re-read objects.
//
// It is the one home of the process's mutable state. Each piece is a type
// of the package that uses it, and its one instance is created here (or
// inside an instance created here) and handed down, so that the lower
// packages keep no instance of their own:
//
//   - Registry: the objects (registry.Registry).
//   - Runtime: the data path (proxy.Runtime), which itself owns the
//     stream metrics, the plugin state shared across snapshots
//     (plugin.Shared: the plugin_metadata objects, syslog's compiled
//     metadata and running clients, reached through plugin.Env) and the
//     splice copy's pipe pool (rawsock.PipePool).
//   - AdminConfig and AdminState: the running app's Admin API settings,
//     and what the Admin API keeps between requests (adminapi.State: the
//     concurrent-write bound, the cache of parsed route filters).
//   - EtcdMetrics and StoreMetrics: the etcd and store gauges
//     (etcdstore.Metrics in etcdstore.Options, store.Metrics in
//     store.Store.WithMetrics and datacrypt.AtRest).
//   - WithActivation: which apisix app instance is live.
//   - ProtectDefaultLog: the wrapping of Caddy's default logger.
//
// Not state, and so left where it is: the tables filled once at init and
// read-only after, like Caddy's own module registry (plugin.Register's
// units, model.KnownStreamPlugins and the schema tables, the
// constant maps and lists), the sentinel errors, and interface guards.
// Also left as package variables: proxy's copy-buffer sync.Pool (a cache
// the garbage collector may empty at any time, holding nothing that is
// observable or must be released), and Caddy's own globals (caddy.Log,
// the metrics registry of the Caddy context).
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
