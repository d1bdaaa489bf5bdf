// Package admine2e proves the Admin API end to end on a real Caddy
// process built with the plugin: the seed document's curl commands run
// verbatim with the real curl binary, every status code and error text of
// APISIX.md §2, §6.2 and §7.1 over HTTP through Caddy's admin endpoint,
// persistence across restarts and kill -9, route changes that apply to the
// next connection without a reload, and the cost of a change with 10,000
// routes present.
//
// Run it from the module root with
//
//	go test ./integration/admine2e/
//	go test ./integration/admine2e/ -run '^$' -bench . -benchtime 50x
//
// TestMain builds ./cmd/caddy once per run. Every test starts its own Caddy
// processes with JSON configs on free loopback ports, its own storage root,
// HOME and XDG directories, and stops them by PID. The seed replay needs
// the fixed addresses of the document (the Admin API on 127.0.0.1:9180,
// backends on 127.0.0.1:1995 and 127.0.0.1:5991) and fails with a clear
// message when another process holds them. It reads the seed document from
// ../../../shared/seed/apisix-stream-proxy.md (beside the repository).
package admine2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// caddyBin is the binary TestMain built; moduleRoot is the repository root.
var caddyBin, moduleRoot string

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "admine2e:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return 0, err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return 0, fmt.Errorf("module root not found two levels above the package: %v", err)
	}
	moduleRoot = root
	dir, err := os.MkdirTemp("", "apisix-admine2e-bin-")
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
