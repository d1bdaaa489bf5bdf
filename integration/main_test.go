//go:build linux

// Package integration drives a real Caddy binary, built with this plugin,
// the way a user does: a JSON or Caddyfile config, the Admin API over HTTP,
// clients over TCP, UDP and TLS on loopback addresses.
//
// Run it from the module root with
//
//	go test ./integration/
//
// TestMain builds ./cmd/caddy once per run into a temporary directory;
// every test starts its own Caddy process on free loopback ports with its
// own storage and HOME, and stops it by PID when it ends. Regenerate the
// golden files of the adapt tests with go test ./integration/ -run Adapt -update.
//
// TestDigOverIPv6 drives dig; without it the test fails with the Debian
// package to install (dnsutils). The real clients and servers a user has
// are driven by ./realclients; the seed document's curls by ./admine2e.
package integration

import (
	"flag"
	"os"
	"testing"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// update rewrites the golden files instead of comparing with them.
var update = flag.Bool("update", false, "rewrite the golden files of the adapt tests")

// caddyBin is the binary TestMain built; moduleRoot is the repository root.
var caddyBin, moduleRoot string

func TestMain(m *testing.M) {
	os.Exit(e2e.Main(m, "integration", func(bin, root string) error {
		caddyBin, moduleRoot = bin, root
		return nil
	}))
}
