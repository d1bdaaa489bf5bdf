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
// The short run (CI) takes about 100 s; a long one:
//
//	unshare -n sh -c 'ip link set lo up && go test -count=1 -v -timeout 30m \
//	    ./integration/chaos/ -args -duration=10m -seed=1 -udp-ports=10000 \
//	    -udp-datagrams=1000000 -fuzz-workers=8'
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
	duration     = flag.Duration("duration", 60*time.Second, "how long the soak runs (the whole test takes about 40 s more: warm-up, session expiry, restarts)")
	seed         = flag.Int64("seed", 1, "seed of the random choices (churn, bad input, fault order, kill times)")
	warmup       = flag.Duration("warmup", 10*time.Second, "how long the main gateway's load runs before the baseline idle point (60s in the long run)")
	udpPorts     = flag.Int("udp-ports", 2000, "distinct source ports of the UDP sweep (10000 in the long run)")
	udpDatagrams = flag.Int("udp-datagrams", 40000, "datagrams the UDP sweep sends at most (1000000 in the long run)")
	fuzzWorkers  = flag.Int("fuzz-workers", 2, "concurrent fuzzed Admin API clients, each on a keep-alive connection (8 in the long run)")
	memProfRate  = flag.Int("memprofilerate", 0, "the main gateway's heap sampling interval in bytes (GODEBUG memprofilerate; 0: Go's 512 KiB). A finer one resolves more in the profiles, but every sampled allocation from a call stack not seen before adds a heap-profile bucket the runtime never frees, which then shows as RSS growth")
	profiles     = flag.String("profiles", "", "directory for the main gateway's heap profiles and memory maps at the baseline and the end (heap-baseline.pb.gz, heap-end.pb.gz, baseline.smaps, end.smaps; start.smaps)")
)

// sessionsExpire is how long the soak waits, idle, for the UDP sweep's
// sessions to end (their upstream timeout is 3 s) before measuring.
const sessionsExpire = 6 * time.Second

// caddyBin is the binary TestMain built.
var caddyBin string

func TestMain(m *testing.M) {
	os.Exit(e2e.Main(m, "chaos", func(bin, _ string) error {
		caddyBin = bin
		return nil
	}))
}
