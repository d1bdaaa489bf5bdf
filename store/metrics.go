package store

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// UnreadableObjects is apisix_store_unreadable_objects: how many stored
// entries the last Load skipped because they could not be read or decoded
// (they are not served, and their files are kept).
var UnreadableObjects = prometheus.NewGauge(prometheus.GaugeOpts{
	Name: "apisix_store_unreadable_objects",
	Help: "Stored objects that the last load of the store could not read or decode; they are not served and their files are kept.",
})

// RegisterMetrics registers the store's metrics with reg; registering
// twice is not an error.
func RegisterMetrics(reg prometheus.Registerer) error {
	if err := reg.Register(UnreadableObjects); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return err
		}
	}
	return nil
}
