package store

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the store's gauges. Package live creates and owns the
// process's one instance; each Store (WithMetrics) and
// datacrypt.AtRest is handed it. A nil *Metrics records nothing.
type Metrics struct {
	// unreadable is apisix_store_unreadable_objects: how many stored
	// entries the last Load skipped because they could not be read or
	// decoded (they are not served, and their files are kept).
	unreadable prometheus.Gauge
}

// NewMetrics returns unregistered gauges.
func NewMetrics() *Metrics {
	return &Metrics{unreadable: prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "apisix_store_unreadable_objects",
		Help: "Stored objects that the last load of the store could not read or decode; they are not served and their files are kept.",
	})}
}

// Register registers the gauges with reg; registering twice is not an
// error.
func (m *Metrics) Register(reg prometheus.Registerer) error {
	if err := reg.Register(m); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return err
		}
	}
	return nil
}

// SetUnreadable sets apisix_store_unreadable_objects to n, as a Load
// that skipped n entries does.
func (m *Metrics) SetUnreadable(n int) {
	if m != nil {
		m.unreadable.Set(float64(n))
	}
}

// AddUnreadable counts one more entry skipped by the current Load (a
// wrapping store, such as datacrypt.AtRest, that refuses an entry the
// inner Load returned).
func (m *Metrics) AddUnreadable() {
	if m != nil {
		m.unreadable.Inc()
	}
}

// Describe and Collect make Metrics a prometheus.Collector of its one
// gauge.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) { m.unreadable.Describe(ch) }

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) { m.unreadable.Collect(ch) }

var _ prometheus.Collector = (*Metrics)(nil)
