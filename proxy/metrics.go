package proxy

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/caddy-apisix/stream/router"
)

// streamMetrics are the stream proxy's Prometheus metrics, named as in
// APISIX 3.18's prometheus plugin (apisix/plugins/prometheus/exporter.lua
// init_stream_metrics), plus a route label. The runtime holds them (one
// per process, in package live), and each Caddy config registers them in
// its metrics registry (Runtime.RegisterMetrics; served at /metrics by
// Caddy's admin endpoint and by admin_listen).
//
// Two of APISIX's names break Prometheus's conventions: the counters
// apisix_stream_status and apisix_stream_bandwidth have no _total suffix
// (and the second no unit). They are kept for APISIX's dashboards, exported
// as untyped copies of the Prometheus-clean counters
// apisix_stream_status_total and apisix_stream_bandwidth_bytes_total, so
// that `promtool check metrics` passes (docs/modules/apisix.md#metrics).

type streamMetrics struct {
	connections *prometheus.CounterVec
	active      *prometheus.GaugeVec
	status      *prometheus.CounterVec
	bandwidth   *prometheus.CounterVec
	refusedVec  *prometheus.CounterVec
	// apisixStatus and apisixBandwidth export status and bandwidth
	// under APISIX's names
	apisixStatus, apisixBandwidth *untypedCopy

	routes sync.Map // route label → *routeMetrics

	mu     sync.Mutex
	static map[string]int // route labels of layer4.handlers.apisix_proxy → handlers using them
	// discarded are the series of the sessions of a dropped route:
	// counted, never exported
	discarded *endMetrics
	// listening counts the stream_proxy listeners holding each local
	// address (HoldListener)
	listening map[netip.AddrPort]int
}

func newStreamMetrics() *streamMetrics {
	m := &streamMetrics{
		connections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apisix_stream_connection_total",
			Help: "Stream connections and UDP sessions matched by each stream route.",
		}, []string{"route"}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "apisix_stream_active_connections",
			Help: "Stream connections and UDP sessions being proxied now, by route and by local address (listen_addr).",
		}, []string{"route", "listen_addr"}),
		status: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apisix_stream_status_total",
			Help: "Ended sessions by APISIX stream status (200 proxied, 502 no upstream could be reached, 503 refused by a plugin or without upstream, or a plugin's code), by route, local address and upstream node.",
		}, []string{"code", "route", "listen_addr", "node"}),
		bandwidth: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apisix_stream_bandwidth_bytes_total",
			Help: "Bytes proxied by direction (type ingress: into the proxy, egress: out of it) and side (downstream: the client, upstream: the node).",
		}, []string{"type", "route", "listen_addr", "side"}),
		refusedVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apisix_stream_sessions_refused_total",
			Help: "New sessions refused before any route matched, by the limit that refused them: udp_max_sessions, udp_max_sessions_total, fd_reserve, tcp_max_connections.",
		}, []string{"reason"}),
		static:    map[string]int{},
		listening: map[netip.AddrPort]int{},
	}
	c := func() prometheus.Counter { return prometheus.NewCounter(prometheus.CounterOpts{Name: "discarded"}) }
	m.discarded = &endMetrics{active: prometheus.NewGauge(prometheus.GaugeOpts{Name: "discarded"}),
		ok: c(), failed: c(), deny: c(), fromClient: c(), toClient: c(), toUpstream: c(), fromUpstream: c()}
	// every reason exported from the start, at 0: a rate over a series
	// that appears only with the first refusal misses that refusal
	for _, r := range []string{refusedUDPListener, refusedUDPTotal, refusedFDReserve, refusedTCP} {
		m.refusedVec.WithLabelValues(r)
	}
	m.apisixStatus = newUntypedCopy(m.status, "apisix_stream_status",
		"APISIX's name of apisix_stream_status_total (untyped: a counter without the _total suffix).", "code", "route", "listen_addr", "node")
	m.apisixBandwidth = newUntypedCopy(m.bandwidth, "apisix_stream_bandwidth",
		"APISIX's name of apisix_stream_bandwidth_bytes_total, in bytes (untyped: a counter without the _total suffix).", "type", "route", "listen_addr", "side")
	m.apisixBandwidth.before = m.flushStreams
	return m
}

