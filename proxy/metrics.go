package proxy

import (
	"errors"
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
			Help: "Stream connections and UDP sessions being proxied now.",
		}, []string{"route"}),
		status: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apisix_stream_status",
			Help: "Ended sessions by APISIX stream status: 200 proxied, 502 no upstream could be reached, 503 refused by a plugin or without upstream.",
		}, []string{"code", "route"}),
		bandwidth: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apisix_stream_bandwidth",
			Help: "Bytes proxied; type ingress is client to upstream, egress upstream to client.",
		}, []string{"type", "route"}),
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

// routeMetrics are one route's series, resolved once per route id so that
// a connection costs atomic adds, not label lookups.
type routeMetrics struct {
	connections      prometheus.Counter
	active           prometheus.Gauge
	ok, failed, deny prometheus.Counter
	ingress, egress  prometheus.Counter
}

func (m *streamMetrics) route(id string) *routeMetrics {
	if rm, ok := m.routes.Load(id); ok {
		return rm.(*routeMetrics)
	}
	rm := &routeMetrics{
		connections: m.connections.WithLabelValues(id),
		active:      m.active.WithLabelValues(id),
		ok:          m.status.WithLabelValues("200", id),
		failed:      m.status.WithLabelValues("502", id),
		deny:        m.status.WithLabelValues("503", id),
		ingress:     m.bandwidth.WithLabelValues("ingress", id),
		egress:      m.bandwidth.WithLabelValues("egress", id),
	}
	actual, _ := m.routes.LoadOrStore(id, rm)
	return actual.(*routeMetrics)
}
