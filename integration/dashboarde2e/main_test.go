//go:build linux

// Package dashboarde2e drives the dashboard (/apisix/dashboard/) in a real
// headless Chromium against a real Caddy process built with the plugin:
// signing in, creating an upstream and a route through the forms, APISIX's
// validation error shown next to its field, a node going unhealthy when
// its backend stops, the live connection count of a route, deleting, the
// viewer role that changes nothing, and 403 for clients outside
// allow_admin. It also takes the screenshots under docs/dashboard/ and
// benchmarks page loads with 10,000 routes.
//
// Chromium is Debian's chromium package (scripts/test.sh installs it);
// without it the tests skip, or fail when CI=true. Run it from the module
// root, in a network namespace of its own (fixed-port tests elsewhere
// cannot meet it, and Chromium sees only loopback):
//
//	unshare -n sh -c 'ip link set lo up && go test ./integration/dashboarde2e/'
//	unshare -n sh -c 'ip link set lo up && go test ./integration/dashboarde2e/ -run Screenshots -update'
//	unshare -n sh -c 'ip link set lo up && go test ./integration/dashboarde2e/ -run ^$ -bench . -benchtime 20x'
package dashboarde2e

import (
	"os"
	"testing"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// caddyBin is the binary TestMain built; moduleRoot is the repository root.
var caddyBin, moduleRoot string

func TestMain(m *testing.M) {
	os.Exit(e2e.Main(m, "dashboarde2e", func(bin, root string) error {
		caddyBin, moduleRoot = bin, root
		return nil
	}))
}
