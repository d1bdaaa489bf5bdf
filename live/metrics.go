package live

import "github.com/caddy-apisix/stream/etcdstore"

// etcdMetrics are the process's one set of etcd gauges: one node has one
// etcd view, whichever config (and Store) is current.
var etcdMetrics = etcdstore.NewMetrics()

// EtcdMetrics returns the process's etcd gauges, for etcdstore.Options
// and for registering with Caddy's metrics registry.
func EtcdMetrics() *etcdstore.Metrics { return etcdMetrics }
