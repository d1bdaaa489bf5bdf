package proxy

import (
	"errors"
	"net/netip"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Collectors are the stream proxy's Prometheus metrics, named as in APISIX
// 3.18's prometheus plugin. They are process-wide, like the runtime, and
// each Caddy config registers them in its metrics registry (served by
// Caddy's admin endpoint at /metrics).
var Collectors = newStreamMetrics()

type streamMetrics struct {
	connections *prometheus.CounterVec
	active      *prometheus.GaugeVec
	status      *prometheus.CounterVec
	bandwidth   *prometheus.CounterVec
	refusedVec  *prometheus.CounterVec

	routes sync.Map // route id → *routeMetrics
}

func newStreamMetrics() *streamMetrics {
	return &streamMetrics{
		connections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apisix_stream_connection_total",
			Help: "Stream connections and UDP sessions matched by each stream route.",
		}, []string{"route"}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "apisix_stream_active_connections",
			Help: "Stream connections and UDP sessions being proxied now, by route and by local address (listen_addr).",
		}, []string{"route", "listen_addr"}),
		status: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apisix_stream_status",
			Help: "Ended sessions by APISIX stream status (200 proxied, 502 no upstream could be reached, 503 refused by a plugin or without upstream, or a plugin's code), by route, local address and upstream node.",
		}, []string{"code", "route", "listen_addr", "node"}),
		bandwidth: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apisix_stream_bandwidth",
			Help: "Bytes proxied by direction (type ingress: into the proxy, egress: out of it) and side (downstream: the client, upstream: the node).",
		}, []string{"type", "route", "listen_addr", "side"}),
		refusedVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apisix_stream_sessions_refused_total",
			Help: "New sessions refused before any route matched, by the limit that refused them: udp_max_sessions, udp_max_sessions_total, fd_reserve, tcp_max_connections.",
		}, []string{"reason"}),
	}
}

// refused is the refusal counter of reason.
func (m *streamMetrics) refused(reason string) prometheus.Counter {
	return m.refusedVec.WithLabelValues(reason)
}

// Register adds the collectors to reg; registering twice is not an error.
func (m *streamMetrics) Register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.connections, m.active, m.status, m.bandwidth, m.refusedVec} {
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
	label       string
	connections prometheus.Counter

	mu   sync.Mutex
	ends map[endKey]*endMetrics
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
	listen, node                                   string
}

// route returns the series of the route label (the route id, or its
// name with the prometheus plugin's prefer_name).
func (m *streamMetrics) route(label string) *routeMetrics {
	if rm, ok := m.routes.Load(label); ok {
		return rm.(*routeMetrics)
	}
	rm := &routeMetrics{label: label, connections: m.connections.WithLabelValues(label), ends: map[endKey]*endMetrics{}}
	actual, _ := m.routes.LoadOrStore(label, rm)
	return actual.(*routeMetrics)
}

// end returns the route's series of a local address and node.
func (rm *routeMetrics) end(listen netip.AddrPort, node string) *endMetrics {
	k := endKey{listen, node}
	rm.mu.Lock()
	em := rm.ends[k]
	rm.mu.Unlock()
	if em != nil {
		return em
	}
	m, r, l := Collectors, rm.label, listen.String()
	em = &endMetrics{
		active:       m.active.WithLabelValues(r, l),
		ok:           m.status.WithLabelValues("200", r, l, node),
		failed:       m.status.WithLabelValues("502", r, l, node),
		deny:         m.status.WithLabelValues("503", r, l, node),
		fromClient:   m.bandwidth.WithLabelValues("ingress", r, l, "downstream"),
		toClient:     m.bandwidth.WithLabelValues("egress", r, l, "downstream"),
		toUpstream:   m.bandwidth.WithLabelValues("egress", r, l, "upstream"),
		fromUpstream: m.bandwidth.WithLabelValues("ingress", r, l, "upstream"),
		listen:       l, node: node,
	}
	rm.mu.Lock()
	if cur := rm.ends[k]; cur != nil {
		em = cur
	} else {
		rm.ends[k] = em
	}
	rm.mu.Unlock()
	return em
}