// liveBandwidth collects the bandwidth counters after adding the bytes
// that open TCP connections moved since the last scrape (flushStreams).
type liveBandwidth struct{ m *streamMetrics }

// Describe implements prometheus.Collector.
func (c liveBandwidth) Describe(ch chan<- *prometheus.Desc) { c.m.bandwidth.Describe(ch) }

// Collect implements prometheus.Collector.
func (c liveBandwidth) Collect(ch chan<- prometheus.Metric) {
	c.m.flushStreams()
	c.m.bandwidth.Collect(ch)
}

// flushStreams adds to the bandwidth series the bytes that each open TCP
// connection moved since it was last flushed. A connection's bytes are
// counted by the copy loop anyway (Counters, for the access log and the
// log plugins); reading them at scrape time shows a long-lived
// connection's traffic while it runs at no cost per read, where APISIX
// counts a stream's bytes only in its log phase, when it ends.
func (m *streamMetrics) flushStreams() {
	m.routes.Range(func(_, v any) bool {
		rm := v.(*routeMetrics)
		rm.mu.Lock()
		for s := rm.streams; s != nil; s = s.nextStream {
			s.flushBytes()
		}
		rm.mu.Unlock()
		return true
	})
}

// refused is the refusal counter of reason.
func (m *streamMetrics) refused(reason string) prometheus.Counter {
	return m.refusedVec.WithLabelValues(reason)
}

// Register adds the collectors to reg; registering twice is not an error.
func (m *streamMetrics) Register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.connections, m.active, m.status, liveBandwidth{m}, m.refusedVec, m.apisixStatus, m.apisixBandwidth} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
		}
	}
	return nil
}

// routeMetrics are one route's series, resolved once per route label so
// that a session costs atomic adds, not label lookups: the counter of
// matched sessions, and the series of each local address and node.
type routeMetrics struct {
	m           *streamMetrics
	label       string
	connections prometheus.Counter

	mu   sync.Mutex
	ends map[endKey]*endMetrics
	// streams are the route's open TCP connections that reached a node,
	// whose bytes flushStreams counts while they run: a list linked
	// through the sessions (session.nextStream), so that a connection
	// joins and leaves it without hashing or allocating
	streams *session
	// dead is set once the series are dropped
	dead bool
	// scopes are what each compiled route of the label, by id, can
	// reach (rescope); listens counts ends by local address
	scopes  map[string]*routeScope
	listens map[netip.AddrPort]int
}

// endKey names the series of one local address and upstream node.
type endKey struct {
	listen netip.AddrPort
	node   string
}

// endMetrics are a route's series for one local address and node (""
// for sessions that reached none), as APISIX 3.18's stream metrics label
// them (apisix/plugins/prometheus/exporter.lua stream_log).
type endMetrics struct {
	active           prometheus.Gauge
	ok, failed, deny prometheus.Counter
	// bandwidth by type and side
	fromClient, toClient, toUpstream, fromUpstream prometheus.Counter
	// listen is key.listen as its label value
	listen string
	key    endKey
	// refs counts the sessions holding the series (hold, release);
	// stale ones (no route can reach their node or local address, or no
	// listener serves it) go with the last. outOfScope, unserved,
	// removed and codes (the plugin codes counted, whose series go with
	// them) are under the route's mu.
	refs                 atomic.Int64
	stale                atomic.Bool
	outOfScope, unserved bool
	removed              bool
	codes                []string
}

// route returns the series of the route label (the route id, or its
// name with the prometheus plugin's prefer_name).
func (m *streamMetrics) route(label string) *routeMetrics {
	if rm, ok := m.routes.Load(label); ok {
		return rm.(*routeMetrics)
	}
	rm := &routeMetrics{m: m, label: label, connections: m.connections.WithLabelValues(label), ends: map[endKey]*endMetrics{},
		scopes: map[string]*routeScope{}, listens: map[netip.AddrPort]int{}}
	actual, _ := m.routes.LoadOrStore(label, rm)
	return actual.(*routeMetrics)
}

// holdStatic returns the series of a layer4.handlers.apisix_proxy handler
// named label, kept until releaseStatic of every handler holding it.
func (m *streamMetrics) holdStatic(label string) *routeMetrics {
	m.mu.Lock()
	m.static[label]++
	m.mu.Unlock()
	return m.route(label)
}

