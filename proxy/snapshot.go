package proxy

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/caddy-apisix/stream/balancer"
	"github.com/caddy-apisix/stream/health"
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
	table       *router.Table
	routes      []*Route
	upstreams   map[string]*Upstream
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
	// Passthrough forwards TLS untouched on a mixed listener (§14).
	Passthrough bool
	// the route's plugin instances by phase, highest priority first
	prereaders []plugin.Prereader
	choosers   []plugin.UpstreamChooser
	loggers    []plugin.LogPhaser

	metrics *routeMetrics
}

// hasPlugins reports whether any plugin runs on the route's sessions.
func (r *Route) hasPlugins() bool {
	return len(r.prereaders)+len(r.choosers)+len(r.loggers) > 0
}

// Upstream is a compiled upstream, shared by every snapshot in which its
// definition is unchanged, so balancer state and health survive changes
// elsewhere.
type Upstream struct {
	key string
	raw []byte
	// deps identifies the versions of the objects the upstream uses
	// besides its own JSON (the SSL object of tls.client_cert_id): a
	// rotated client certificate must not be served from a reused
	// upstream.
	deps string

	Nodes []balancer.Node
	// hostNames is true when a node is a host name, resolved when dialled.
	hostNames bool
	// hashed is true for chash, the only balancer that reads the
	// connection's variables.
	hashed bool
	// sessions resumes TLS sessions with the nodes (scheme tls).
	sessions       tls.ClientSessionCache
	balancer       balancer.Balancer
	checker        *health.Checker
	retries        int
	retryTimeout   time.Duration
	connectTimeout time.Duration
	idleTimeout    time.Duration
	tls            bool
	tlsVerify      bool
	clientCert     *tls.Certificate
	// static is the route of layer4.handlers.apisix_proxy's sessions.
	static *Route
}

// StreamUpstream marks *Upstream as a plugin.Upstream.
func (u *Upstream) StreamUpstream() {}

// Defaults of nginx's stream proxy, which APISIX does not override.
const (
	defaultConnectTimeout = 60 * time.Second
	defaultIdleTimeout    = 10 * time.Minute
)

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
	r := s.table.Match(q)
	if r == nil {
		return nil
	}
	return r.Target.(*Route)
}

// Certs is the certificate index for TLS termination.
func (s *Snapshot) Certs() *tlsx.CertIndex { return s.certs }

// FallbackSNI is the SNI assumed for clients that send none.
func (s *Snapshot) FallbackSNI() string { return s.fallbackSNI }

// compiler builds a snapshot, reusing the upstreams of the previous one.
type compiler struct {
	prev    map[string]*Upstream
	next    map[string]*Upstream
	started []*Upstream
	view    registry.View
	logger  *zap.Logger
	ssl     map[string]*model.SSL
	sslRev  map[string]int64

	prevPlugins, nextPlugins map[string]any
	prevParsed, nextParsed   map[*registry.Object]*parsedRoute
}

func (c *compiler) upstream(key string, u *model.Upstream, raw []byte) (*Upstream, error) {
	if cur, ok := c.next[key]; ok {
		return cur, nil
	}
	deps := c.depsOf(u)
	if old := c.prev[key]; old != nil && bytes.Equal(old.raw, raw) && old.deps == deps {
		c.next[key] = old
		return old, nil
	}
	cu := &Upstream{
		key:            key,
		raw:            raw,
		deps:           deps,
		connectTimeout: defaultConnectTimeout,
		idleTimeout:    defaultIdleTimeout,
		tls:            u.Scheme == "tls",
		hashed:         u.Type == "chash",
	}
	for _, n := range u.Nodes {
		cu.Nodes = append(cu.Nodes, balancer.Node{Addr: n.Addr(), Weight: n.Weight, Priority: n.Priority})
		if _, err := netip.ParseAddr(strings.Trim(n.Host, "[]")); err != nil {
			cu.hostNames = true
		}
	}
	cu.retries = len(cu.Nodes) - 1
	if u.Retries != nil {
		cu.retries = *u.Retries
	}
	cu.retryTimeout = seconds(u.RetryTimeout)
	if u.Timeout != nil {
		if u.Timeout.Connect > 0 {
			cu.connectTimeout = seconds(u.Timeout.Connect)
		}
		if idle := max(u.Timeout.Send, u.Timeout.Read); idle > 0 {
			cu.idleTimeout = seconds(idle)
		}
	}
	if cu.tls {
		cu.sessions = tls.NewLRUClientSessionCache(64)
	}
	if u.TLS != nil {
		cu.tlsVerify = u.TLS.Verify
		switch {
		case u.TLS.ClientCert != "":
			cert, err := tlsx.ParseKeyPair(u.TLS.ClientCert, u.TLS.ClientKey)
			if err != nil {
				return nil, fmt.Errorf("upstream %s: client certificate: %v", key, err)
			}
			cu.clientCert = &cert
		case u.TLS.ClientCertID != "":
			s := c.ssl[string(u.TLS.ClientCertID)]
			if s == nil {
				return nil, fmt.Errorf("upstream %s: ssl %s not found", key, u.TLS.ClientCertID)
			}
			cert, err := tlsx.ParseKeyPair(s.Cert, s.Key)
			if err != nil {
				return nil, fmt.Errorf("upstream %s: ssl %s: %v", key, u.TLS.ClientCertID, err)
			}
			cu.clientCert = &cert
		}
	}
	var h balancer.Health
	if u.Checks != nil && u.Checks.Active != nil {
		addrs := make([]string, len(cu.Nodes))
		for i, n := range cu.Nodes {
			addrs[i] = n.Addr
		}
		chk, err := health.NewChecker(u.Checks, addrs, c.logger.Named("health"))
		if err != nil {
			return nil, fmt.Errorf("upstream %s: checks: %v", key, err)
		}
		cu.checker = chk
		h = chk
		c.started = append(c.started, cu)
	}
	b, err := balancer.New(u.Type, u.HashOn, u.Key, cu.Nodes, h)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %v", key, err)
	}
	cu.balancer = b
	c.next[key] = cu
	return cu, nil
}

