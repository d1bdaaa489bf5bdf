// Package etcdstore keeps the registry's objects in etcd, in APISIX's own
// key layout and value format, so that any number of nodes (and real APISIX
// nodes) share them: writes go to etcd and are acknowledged once committed,
// and every node, the writer included, applies the same watch events
// (apisix/core/config_etcd.lua, apisix/core/etcd.lua).
package etcdstore