// releaseStatic lets a handler's series go; the last release removes them.
func (m *streamMetrics) releaseStatic(label string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.static[label]--; m.static[label] > 0 {
		return
	}
	delete(m.static, label)
	if rm, ok := m.routes.Load(label); ok {
		m.drop(rm.(*routeMetrics))
	}
}

// prune removes the series of the route labels that the routes gone
// used and next no longer does (unless a static handler holds them): a
// deleted route's series go with it, as do its id's when prefer_name
// labels it by name. added are next's routes that replaced them: a
// label they keep is still used without looking further, so a route
// write costs a walk of next's routes only when it drops a label.
// The labels that stay lose the series of the nodes and local addresses
// their routes can no longer reach (rescope).
func (m *streamMetrics) prune(gone, added []*Route, next *Snapshot) {
	m.rescope(gone, added, next)
	drop := make(map[*routeMetrics]bool, len(gone))
	for _, r := range gone {
		if r.metrics != nil {
			drop[r.metrics] = true
		}
	}
	for _, r := range added {
		delete(drop, r.metrics)
	}
	if len(drop) == 0 {
		return
	}
	if len(added) < next.table.Len() {
		next.table.Each(func(e *router.Entry[*Route]) { delete(drop, e.Target.metrics) })
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for rm := range drop {
		if m.static[rm.label] == 0 {
			m.drop(rm)
		}
	}
}

// drop removes rm's series. Sessions still holding rm count into series
// no longer exported; a route that comes back gets new ones.
func (m *streamMetrics) drop(rm *routeMetrics) {
	m.routes.CompareAndDelete(rm.label, rm)
	// under rm.mu, so that end cannot add a series back meanwhile
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if rm.dead {
		return
	}
	rm.dead = true
	l := prometheus.Labels{"route": rm.label}
	m.connections.DeleteLabelValues(rm.label)
	m.active.DeletePartialMatch(l)
	m.status.DeletePartialMatch(l)
	m.bandwidth.DeletePartialMatch(l)
}

// rescope records the scope of each compiled route of added not seen
// before, forgets that of each route of gone whose id left its label, and
// sweeps the labels whose scopes changed. Upstream nodes come and go
// (Kubernetes endpoints, DNS, a replaced backend), as do listeners: a
// series of a node or local address no route of the label can reach
// again would stay as long as the route, one more per node ever used.
// Only the changed routes are looked at: a reused compiled route has
// the scope it had.
func (m *streamMetrics) rescope(gone, added []*Route, next *Snapshot) {
	var touched map[*routeMetrics]bool
	touch := func(rm *routeMetrics) {
		if touched == nil {
			touched = map[*routeMetrics]bool{}
		}
		touched[rm] = true
	}
	for _, r := range gone {
		e := next.table.Get(r.ID)
		if r.metrics == nil || (e != nil && e.Target.metrics == r.metrics) {
			// unchanged, or its successor below takes its scope over
			continue
		}
		r.metrics.mu.Lock()
		delete(r.metrics.scopes, r.ID)
		r.metrics.mu.Unlock()
		touch(r.metrics)
	}
	for _, r := range added {
		if r.scoped || r.metrics == nil {
			continue
		}
		e := next.table.Get(r.ID)
		if e == nil || e.Target != r {
			continue
		}
		sc := scopeOf(r, e.Route, next)
		r.metrics.mu.Lock()
		r.metrics.scopes[r.ID] = sc
		r.metrics.mu.Unlock()
		r.scoped = true
		touch(r.metrics)
	}
	for rm := range touched {
		rm.sweep()
	}
}

// routeScope is what one compiled route can reach: the nodes of its
// upstreams (its own, its service's, traffic-split's) and the local
// addresses its server_addr and server_port let in.
type routeScope struct {
	ups        []*Upstream
	serverAddr netip.Prefix
	serverPort uint16
}

// scopeOf is the scope of r, whose router filters are f, in next.
func scopeOf(r *Route, f *router.Route, next *Snapshot) *routeScope {
	sc := &routeScope{serverAddr: f.ServerAddr, serverPort: f.ServerPort}
	add := func(u *Upstream) {
		if u != nil {
			sc.ups = append(sc.ups, u)
		}
	}
	add(r.Upstream)
	for _, u := range r.reaches {
		add(u)
	}
	for _, id := range r.reachIDs {
		add(next.upstreams[id])
	}
	return sc
}

// allows reports whether a session of the route can count under k; ""
// (no node reached) always can.
func (sc *routeScope) allows(k endKey) bool {
	if k.node != "" && !slices.ContainsFunc(sc.ups, func(u *Upstream) bool { return u.hasNode(k.node) }) {
		return false
	}
	if sc.serverPort != 0 && k.listen.Port() != sc.serverPort {
		return false
	}
	return !sc.serverAddr.IsValid() || sc.serverAddr.Contains(k.listen.Addr().Unmap())
}

// allowsLocked reports whether a route of the label can count under k;
// a label without compiled routes (a static handler's, or one not yet
// scoped) allows everything. Under rm.mu.
func (rm *routeMetrics) allowsLocked(k endKey) bool {
	if len(rm.scopes) == 0 {
		return true
	}
	for _, sc := range rm.scopes {
		if sc.allows(k) {
			return true
		}
	}
	return false
}

// sweep removes the series no route of the label can reach any more and
// no session holds; the held ones go when their last session ends
// (release). A series that comes back in scope before then stays.
func (rm *routeMetrics) sweep() {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if rm.dead {
		return
	}
	for k, em := range rm.ends {
		out := !rm.allowsLocked(k)
		em.outOfScope = out
		rm.staleLocked(em)
	}
}

// staleLocked marks em stale when out of scope or of every listener, and
// removes it at once when no session holds it. Under rm.mu.
func (rm *routeMetrics) staleLocked(em *endMetrics) {
	em.stale.Store(em.outOfScope || em.unserved)
	if em.stale.Load() && em.refs.Load() == 0 {
		rm.removeLocked(em)
	}
}

// removeLocked deletes em's series: its status series, and the local
// address's bandwidth and active series once no other node of that
// address has series left (those have no node label). A scrape never
// sees one of them lower than before: they are gone, and series made
// again later start from zero as new series. Under rm.mu.
func (rm *routeMetrics) removeLocked(em *endMetrics) {
	if em.removed {
		return
	}
	em.removed = true
	if rm.dead {
		// drop removed the route's series; the same labels may be a
		// new route's by now
		return
	}
	delete(rm.ends, em.key)
	m, r, l := rm.m, rm.label, em.listen
	for _, code := range append([]string{"200", "502", "503"}, em.codes...) {
		m.status.DeleteLabelValues(code, r, l, em.key.node)
	}
	if rm.listens[em.key.listen]--; rm.listens[em.key.listen] > 0 {
		return
	}
	delete(rm.listens, em.key.listen)
	m.active.DeleteLabelValues(r, l)
	for _, ts := range [][2]string{{"ingress", "downstream"}, {"egress", "downstream"}, {"egress", "upstream"}, {"ingress", "upstream"}} {
		m.bandwidth.DeleteLabelValues(ts[0], r, l, ts[1])
	}
}

// hold makes the route's series of a local address and node s's (s.em),
// letting go of those s held before, under rm.mu.
func (rm *routeMetrics) hold(s *session, listen netip.AddrPort, node string) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	rm.holdLocked(s, listen, node)
}