// depsOf names the versions of the objects u refers to.
func (c *compiler) depsOf(u *model.Upstream) string {
	if u.TLS == nil || u.TLS.ClientCertID == "" {
		return ""
	}
	id := string(u.TLS.ClientCertID)
	return fmt.Sprintf("ssl/%s@%d", id, c.sslRev[id])
}

func seconds(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

// parsedRoute is the part of a compiled route that depends only on the
// stored object, cached by object (objects are immutable) so that a change
// to one route does not re-parse ten thousand others.
type parsedRoute struct {
	sr          *model.StreamRoute
	upstreamRaw []byte
	upstreamKey string
	// inline is the compiled inline upstream last built for this object;
	// valid while the runtime still holds it under upstreamKey.
	inline      *Upstream
	metrics     *routeMetrics
	filters     router.Route
	subordinate bool
}

func (c *compiler) parseRoute(o *registry.Object) (*parsedRoute, error) {
	if pr := c.prevParsed[o]; pr != nil {
		c.nextParsed[o] = pr
		return pr, nil
	}
	sr, err := model.ParseStreamRoute(o.Value)
	if err != nil {
		return nil, fmt.Errorf("stream route %s: %v", o.ID, err)
	}
	pr := &parsedRoute{sr: sr, filters: router.Route{ID: o.ID}, metrics: Collectors.route(o.ID)}
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
	c.nextParsed[o] = pr
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
		s, err := model.ParseSSL(o.Value)
		if err != nil {
			return nil, fmt.Errorf("ssl %s: %v", o.ID, err)
		}
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
		u, err := model.ParseUpstream(o.Value)
		if err != nil {
			return nil, fmt.Errorf("upstream %s: %v", o.ID, err)
		}
		cu, err := c.upstream("upstreams/"+o.ID, u, o.Value)
		if err != nil {
			return nil, err
		}
		snap.upstreams[o.ID] = cu
	}

	for _, o := range v.List(model.PluginMetadata) {
		if snap.metadata == nil {
			snap.metadata = map[string]json.RawMessage{}
		}
		snap.metadata[o.ID] = o.Value
	}

	var routes []*router.Route
	for _, o := range v.List(model.StreamRoutes) {
		pr, err := c.parseRoute(o)
		if err != nil {
			return nil, err
		}
		if pr.subordinate {
			continue // subordinate xRPC routes never match at entry
		}
		sr := pr.sr
		rt := &Route{ID: o.ID, Passthrough: sr.TLSPassthrough, metrics: pr.metrics}
		switch {
		case sr.UpstreamID != "":
			rt.Upstream = snap.upstreams[string(sr.UpstreamID)]
		case sr.Upstream != nil:
			if pr.inline != nil && c.prev[pr.upstreamKey] == pr.inline && pr.inline.deps == c.depsOf(sr.Upstream) {
				rt.Upstream = pr.inline
				c.next[pr.upstreamKey] = pr.inline
				break
			}
			rt.Upstream, err = c.upstream(pr.upstreamKey, sr.Upstream, pr.upstreamRaw)
			if err != nil {
				return nil, err
			}
			pr.inline = rt.Upstream
		}
		if len(sr.Plugins) > 0 {
			if err := c.buildPlugins(rt, snap, sr.Plugins); err != nil {
				return nil, fmt.Errorf("stream route %s: %v", o.ID, err)
			}
		}
		rr := pr.filters
		rr.Target = rt
		routes = append(routes, &rr)
		snap.routes = append(snap.routes, rt)
	}
	snap.table, err = router.New(routes)
	if err != nil {
		return nil, err
	}
	return snap, nil
}

// NewStaticUpstream compiles an upstream outside any snapshot, for
// layer4.handlers.apisix_proxy. Its health checks start now; Close stops
// them.
func NewStaticUpstream(u *model.Upstream, raw []byte, logger *zap.Logger) (*Upstream, error) {
	c := &compiler{next: map[string]*Upstream{}, logger: logger, ssl: map[string]*model.SSL{}}
	cu, err := c.upstream("static", u, raw)
	if err != nil {
		return nil, err
	}
	cu.static = &Route{ID: "apisix_proxy", Upstream: cu, metrics: Collectors.route("apisix_proxy")}
	if cu.checker != nil {
		cu.checker.Start()
	}
	return cu, nil
}

// Close stops the upstream's health checks.
func (u *Upstream) Close() {
	if u.checker != nil {
		u.checker.Stop()
	}
}
