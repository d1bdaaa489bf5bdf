//go:build linux

package clustere2e

import clientv3 "go.etcd.io/etcd/client/v3"

// clientConfig is the raw client's config, for client options.
type clientConfig = clientv3.Config