// holdLocked is hold under rm.mu.
func (rm *routeMetrics) holdLocked(s *session, listen netip.AddrPort, node string) {
	em := rm.endLocked(listen, node)
	em.refs.Add(1)
	if old := s.em; old != nil {
		rm.letGoLocked(old)
	}
	s.em = em
}

// letGoLocked is release under rm.mu.
func (rm *routeMetrics) letGoLocked(em *endMetrics) {
	if em.refs.Add(-1) == 0 && em.stale.Load() {
		rm.removeLocked(em)
	}
}

// release lets go of series a session held; stale ones go with their
// last session. Lock-free unless they are stale: a stale mark (under
// rm.mu, then a read of refs) and the last release (refs to 0, then a
// read of the mark) see each other, so one of them removes the series.
func (rm *routeMetrics) release(em *endMetrics) {
	if em.refs.Add(-1) != 0 || !em.stale.Load() {
		return
	}
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if em.refs.Load() == 0 && em.stale.Load() {
		rm.removeLocked(em)
	}
}

// HoldListener records that a stream_proxy listener serves addr until
// the returned func is called. When the last listener of an address
// goes (a reload removed it), the series of the local addresses it
// served and no other listener serves are removed once no session
// holds them. A listener kept by a reload is held by the new config
// before the old one lets go, so its series stay.
func (rt *Runtime) HoldListener(addr net.Addr) (release func()) {
	ap := router.AddrPortOf(addr)
	m := rt.metrics
	m.mu.Lock()
	m.listening[ap]++
	m.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { m.releaseListener(ap) }) }
}

