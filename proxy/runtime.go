// Package proxy is the data path: it compiles the registry's objects into
// immutable snapshots, accepts TCP and UDP traffic on the stream_proxy
// listeners, matches each connection or UDP session to a stream route and
// proxies it to the route's upstream.
package proxy

import (
	"maps"
	"sync"
	"sync/atomic"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/plugin"
	"github.com/caddy-apisix/stream/registry"
	"github.com/caddy-apisix/stream/router"
	"go.uber.org/zap"
)

// Runtime owns the current snapshot. There is one per process; the
// registry calls Compile under its lock on every change.
type Runtime struct {
	snap atomic.Pointer[Snapshot]

	mu        sync.Mutex // guards the fields below; Compile runs under the registry lock too
	upstreams map[string]*Upstream
	plugins   map[string]builtPlugin
	parsed    map[string]*parsedRoute
	objs      objCache
	// ssl and sslRev are the SSL objects of the last full compile, which
	// an incremental one reuses.
	ssl    map[string]*model.SSL
	sslRev map[string]int64
	// gen is the registry compile the snapshot reflects.
	gen registry.Gen
	// enabled are the stream plugins that run; nil means all of them.
	enabled     map[string]bool
	fallbackSNI string
	logger      atomic.Pointer[zap.Logger] // read per connection: no lock
	logAccess   atomic.Bool
	tcpCopy     atomic.Int32 // a CopyMode
	limits      limits
	metrics     *streamMetrics
	acceptWarn  warnLimiter
	// tlsWarn and unmatchedWarn rate-limit the WARNs of failed TLS
	// handshakes and of TCP and UDP sessions no route matched
	tlsWarn       warnLimiter
	unmatchedWarn [2]warnLimiter
	// shared is the state the plugin instances share (plugin_metadata,
	// syslog's clients)
	shared *plugin.Shared
	// copies are the raw copies' shared stages (the splice stage's pipes,
	// tcp_copy auto's measurement), kept between connections
	copies copyStages
}

// SetAccessLog turns the per-session access log on or off.
func (rt *Runtime) SetAccessLog(on bool) { rt.logAccess.Store(on) }

// NewRuntime returns a runtime with an empty snapshot, copying TCP
// through the buffer (SetTCPCopy).
func NewRuntime(logger *zap.Logger) *Runtime {
	if logger == nil {
		logger = zap.NewNop()
	}
	rt := &Runtime{upstreams: map[string]*Upstream{}, metrics: newStreamMetrics(), shared: plugin.NewShared()}
	rt.logger.Store(logger)
	empty, _ := (&compiler{view: emptyView{}, logger: logger, metrics: rt.metrics, next: map[string]*Upstream{}, nextPlugins: map[string]builtPlugin{}, nextParsed: map[string]*parsedRoute{}, nextObjs: newObjCache(objCache{})}).compile("", nil)
	rt.snap.Store(empty)
	// the buffer until a config sets its mode: a runtime that no config
	// drives (tests, tools) never starts tcp_copy auto's measurement
	rt.SetTCPCopy(CopyBuffer)
	rt.copies.parkAfter.Store(int64(defaultParkAfter))
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

// SetStreamPlugins sets the stream plugins that run (nil: all): a route's
// conf of another plugin is skipped, as APISIX skips the plugins its
// node has not loaded (apisix/plugin.lua stream_filter and
// stream_plugin_checker). It applies at the next full compile
// (Registry.Recompile).
func (rt *Runtime) SetStreamPlugins(names []string) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if names == nil {
		rt.enabled = nil
		return
	}
	rt.enabled = map[string]bool{}
	for _, n := range names {
		rt.enabled[n] = true
	}
}

// Snapshot returns the current snapshot.
func (rt *Runtime) Snapshot() *Snapshot { return rt.snap.Load() }

// Compile builds a snapshot from v and publishes it. It is the registry's
// CompileFunc. Health checkers of new upstreams start now (not on first
// traffic); those of upstreams that left stop. When only stream routes
// changed since the snapshot, only they are compiled and the router is
// updated in place of a rebuild (compileRoutes).
func (rt *Runtime) Compile(v registry.View) error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	d := v.Delta()
	if rt.incremental(d) {
		if err := rt.compileRoutes(v, d.Keys); err != nil {
			return err
		}
		rt.gen = d.Gen
		return nil
	}
	c := &compiler{
		prev: rt.upstreams, next: make(map[string]*Upstream, len(rt.upstreams)), view: v, logger: rt.Logger(), metrics: rt.metrics, shared: rt.shared,
		prevPlugins: rt.plugins, nextPlugins: make(map[string]builtPlugin, len(rt.plugins)),
		prevParsed: rt.parsed, nextParsed: make(map[string]*parsedRoute, len(rt.parsed)),
		live: rt.Snapshot, prevObjs: rt.objs, nextObjs: newObjCache(rt.objs), enabled: rt.enabled,
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
	rt.ssl, rt.sslRev = c.ssl, c.sslRev
	rt.gen = d.Gen
	rt.shared.SetMetadata(snap.metadata)
	rt.snap.Store(snap)
	gone, kept := make([]*Route, 0, prev.table.Len()), make([]*Route, 0, snap.table.Len())
	prev.table.Each(func(e *router.Entry[*Route]) { gone = append(gone, e.Target) })
	snap.table.Each(func(e *router.Entry[*Route]) { kept = append(kept, e.Target) })
	rt.metrics.prune(gone, kept, snap)
	return nil
}

