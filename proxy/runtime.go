// Package proxy is the data path: it compiles the registry's objects into
// immutable snapshots, accepts TCP and UDP traffic on the stream_proxy
// listeners, matches each connection or UDP session to a stream route and
// proxies it to the route's upstream.
package proxy

import (
	"sync"
	"sync/atomic"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/plugin"
	"github.com/caddy-apisix/stream/registry"
	"go.uber.org/zap"
)

// Runtime owns the current snapshot. There is one per process; the
// registry calls Compile under its lock on every change.
type Runtime struct {
	snap atomic.Pointer[Snapshot]

	mu          sync.Mutex // guards the fields below; Compile runs under the registry lock too
	upstreams   map[string]*Upstream
	plugins     map[string]builtPlugin
	parsed      map[*registry.Object]*parsedRoute
	objs        objCache
	fallbackSNI string
	logger      atomic.Pointer[zap.Logger] // read per connection: no lock
	logAccess   atomic.Bool
	limits      limits
	metrics     *streamMetrics
	acceptWarn  warnLimiter
	// tlsWarn and unmatchedWarn rate-limit the WARNs of failed TLS
	// handshakes and of TCP and UDP sessions no route matched
	tlsWarn       warnLimiter
	unmatchedWarn [2]warnLimiter
}

// SetAccessLog turns the per-session access log on or off.
func (rt *Runtime) SetAccessLog(on bool) { rt.logAccess.Store(on) }

// NewRuntime returns a runtime with an empty snapshot.
func NewRuntime(logger *zap.Logger) *Runtime {
	if logger == nil {
		logger = zap.NewNop()
	}
	rt := &Runtime{upstreams: map[string]*Upstream{}, metrics: newStreamMetrics()}
	rt.logger.Store(logger)
	empty, _ := (&compiler{view: emptyView{}, logger: logger, metrics: rt.metrics, next: map[string]*Upstream{}, nextPlugins: map[string]builtPlugin{}, nextParsed: map[*registry.Object]*parsedRoute{}, nextObjs: newObjCache(objCache{})}).compile("", nil)
	rt.snap.Store(empty)
	return rt
}

// SetLogger replaces the logger used for new snapshots and connections.
func (rt *Runtime) SetLogger(l *zap.Logger) { rt.logger.Store(l) }

// Logger is the runtime's logger.
func (rt *Runtime) Logger() *zap.Logger { return rt.logger.Load() }

// SetFallbackSNI sets apisix.ssl.fallback_sni; it applies at the next
// Compile.
func (rt *Runtime) SetFallbackSNI(s string) {
	rt.mu.Lock()
	rt.fallbackSNI = s
	rt.mu.Unlock()
}

// Snapshot returns the current snapshot.
func (rt *Runtime) Snapshot() *Snapshot { return rt.snap.Load() }

// Compile builds a snapshot from v and publishes it. It is the registry's
// CompileFunc. Health checkers of new upstreams start now (not on first
// traffic); those of upstreams that left stop.
func (rt *Runtime) Compile(v registry.View) error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	c := &compiler{
		prev: rt.upstreams, next: make(map[string]*Upstream, len(rt.upstreams)), view: v, logger: rt.Logger(), metrics: rt.metrics,
		prevPlugins: rt.plugins, nextPlugins: make(map[string]builtPlugin, len(rt.plugins)),
		prevParsed: rt.parsed, nextParsed: make(map[*registry.Object]*parsedRoute, len(rt.parsed)),
		live: rt.Snapshot, prevObjs: rt.objs, nextObjs: newObjCache(rt.objs),
	}
	prev := rt.snap.Load()
	snap, err := c.compile(rt.fallbackSNI, prev.certs)
	if err != nil {
		for _, u := range c.started {
			u.checker.Stop()
		}
		return err
	}
	for _, u := range c.started {
		u.checker.Start()
	}
	for key, u := range rt.upstreams {
		if c.next[key] != u && u.checker != nil {
			u.checker.Stop()
		}
	}
	rt.upstreams = c.next
	rt.plugins = c.nextPlugins
	rt.parsed = c.nextParsed
	rt.objs = c.nextObjs
	plugin.SetMetadata(snap.metadata)
	rt.snap.Store(snap)
	rt.metrics.prune(prev, snap)
	return nil
}

// Close stops every health checker.
func (rt *Runtime) Close() {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for _, u := range rt.upstreams {
		if u.checker != nil {
			u.checker.Stop()
		}
	}
	rt.upstreams = map[string]*Upstream{}
}

type emptyView struct{}

func (emptyView) Get(kind model.Kind, id string) *registry.Object { return nil }
func (emptyView) List(kind model.Kind) []*registry.Object         { return nil }

// Interface guards
var _ registry.View = emptyView{}
