package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/plugin"
	"github.com/caddy-apisix/stream/registry"
	"github.com/caddy-apisix/stream/router"
	"github.com/caddy-apisix/stream/tlsx"
	"go.uber.org/zap"
)

// Snapshot is the immutable data-path state built from one version of the
// objects. Connections load it once, with one atomic read, and keep it.
type Snapshot struct {
	table       *router.Table[*Route]
	upstreams   map[string]*Upstream
	services    serviceTable
	certs       *tlsx.CertIndex
	fallbackSNI string
	// metadata are the plugin_metadata objects, published with the
	// snapshot.
	metadata map[string]json.RawMessage
}

// Route is a compiled stream route.
type Route struct {
	ID string
	// ServiceID is the route's service, "" without one.
	ServiceID string
	// Upstream is nil when the route has none or its upstream_id is
	// missing: its connections are closed, as APISIX does.
	Upstream *Upstream
	// Passthrough forwards TLS untouched on a mixed listener
	// (docs/apisix/tls.md#tls-passthrough).
	Passthrough bool
	// the route's plugin instances by phase, highest priority first
	prereaders []plugin.Prereader
	choosers   []plugin.UpstreamChooser
	loggers    []plugin.LogPhaser

	metrics *routeMetrics
	// reaches and reachIDs are the upstreams the route's plugins may
	// pick besides Upstream: compiled inline ones, and upstream objects
	// by id (traffic-split); the route's series keep only the nodes of
	// these and Upstream (routeMetrics.scopes)
	reaches  []*Upstream
	reachIDs []string
	// scoped is set once the route's scope is in its metrics' scopes
	scoped bool
	// ownUpstreams and ownPlugins are the runtime's keys of the inline
	// upstreams and plugin instances this route made (an incremental
	// compile drops those of a route that changed).
	ownUpstreams, ownPlugins []string
}

// hasPlugins reports whether any plugin runs on the route's sessions.
func (r *Route) hasPlugins() bool {
	return len(r.prereaders)+len(r.choosers)+len(r.loggers) > 0
}

// Query is the match query of a session: sni is the client's server name
// (normalized here), the fallback SNI when it sent none. Every way a
// session arrives builds its query here.
func (s *Snapshot) Query(remote, local netip.AddrPort, sni string) router.Query {
	if sni == "" {
		sni = s.fallbackSNI
	}
	return router.NewQuery(remote, local, normalizeSNI(sni))
}

// Match returns the route for a query made by Query, or nil.
func (s *Snapshot) Match(q router.Query) *Route {
	e := s.table.Match(q)
	if e == nil {
		return nil
	}
	return e.Target
}

// Certs is the certificate index for TLS termination.
func (s *Snapshot) Certs() *tlsx.CertIndex { return s.certs }

// objCache maps stored objects to what was compiled from them.
type objCache struct {
	upstreams map[*registry.Object]*Upstream
	ssls      map[*registry.Object]*model.SSL
}

func newObjCache(prev objCache) objCache {
	return objCache{
		upstreams: make(map[*registry.Object]*Upstream, len(prev.upstreams)),
		ssls:      make(map[*registry.Object]*model.SSL, len(prev.ssls)),
	}
}

// compiler builds a snapshot, reusing the upstreams of the previous one.
type compiler struct {
	// shared is the runtime's plugin state, handed to every instance
	shared  *plugin.Shared
	prev    map[string]*Upstream
	next    map[string]*Upstream
	started []*Upstream
	view    registry.View
	logger  *zap.Logger
	metrics *streamMetrics
	ssl     map[string]*model.SSL
	sslRev  map[string]int64

	prevPlugins, nextPlugins map[string]builtPlugin
	// live is the snapshot sessions see now (nil: the one being built)
	live func() *Snapshot
	// prevObjs and nextObjs cache what was compiled from each stored
	// object (objects are immutable)
	prevObjs, nextObjs     objCache
	prevParsed, nextParsed map[string]*parsedRoute
	// enabled are the stream plugins that run (nil: all)
	enabled map[string]bool
}

