//go:build linux

// Package usere2e drives what a user sees around the proxy on a real Caddy
// process built with the plugin: the warnings of the Admin API on writes
// (X-APISIX-Warning and the WARN log line), the caddy apisix subcommands
// (export, import, routes, reset) run as programs against a running node,
// and the start-up log line with the listener addresses.
//
// Run it from the module root, in a network namespace of its own:
//
//	unshare -n sh -c 'ip link set lo up && go test ./integration/usere2e/'
//
// TestMain builds ./cmd/caddy once per run (or uses APISIX_E2E_CADDY).
// Every test starts its own Caddy process on free loopback ports with its
// own storage root and HOME, and stops it by PID.
package usere2e

import (
	"os"
	"testing"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// caddyBin is the binary TestMain built; moduleRoot is the repository root.
var caddyBin, moduleRoot string

func TestMain(m *testing.M) {
	os.Exit(e2e.Main(m, "usere2e", func(bin, root string) error {
		caddyBin, moduleRoot = bin, root
		return nil
	}))
}
