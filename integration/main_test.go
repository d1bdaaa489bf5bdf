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
// Some tests drive real clients and servers; a missing one fails the test
// with the Debian package to install (they never skip): curl,
// mariadb-client, mariadb-server, redis-server, redis-tools, dnsutils,
// openssl.
package integration

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// update rewrites the golden files instead of comparing with them.
var update = flag.Bool("update", false, "rewrite the golden files of the adapt tests")

// caddyBin is the binary TestMain built; moduleRoot is the repository root.
var caddyBin, moduleRoot string

func TestMain(m *testing.M) {
	flag.Parse()
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	root, err := filepath.Abs("..")
	if err != nil {
		return 0, err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return 0, fmt.Errorf("module root not found beside the integration package: %v", err)
	}
	moduleRoot = root
	dir, err := os.MkdirTemp("", "apisix-integration-bin-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	caddyBin = filepath.Join(dir, "caddy")
	build := exec.Command("go", "build", "-o", caddyBin, "./cmd/caddy")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("building ./cmd/caddy failed: %v\n%s", err, out)
	}
	return m.Run(), nil
}
