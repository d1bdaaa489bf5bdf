//go:build linux

// Package clustere2e proves cluster mode end to end: real etcd servers
// (Debian's etcd-server, a single member or a 3-member cluster) and several
// real gateway processes built with the plugin. A write on one node routes
// the next connection on another; objects written by APISIX (raw etcd puts
// in APISIX's format) are served; compaction, etcd restarts, member and
// whole-cluster outages keep traffic flowing; roles, auth and TLS.
//
// Run it from the module root, inside a private network namespace since it
// binds loopback ports:
//
//	unshare -n sh -c 'ip link set lo up && go test ./integration/clustere2e/'
//	... go test ./integration/clustere2e/ -run '^$' -bench . -benchtime 1x
//
// The etcd binary comes from the etcd-server package (scripts/test.sh
// installs it). Without it the tests skip, or fail when CI=true.
package clustere2e

import (
	"os"
	"testing"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// caddyBin is the binary TestMain built.
var caddyBin string

func TestMain(m *testing.M) {
	os.Exit(e2e.Main(m, "clustere2e", func(bin, _ string) error {
		caddyBin = bin
		return nil
	}))
}
