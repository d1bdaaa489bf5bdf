package live

import (
	"github.com/caddy-apisix/stream/etcdstore"
	"github.com/caddy-apisix/stream/store"
)

// etcdMetrics and storeMetrics are the process's one set of etcd and
// store gauges: one node has one etcd view and one store, whichever
// config is current.
var (
	etcdMetrics  = etcdstore.NewMetrics()
	storeMetrics = store.NewMetrics()
)

// EtcdMetrics returns the process's etcd gauges, for etcdstore.Options
// and for registering with Caddy's metrics registry.
func EtcdMetrics() *etcdstore.Metrics { return etcdMetrics }

// StoreMetrics returns the process's store gauges, for store.Store,
// datacrypt.AtRest and Caddy's metrics registry.
func StoreMetrics() *store.Metrics { return storeMetrics }