// parsedRoute is the part of a compiled route that depends only on the
// stored object, cached by object (objects are immutable) so that a change
// to one route does not re-parse ten thousand others.
type parsedRoute struct {
	obj         *registry.Object
	sr          *model.StreamRoute
	upstreamRaw []byte
	upstreamKey string
	// inline is the compiled inline upstream last built for this object;
	// valid while the runtime still holds it under upstreamKey.
	inline      *Upstream
	filters     router.Route
	subordinate bool
	// route and entry are the route last compiled from this object and
	// its router entry, reused while its upstream and place are the same
	route *Route
	entry *router.Entry[*Route]
}

func (c *compiler) parseRoute(o *registry.Object) (*parsedRoute, error) {
	if pr := c.prevParsed[o.ID]; pr != nil && pr.obj == o {
		c.nextParsed[o.ID] = pr
		return pr, nil
	}
	sr, err := model.ParseStreamRoute(o.Value)
	if err != nil {
		return nil, fmt.Errorf("stream route %s: %w", o.ID, err)
	}
	pr := &parsedRoute{obj: o, sr: sr, filters: router.Route{ID: o.ID}}
	if len(sr.Protocol) > 0 && !bytes.Equal(sr.Protocol, []byte("null")) {
		var p struct {
			SuperiorID json.RawMessage `json:"superior_id"`
		}
		pr.subordinate = json.Unmarshal(sr.Protocol, &p) == nil && len(p.SuperiorID) > 0
	}
	if sr.Upstream != nil {
		pr.upstreamRaw, _ = json.Marshal(sr.Upstream)
		pr.upstreamKey = "stream_routes/" + o.ID
	}
	f := &pr.filters
	if f.RemoteAddr, err = router.ParsePrefix(sr.RemoteAddr); err != nil {
		return nil, fmt.Errorf("stream route %s: invalid remote_addr: %s", o.ID, sr.RemoteAddr)
	}
	if f.ServerAddr, err = router.ParsePrefix(sr.ServerAddr); err != nil {
		return nil, fmt.Errorf("stream route %s: invalid server_addr: %s", o.ID, sr.ServerAddr)
	}
	f.ServerPort = uint16(sr.ServerPort)
	if sr.SNI != "" {
		f.SNIs = append(f.SNIs, sr.SNI)
	}
	f.SNIs = append(f.SNIs, sr.SNIs...)
	c.nextParsed[o.ID] = pr
	return pr, nil
}

// compile builds a snapshot from a registry view.
func (c *compiler) compile(fallbackSNI string, prevCerts *tlsx.CertIndex) (*Snapshot, error) {
	v := c.view
	snap := &Snapshot{upstreams: map[string]*Upstream{}, fallbackSNI: fallbackSNI}

	var ssls []*model.SSL
	c.ssl = map[string]*model.SSL{}
	c.sslRev = map[string]int64{}
	for _, o := range v.List(model.SSLs) {
		s := c.prevObjs.ssls[o]
		if s == nil {
			var err error
			if s, err = model.ParseSSL(o.Value); err != nil {
				return nil, fmt.Errorf("ssl %s: %w", o.ID, err)
			}
		}
		c.nextObjs.ssls[o] = s
		c.ssl[o.ID] = s
		c.sslRev[o.ID] = o.ModifiedIndex
		ssls = append(ssls, s)
	}
	certs, err := tlsx.NewCertIndexFrom(prevCerts, ssls, fallbackSNI)
	if err != nil {
		// the index still serves every good object; one bad certificate
		// (say, from an older store) must not take the others down
		c.logger.Error("some SSL objects are not served", zap.Error(err))
	}
	snap.certs = certs

	for _, o := range v.List(model.Upstreams) {
		// an unchanged object whose SSL dependency is unchanged keeps
		// its compiled upstream without being parsed again: a write
		// costs the objects it touches, not every stored node
		if cu := c.prevObjs.upstreams[o]; cu != nil && c.prev[cu.key] == cu && cu.deps == c.depsOfID(cu.clientCertID) {
			c.next[cu.key] = cu
			c.nextObjs.upstreams[o] = cu
			snap.upstreams[o.ID] = cu
			continue
		}
		u, err := model.ParseUpstream(o.Value)
		if err != nil {
			return nil, fmt.Errorf("upstream %s: %w", o.ID, err)
		}
		cu, err := c.upstream("upstreams/"+o.ID, u, o.Value)
		if err != nil {
			return nil, err
		}
		c.nextObjs.upstreams[o] = cu
		snap.upstreams[o.ID] = cu
	}

	for _, o := range v.List(model.PluginMetadata) {
		if snap.metadata == nil {
			snap.metadata = map[string]json.RawMessage{}
		}
		snap.metadata[o.ID] = o.Value
	}

	services, err := c.services()
	if err != nil {
		return nil, err
	}
	snap.services = services
	var entries []*router.Entry[*Route]
	for _, o := range v.List(model.StreamRoutes) {
		e, err := c.route(o, v.Seq(model.StreamRoutes, o.ID), snap)
		if err != nil {
			return nil, err
		}
		if e != nil {
			entries = append(entries, e)
		}
	}
	snap.table, err = router.New(entries)
	if err != nil {
		return nil, err
	}
	return snap, nil
}