// covers reports whether a listener bound to ln receives connections
// whose local address is local.
func covers(ln, local netip.AddrPort) bool {
	return ln.Port() == local.Port() && (ln.Addr().IsUnspecified() || ln.Addr().Unmap() == local.Addr().Unmap())
}

// releaseListener lets go of one listener of ln. It walks every route's
// series, once per listener address that leaves: a reload, not a write.
func (m *streamMetrics) releaseListener(ln netip.AddrPort) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.listening[ln]--; m.listening[ln] > 0 {
		return
	}
	delete(m.listening, ln)
	served := func(local netip.AddrPort) bool {
		for held := range m.listening {
			if covers(held, local) {
				return true
			}
		}
		return false
	}
	m.routes.Range(func(_, v any) bool {
		rm := v.(*routeMetrics)
		rm.mu.Lock()
		defer rm.mu.Unlock()
		if rm.dead {
			return true
		}
		for k, em := range rm.ends {
			if covers(ln, k.listen) && !served(k.listen) {
				em.unserved = true
				rm.staleLocked(em)
			}
		}
		return true
	})
}

// status counts an ended session under a status other than 200, 502 and
// 503 (a plugin's code), unless the route's series are gone.
func (rm *routeMetrics) status(code int, em *endMetrics) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if !rm.dead && em != rm.m.discarded && !em.removed {
		c := strconv.Itoa(code)
		if !slices.Contains(em.codes, c) {
			em.codes = append(em.codes, c)
		}
		rm.m.status.WithLabelValues(c, rm.label, em.listen, em.key.node).Inc()
	}
}

// end returns the route's series of a local address and node, without
// holding them.
func (rm *routeMetrics) end(listen netip.AddrPort, node string) *endMetrics {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return rm.endLocked(listen, node)
}

// open sets the series of a TCP connection s that reached node (s.em)
// and counts its bytes while it runs (flushStreams) until closed, in one
// critical section: a scrape never sees s without its series.
func (rm *routeMetrics) open(s *session, node string) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	rm.holdLocked(s, s.Local, node)
	s.counting = true
	if !rm.dead {
		s.nextStream, s.listed = rm.streams, true
		if rm.streams != nil {
			rm.streams.prevStream = s
		}
		rm.streams = s
	}
}

// closed stops counting s's bytes while it runs and counts the rest.
func (rm *routeMetrics) closed(s *session) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if s.listed {
		if s.prevStream != nil {
			s.prevStream.nextStream = s.nextStream
		} else {
			rm.streams = s.nextStream
		}
		if s.nextStream != nil {
			s.nextStream.prevStream = s.prevStream
		}
		s.prevStream, s.nextStream, s.listed = nil, nil, false
	}
	s.flushBytes()
}

// endLocked is end under rm.mu.
func (rm *routeMetrics) endLocked(listen netip.AddrPort, node string) *endMetrics {
	k := endKey{listen, node}
	if em := rm.ends[k]; em != nil {
		return em
	}
	if rm.dead {
		// the route is gone: count nowhere rather than bring its
		// series back
		return rm.m.discarded
	}
	m, r, l := rm.m, rm.label, listen.String()
	em := &endMetrics{
		active:       m.active.WithLabelValues(r, l),
		ok:           m.status.WithLabelValues("200", r, l, node),
		failed:       m.status.WithLabelValues("502", r, l, node),
		deny:         m.status.WithLabelValues("503", r, l, node),
		fromClient:   m.bandwidth.WithLabelValues("ingress", r, l, "downstream"),
		toClient:     m.bandwidth.WithLabelValues("egress", r, l, "downstream"),
		toUpstream:   m.bandwidth.WithLabelValues("egress", r, l, "upstream"),
		fromUpstream: m.bandwidth.WithLabelValues("ingress", r, l, "upstream"),
		listen:       l, key: k,
	}
	// a node or address out of scope: a session of an older snapshot;
	// the series go when it ends
	em.outOfScope = !rm.allowsLocked(k)
	em.stale.Store(em.outOfScope)
	rm.ends[k] = em
	rm.listens[listen]++
	return em
}

