//go:build linux

// Package chaos is the soak and chaos harness of issue 16: against real
// Caddy processes built with the plugin, on loopback only, it runs at the
// same time long-lived TCP streams whose bytes are checksummed both ways,
// new short connections, UDP flows, Admin API churn (stream routes,
// upstreams, services, SSLs), bad Admin API input, caddy reloads (POST
// /load) that add and remove a listener, upstream faults (resets, a
// backend that never reads, a blackhole, a slow backend), kill -9 and
// restart of a gateway under Admin API writes, and descriptor exhaustion
// of a gateway started with a low RLIMIT_NOFILE. It prints one table
// (docs/reliability.md shows one) and fails on any lost acknowledged
// write, corrupted byte or established connection dropped by a route
// change or a reload.
//
// The short run (CI) takes about 75 s; a long one:
//
//	unshare -n sh -c 'ip link set lo up && go test -count=1 -v -timeout 30m \
//	    ./integration/chaos/ -args -duration=10m -seed=1'
//
// Everything is bounded by -duration and by fixed counts of workers.
package chaos

import (
	"flag"
	"os"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

var (
	duration = flag.Duration("duration", 75*time.Second, "how long the soak runs (the whole test takes about 15 s more)")
	seed     = flag.Int64("seed", 1, "seed of the random choices (churn, bad input, fault order, kill times)")
)

// caddyBin is the binary TestMain built.
var caddyBin string

func TestMain(m *testing.M) {
	os.Exit(e2e.Main(m, "chaos", func(bin, _ string) error {
		caddyBin = bin
		return nil
	}))
}
