//go:build linux

// Package admine2e proves the Admin API end to end on a real Caddy
// process built with the plugin: the seed document's curl commands run
// verbatim with the real curl binary, every status code and error text of
// docs/apisix/admin-api.md, docs/apisix/upstreams.md#upstream-resource-checks, docs/apisix/tls.md#ssl-object-schema over HTTP through Caddy's admin endpoint,
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
	"os"
	"testing"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// caddyBin is the binary TestMain built; moduleRoot is the repository root.
var caddyBin, moduleRoot string

func TestMain(m *testing.M) {
	os.Exit(e2e.Main(m, "admine2e", func(bin, root string) error {
		caddyBin, moduleRoot = bin, root
		e2e.NoteSecret("the viewer key", viewerKey)
		return nil
	}))
}