// sent counts n bytes from the client to the upstream, on both sides.
func (em *endMetrics) sent(n int64) {
	em.fromClient.Add(float64(n))
	em.toUpstream.Add(float64(n))
}

// received counts n bytes from the upstream back to the client.
func (em *endMetrics) received(n int64) {
	em.fromUpstream.Add(float64(n))
	em.toClient.Add(float64(n))
}

// untypedCopy exports the series of a counter vector under another name,
// untyped: APISIX's names of counters that lack the _total suffix.
type untypedCopy struct {
	of   *prometheus.CounterVec
	desc *prometheus.Desc
	// before, if set, runs before each collection
	before func()
}

// newUntypedCopy copies of as name; labels are of's label names, sorted
// (the order in which a written metric lists them).
func newUntypedCopy(of *prometheus.CounterVec, name, help string, labels ...string) *untypedCopy {
	sorted := slices.Sorted(slices.Values(labels))
	return &untypedCopy{of: of, desc: prometheus.NewDesc(name, help, sorted, nil)}
}

// Describe implements prometheus.Collector.
func (c *untypedCopy) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *untypedCopy) Collect(ch chan<- prometheus.Metric) {
	if c.before != nil {
		c.before()
	}
	in := make(chan prometheus.Metric)
	go func() {
		c.of.Collect(in)
		close(in)
	}()
	var pb dto.Metric
	values := make([]string, 0, 4)
	for m := range in {
		pb.Reset()
		if m.Write(&pb) != nil || pb.Counter == nil {
			continue
		}
		values = values[:0]
		for _, lp := range pb.Label {
			values = append(values, lp.GetValue())
		}
		if cm, err := prometheus.NewConstMetric(c.desc, prometheus.UntypedValue, pb.Counter.GetValue(), values...); err == nil {
			ch <- cm
		}
	}
}

// upstreamStatusDesc is APISIX's apisix_upstream_status
// (apisix/plugins/prometheus/exporter.lua collect): 1 for a node the
// health checks find healthy or mostly healthy, 0 otherwise, by the
// object the upstream belongs to (name: /apisix/upstreams/<id>,
// /apisix/stream_routes/<id>), the node's IP and port.
var upstreamStatusDesc = prometheus.NewDesc("apisix_upstream_status",
	"Upstream node status from health checks: 1 healthy (or mostly healthy), 0 unhealthy.", []string{"name", "ip", "port"}, nil)

// upstreamStatus collects apisix_upstream_status from the runtime's
// checked upstreams when scraped, so an upstream's series leave with it.
type upstreamStatus struct{ rt *Runtime }

// Describe implements prometheus.Collector.
func (upstreamStatus) Describe(ch chan<- *prometheus.Desc) { ch <- upstreamStatusDesc }

// Collect implements prometheus.Collector.
func (c upstreamStatus) Collect(ch chan<- prometheus.Metric) {
	type key struct{ name, ip, port string }
	seen := map[key]bool{}
	for _, r := range c.rt.AllHealth() {
		for _, n := range r.Nodes {
			// two host names of one address would be one series twice,
			// which fails the whole scrape
			k := key{r.Name, n.IP, strconv.Itoa(n.Port)}
			if seen[k] {
				continue
			}
			seen[k] = true
			v := 0.0
			if n.Healthy {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(upstreamStatusDesc, prometheus.GaugeValue, v, k.name, k.ip, k.port)
		}
	}
}

// RegisterMetrics adds the runtime's stream metrics and its
// apisix_upstream_status to reg; registering twice is not an error.
func (rt *Runtime) RegisterMetrics(reg prometheus.Registerer) error {
	if err := rt.metrics.Register(reg); err != nil {
		return err
	}
	if err := reg.Register(upstreamStatus{rt}); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return err
		}
	}
	return nil
}
