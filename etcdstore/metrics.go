package etcdstore

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the etcd gauges of APISIX's prometheus plugin
// (apisix/plugins/prometheus/exporter.lua etcd_reachable,
// etcd_modify_indexes). One node has one etcd view: package live creates
// and owns the process's one instance and hands it to each Store through
// Options.Metrics.
type Metrics struct {
	reachable prometheus.Gauge
	indexes   *prometheus.GaugeVec
}

// NewMetrics returns unregistered gauges.
func NewMetrics() *Metrics {
	return &Metrics{
		reachable: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "apisix_etcd_reachable",
			Help: "Config server etcd reachable from APISIX, 0 is unreachable",
		}),
		indexes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "apisix_etcd_modify_indexes",
			Help: "Etcd modify index for APISIX keys",
		}, []string{"key"}),
	}
}

// Register adds the gauges to reg; registering twice is not an error.
func (m *Metrics) Register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.reachable, m.indexes} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
		}
	}
	return nil
}

// observe publishes a status: reachable, the highest modifiedIndex per
// kind and overall (max_modify_index), and the watched revision
// (x_etcd_index), as APISIX labels them. A nil m observes nothing.
func (m *Metrics) observe(st Status) {
	if m == nil {
		return
	}
	if st.Connected {
		m.reachable.Set(1)
	} else {
		m.reachable.Set(0)
	}
	var top int64
	for k, v := range st.MaxModifiedIndex {
		m.indexes.WithLabelValues(k).Set(float64(v))
		top = max(top, v)
	}
	m.indexes.WithLabelValues("max_modify_index").Set(float64(top))
	m.indexes.WithLabelValues("x_etcd_index").Set(float64(st.Revision))
}
