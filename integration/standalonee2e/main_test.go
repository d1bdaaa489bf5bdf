//go:build linux

// Package standalonee2e proves the standalone modes and APISIX's own
// tools on a real Caddy process built with the plugin: the file-driven
// mode (role data_plane, config_provider yaml|json) edited under load, the
// API-driven mode (role traditional, config_provider yaml|json) with
// apisix/admin/standalone.lua's version and digest rules and a restart,
// and the request sequences of ADC's apisix and apisix-standalone
// backends (api7/adc libs/backend-apisix*/src), checking the answers and
// the traffic that results.
//
// Run it from the module root, in a network namespace of its own when
// other tests run at the same time:
//
//	unshare -n sh -c 'ip link set lo up && go test ./integration/standalonee2e/'
package standalonee2e

import (
	"os"
	"testing"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// caddyBin is the binary TestMain built.
var caddyBin string

func TestMain(m *testing.M) {
	os.Exit(e2e.Main(m, "standalonee2e", func(bin, _ string) error {
		caddyBin = bin
		return nil
	}))
}