// maxIncremental is the largest change compiled route by route; a bigger
// one (a bulk import, a resync) is rebuilt in one pass.
const maxIncremental = 256

// incremental reports whether d can be applied to the current snapshot
// route by route: it follows the compile the snapshot came from, and it
// changes stream routes only.
func (rt *Runtime) incremental(d registry.Delta) bool {
	if d.All || d.Base != rt.gen || rt.gen == (registry.Gen{}) || len(d.Keys) > maxIncremental {
		return false
	}
	if rt.snap.Load().fallbackSNI != rt.fallbackSNI {
		return false
	}
	for _, k := range d.Keys {
		if k.Kind != model.StreamRoutes {
			return false
		}
	}
	return true
}

// compileRoutes compiles the stream routes ids against the current
// snapshot's upstreams, services and certificates, and publishes a
// snapshot whose router has them put or removed: the cost is that of the
// changed routes. The old snapshot stays as it was for the sessions that
// hold it.
func (rt *Runtime) compileRoutes(v registry.View, keys []registry.Key) error {
	prev := rt.snap.Load()
	c := &compiler{
		prev: rt.upstreams, next: map[string]*Upstream{}, view: v, logger: rt.Logger(), metrics: rt.metrics, shared: rt.shared,
		prevPlugins: rt.plugins, nextPlugins: map[string]builtPlugin{},
		prevParsed: rt.parsed, nextParsed: map[string]*parsedRoute{},
		live: rt.Snapshot, ssl: rt.ssl, sslRev: rt.sslRev, enabled: rt.enabled,
	}
	snap := *prev
	table := prev.table
	var gone []*Route  // the compiled routes replaced or removed
	var added []*Route // and those that replace them
	fail := func(err error) error {
		for _, u := range c.started {
			u.checker.Stop()
		}
		return err
	}
	for _, k := range keys {
		if old := table.Get(k.ID); old != nil {
			gone = append(gone, old.Target)
		}
		o := v.Get(model.StreamRoutes, k.ID)
		var e *router.Entry[*Route]
		if o != nil {
			var err error
			if e, err = c.route(o, v.Seq(model.StreamRoutes, k.ID), &snap); err != nil {
				return fail(err)
			}
		}
		if e == nil {
			table = table.Delete(k.ID)
			continue
		}
		var err error
		if table, err = table.Put(e); err != nil {
			return fail(err)
		}
		added = append(added, e.Target)
	}
	snap.table = table
	for _, u := range c.started {
		u.checker.Start()
	}
	// what the replaced routes owned leaves, unless the new ones took it
	for _, r := range gone {
		for _, key := range r.ownUpstreams {
			if u := rt.upstreams[key]; u != nil && c.next[key] != u {
				if u.checker != nil {
					u.checker.Stop()
				}
				delete(rt.upstreams, key)
			}
		}
		for _, key := range r.ownPlugins {
			if _, kept := c.nextPlugins[key]; !kept {
				delete(rt.plugins, key)
			}
		}
	}
	for _, k := range keys {
		delete(rt.parsed, k.ID)
	}
	maps.Copy(rt.upstreams, c.next)
	maps.Copy(rt.plugins, c.nextPlugins)
	maps.Copy(rt.parsed, c.nextParsed)
	rt.snap.Store(&snap)
	rt.metrics.prune(gone, added, &snap)
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
	rt.gen = registry.Gen{} // the next compile starts over
}

type emptyView struct{}

func (emptyView) Get(kind model.Kind, id string) *registry.Object { return nil }
func (emptyView) List(kind model.Kind) []*registry.Object         { return nil }
func (emptyView) Seq(kind model.Kind, id string) int64            { return 0 }
func (emptyView) Delta() registry.Delta                           { return registry.Delta{All: true} }

// Interface guards
var _ registry.View = emptyView{}