// route compiles one stream route object into its router entry at seq;
// nil for a subordinate xRPC route, which never matches at entry. It
// reads the upstreams and services of snap.
func (c *compiler) route(o *registry.Object, seq int64, snap *Snapshot) (*router.Entry[*Route], error) {
	pr, err := c.parseRoute(o)
	if err != nil {
		return nil, err
	}
	if pr.subordinate {
		return nil, nil
	}
	sr := pr.sr
	eff, svcUp, svcOK := snap.services.merge(sr)
	var plugins map[string]json.RawMessage
	if svcOK {
		plugins = eff.Plugins
	}
	var up *Upstream
	var own []string
	switch {
	case !svcOK:
		// the service is gone: no upstream, no plugins
	case eff.UpstreamID != "":
		up = snap.upstreams[string(eff.UpstreamID)]
	case svcUp != nil:
		up = svcUp
	case sr.Upstream != nil:
		own = []string{pr.upstreamKey}
		if pr.inline != nil && c.prev[pr.upstreamKey] == pr.inline && pr.inline.deps == c.depsOf(sr.Upstream) {
			up = pr.inline
			c.next[pr.upstreamKey] = pr.inline
			break
		}
		up, err = c.upstream(pr.upstreamKey, sr.Upstream, pr.upstreamRaw)
		if err != nil {
			return nil, err
		}
		pr.inline = up
	}
	// a route without plugins whose upstream is the same compiled one is
	// the same compiled route
	if pr.route != nil && pr.route.Upstream == up && len(plugins) == 0 && !pr.route.hasPlugins() {
		if pr.entry.Seq != seq {
			pr.entry = &router.Entry[*Route]{Route: &pr.filters, Seq: seq, Target: pr.route}
		}
		return pr.entry, nil
	}
	rt := &Route{ID: o.ID, ServiceID: string(sr.ServiceID), Passthrough: sr.TLSPassthrough, Upstream: up, ownUpstreams: own}
	if len(plugins) > 0 {
		if err := c.buildPlugins(rt, sr.Name, snap, plugins); err != nil {
			return nil, fmt.Errorf("stream route %s: %w", o.ID, err)
		}
	}
	if rt.metrics == nil {
		// labelled by the id unless prefer_name chose the name; looked
		// up on every build, as a label no route used had its series
		// dropped
		rt.metrics = c.metrics.route(o.ID)
	}
	pr.route, pr.entry = rt, &router.Entry[*Route]{Route: &pr.filters, Seq: seq, Target: rt}
	return pr.entry, nil
}
