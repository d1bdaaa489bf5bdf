//go:build linux

package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// Workers of each kind the soak runs on the main gateway.
const (
	nStreams = 16
	nShort   = 4
	nUDP     = 8
)

// TestSoak runs the whole harness for -duration and prints its table.
// It fails on what must never happen, whatever the load: an acknowledged
// write lost (on the main gateway or over kill -9), a byte corrupted, an
// established stream dropped across route changes and reloads, a 5xx to
// bad input, a crash of the fd-starved gateway, a listener that a
// reload did not add or remove, or a TCP or UDP session cap that did not
// hold (cap gateway). Rates and latencies are reported, not
// asserted.
func TestSoak(t *testing.T) {
	if *warmup <= 0 || *duration <= 0 {
		t.Fatalf("-warmup %v and -duration %v: both must be positive", *warmup, *duration)
	}
	rng := rand.New(rand.NewPCG(uint64(*seed), 16))
	dir := t.TempDir()

	echoes := [2]string{echoTCP(t), echoTCP(t)}
	faultAddrs := [4]string{resetTCP(t), neverReadTCP(t), blackholeTCP(t), slowTCP(t)}
	udpEcho, sweepEcho := echoUDP(t), echoUDP(t)
	cert := e2e.NewCert(t, "churn.test")

	// main gateway: live, churn, 4 fault and 1 reloaded TCP listeners, 1 UDP
	ports := e2e.FreePorts(t, 11)
	adminAddr := e2e.HostPort("127.0.0.1", ports[0])
	livePort, churnPort, extraPort, udpPort, sweepPort := ports[1], ports[2], ports[3], ports[4], ports[10]
	faultPorts := ports[5:9]
	mainConfig := func(extra bool) map[string]any {
		tcp := []any{e2e.HostPort("127.0.0.1", livePort), e2e.HostPort("127.0.0.1", churnPort)}
		for _, p := range faultPorts {
			tcp = append(tcp, e2e.HostPort("127.0.0.1", p))
		}
		if extra {
			tcp = append(tcp, e2e.HostPort("127.0.0.1", extraPort))
		}
		return e2e.CaddyConfig(adminAddr, filepath.Join(dir, "storage"), e2e.LogLevel("WARN"), map[string]any{
			"apisix": e2e.ApisixApp(map[string]any{"stream_proxy": map[string]any{
				"tcp": tcp, "udp": []any{e2e.HostPort("127.0.0.1", udpPort), e2e.HostPort("127.0.0.1", sweepPort)},
			}}),
		})
	}
	var gwEnv []string
	if *memProfRate > 0 {
		gwEnv = append(gwEnv, fmt.Sprintf("GODEBUG=memprofilerate=%d", *memProfRate))
	}
	gw := startGateway(t, dir, "main-gateway", adminAddr, mainConfig(false), 0, gwEnv...)
	a := admin{adminAddr}
	seeded := map[string]bool{}
	seedObj := func(path string, body any) {
		t.Helper()
		seeded[path] = true
		if code, resp, err := a.do("PUT", "/apisix/admin/"+path, body); err != nil || code >= 300 {
			t.Fatalf("PUT %s: %d %s %v", path, code, resp, err)
		}
	}
	up := func(node string, extra map[string]any) map[string]any {
		u := map[string]any{"type": "roundrobin", "nodes": map[string]int{node: 1}}
		for k, v := range extra {
			u[k] = v
		}
		return u
	}
	seedObj("stream_routes/live", map[string]any{"server_port": livePort, "upstream": up(echoes[0], nil)})
	seedObj("stream_routes/extra", map[string]any{"server_port": extraPort, "upstream": up(echoes[1], nil)})
	// UDP sessions end 3 s after their last datagram (sessionsExpire)
	udpTimeout := map[string]any{"timeout": map[string]any{"connect": 1, "send": 3, "read": 3}}
	seedObj("stream_routes/udp", map[string]any{"server_port": udpPort, "upstream": up(udpEcho, udpTimeout)})
	seedObj("stream_routes/udp-sweep", map[string]any{"server_port": sweepPort, "upstream": up(sweepEcho, udpTimeout)})
	for i, p := range faultPorts {
		seedObj(fmt.Sprintf("stream_routes/fault-%d", i), map[string]any{"server_port": p,
			"upstream": up(faultAddrs[i], map[string]any{"timeout": map[string]any{"connect": 1, "send": 2, "read": 2}})})
	}

	// fd gateway: RLIMIT_NOFILE 128, one TCP listener
	fdPorts := e2e.FreePorts(t, 2)
	fdAdmin, fdAddr := e2e.HostPort("127.0.0.1", fdPorts[0]), e2e.HostPort("127.0.0.1", fdPorts[1])
	fdDir := t.TempDir()
	fdGW := startGateway(t, fdDir, "fd-gateway", fdAdmin, e2e.CaddyConfig(fdAdmin, filepath.Join(fdDir, "storage"), e2e.LogLevel("WARN"), map[string]any{
		"apisix": e2e.ApisixApp(map[string]any{"stream_proxy": map[string]any{"tcp": []any{fdAddr}}}),
	}), 128)
	if code, resp, err := (admin{fdAdmin}).do("PUT", "/apisix/admin/stream_routes/fd", map[string]any{"server_port": fdPorts[1], "upstream": up(echoes[0], nil)}); err != nil || code >= 300 {
		t.Fatalf("PUT fd route: %d %s %v", code, resp, err)
	}

	// cap gateway: stream_proxy.tcp_max_connections and udp_max_sessions
	// capConns, one TCP and one UDP listener
	capPorts := e2e.FreePorts(t, 3)
	capAdmin, capAddr, capUDPAddr := e2e.HostPort("127.0.0.1", capPorts[0]), e2e.HostPort("127.0.0.1", capPorts[1]), e2e.HostPort("127.0.0.1", capPorts[2])
	capDir := t.TempDir()
	capGW := startGateway(t, capDir, "cap-gateway", capAdmin, e2e.CaddyConfig(capAdmin, filepath.Join(capDir, "storage"), e2e.LogLevel("WARN"), map[string]any{
		"apisix": e2e.ApisixApp(map[string]any{"stream_proxy": map[string]any{"tcp": []any{capAddr}, "tcp_max_connections": capConns,
			"udp": []any{capUDPAddr}, "udp_max_sessions": capConns}}),
	}), 0)
	for id, route := range map[string]map[string]any{
		"cap":     {"server_port": capPorts[1], "upstream": up(echoes[1], nil)},
		"cap-udp": {"server_port": capPorts[2], "upstream": up(udpEcho, udpTimeout)},
	} {
		if code, resp, err := (admin{capAdmin}).do("PUT", "/apisix/admin/stream_routes/"+id, route); err != nil || code >= 300 {
			t.Fatalf("PUT %s route: %d %s %v", id, code, resp, err)
		}
	}

	var c counters
	startStats := statsOf(gw.PID(), *profiles, "start")
	sweepAddr := e2e.HostPort("127.0.0.1", sweepPort)
	liveAddr := e2e.HostPort("127.0.0.1", livePort)

	var faultAddrsGW [4]string
	for i, p := range faultPorts {
		faultAddrsGW[i] = e2e.HostPort("127.0.0.1", p)
	}
	// mainMix starts the main gateway's load until ctx ends, each worker
	// through spawn: the streams, short connections, UDP flows and sweep
	// (up to sweepDatagrams), the upstream faults, the Admin API churn
	// (recorded in led) and fuzzers, and the reloads
	mainMix := func(ctx context.Context, spawn func(func(*rand.Rand)), led *ledger, sweepDatagrams int) {
		for range nStreams {
			spawn(func(r *rand.Rand) { stream(ctx, &c, liveAddr, r.Uint64()) })
		}
		for range nShort {
			spawn(func(r *rand.Rand) { shortConns(ctx, &c, liveAddr, r) })
		}
		for range nUDP {
			spawn(func(r *rand.Rand) { udpFlow(ctx, &c, e2e.HostPort("127.0.0.1", udpPort), r) })
		}
		spawn(func(r *rand.Rand) { faults(ctx, &c, faultAddrsGW, r) })
		spawn(func(r *rand.Rand) { churn(ctx, &c, a, led, r, churnPort, livePort, echoes, cert) })
		for range *fuzzWorkers {
			spawn(func(r *rand.Rand) { badRequests(ctx, &c, adminAddr, r) })
		}
		spawn(func(r *rand.Rand) { udpSweep(ctx, &c, sweepAddr, *udpPorts, sweepDatagrams) })
		spawn(func(r *rand.Rand) {
			reloads(ctx, &c, adminAddr, mainConfig, e2e.HostPort("127.0.0.1", extraPort), 3*time.Second)
		})
	}
	spawner := func(wg *sync.WaitGroup) func(func(*rand.Rand)) {
		return func(f func(r *rand.Rand)) {
			r := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
			wg.Add(1)
			go func() {
				defer wg.Done()
				f(r)
			}()
		}
	}
	// settle ends a phase of the main gateway's load: every acknowledged
	// write of led checked, then the config without the extra listener,
	// the seeded objects only (the churn's and the fuzzers' removed) and
	// every session expired, so that both idle points are a process in
	// the same state
	settle := func(led *ledger, phase string) {
		_, lost, detail := led.verify(a)
		c.adminLost.Add(int64(lost))
		for _, d := range detail {
			t.Errorf("main gateway, %s: %s", phase, d)
		}
		if code, resp, err := a.do(http.MethodPost, "/load", mainConfig(false)); err != nil || code != http.StatusOK {
			t.Errorf("reload without the extra listener after the %s: %d %s %v", phase, code, resp, err)
		}
		removeAllBut(t, a, seeded)
		// the fuzzers' idle keep-alive connections would count as the
		// gateway's descriptors
		fuzzClient.CloseIdleConnections()
		time.Sleep(sessionsExpire)
	}

	// warm-up: the main gateway's whole load for -warmup (with one round
	// of the UDP sweep, so every sweep port is a session once), counted
	// and checked like the rest, then idle: the baseline RSS,
	// descriptors, Go heap and metric series are those of a process that
	// has served this load once (a route's first session makes its
	// series, a status code or method first answered Caddy's admin
	// series, a code path first run its heap objects, a heap peak the
	// runtime's metadata for that size)
	warm, warmCancel := context.WithTimeout(context.Background(), *warmup)
	var warmWG sync.WaitGroup
	warmLed := newLedger()
	mainMix(warm, spawner(&warmWG), warmLed, *udpPorts)
	warmWG.Wait()
	warmCancel()
	settle(warmLed, "warm-up")
	baseMem := memOf(adminAddr, *profiles, "heap-baseline")
	baseStats := statsOf(gw.PID(), *profiles, "baseline")

	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	var wg sync.WaitGroup
	spawn := spawner(&wg)
	led := newLedger()
	mainMix(ctx, spawn, led, *udpDatagrams)
	spawn(func(r *rand.Rand) { diskLoop(ctx, t, &c, echoes[0]) })
	spawn(func(r *rand.Rand) { etcdLoop(ctx, t, &c, r.Uint64(), echoes[0]) })
	spawn(func(r *rand.Rand) {
		reloads(ctx, &c, adminAddr, mainConfig, e2e.HostPort("127.0.0.1", extraPort), 3*time.Second)
	})
	spawn(func(r *rand.Rand) { fdLoop(ctx, &c, fdGW, fdAddr) })
	spawn(func(r *rand.Rand) { capLoop(ctx, &c, capGW, capAdmin, capAddr) })
	spawn(func(r *rand.Rand) { udpCapLoop(ctx, &c, capGW, capAdmin, capUDPAddr) })

	crashLoop(ctx, t, &c, rng, echoes[0])
	wg.Wait()

	settle(led, "soak")
	endMem := memOf(adminAddr, *profiles, "heap-end")
	endStats := statsOf(gw.PID(), *profiles, "end")
	c.panics.Store(int64(strings.Count(gw.Output(), "panic")))
	if *profiles != "" {
		_ = os.WriteFile(filepath.Join(*profiles, "main-gateway.log"), []byte(gw.Output()), 0o644)
	}
	table := c.table(*duration, *seed, startStats, baseStats, endStats, baseMem, endMem)
	t.Log("\n" + table)

	checks := []struct {
		what string
		n    int64
	}{
		{"acknowledged writes lost on the main gateway", c.adminLost.Load()},
		{"acknowledged writes lost over kill -9", c.crashLost.Load()},
		{"established streams dropped", c.streamDropped.Load()},
		{"stream bytes corrupted", c.streamCorrupt.Load()},
		{"short connections corrupted", c.shortCorrupt.Load()},
		{"UDP datagrams corrupted", c.udpCorrupt.Load()},
		{"5xx answers to bad input", c.bad5xx.Load()},
		{"fd gateway crashes", c.fdCrashed.Load()},
		{"reloaded listener not up after the reload that added it", c.extraNotUp.Load()},
		{"reloaded listener still up after the reload that removed it", c.extraStillUp.Load()},
		{"failed reloads", c.reloadFailed.Load()},
		{"fd exhaustion rounds not recovered", c.fdRounds.Load() - c.fdRecovered.Load()},
		{"panics in the main gateway's log", c.panics.Load()},
		{"acknowledged writes lost on the full disk", c.diskLost.Load()},
		{"acknowledged writes lost in etcd mode", c.etcdLost.Load()},
		{"full-disk rounds where traffic failed", c.diskTrafficFailed.Load()},
		{"connections within the TCP cap not served", c.capHeldFailed.Load()},
		{"connections beyond the TCP cap served", c.capServed.Load()},
		{"connections beyond the TCP cap left open", c.capHung.Load()},
		{"TCP cap rounds whose refused_total{tcp_max_connections} did not grow by the refused", c.capMetricWrong.Load()},
		{"TCP cap rounds not served again after the held connections closed", c.capNotRecovered.Load()},
		{"sessions within the UDP cap not served", c.udpCapHeldFailed.Load()},
		{"new UDP sources beyond the cap answered", c.udpCapServed.Load()},
		{"UDP cap rounds whose refused_total{udp_max_sessions} did not grow by the refused", c.udpCapMetricWrong.Load()},
		{"UDP cap rounds not served again after the held sessions expired", c.udpCapNotRecovered.Load()},
	}
	for _, ck := range checks {
		if ck.n != 0 {
			t.Errorf("%s: %d, want 0", ck.what, ck.n)
		}
	}
	if f := c.lastReloadFailure.Load(); f != nil {
		t.Errorf("the last failed reload answered: %s", f)
	}
	if gw.Exited() {
		t.Errorf("main gateway exited during the soak: %v", gw.Cmd.ProcessState)
	}
	if c.etcdKills.Load() == 0 || c.etcdAcked.Load() == 0 || c.etcdConnOK.Load() == 0 {
		t.Errorf("the etcd part did not run: %d member kills, %d acknowledged writes, %d connections", c.etcdKills.Load(), c.etcdAcked.Load(), c.etcdConnOK.Load())
	}
	// one WARN per ratewarn.Every (10 s) at most while the cap bites, with
	// the count since the last: at least one, never one per refusal
	if w, most := c.capWarns.Load(), int64((*duration).Seconds())/10+2; c.capRounds.Load() == 0 || w == 0 || w > most {
		t.Errorf("TCP cap: %d rounds, %d refusal WARNs in the cap gateway's log, want at least 1 and at most %d", c.capRounds.Load(), w, most)
	}
	if w, most := c.udpCapWarns.Load(), int64((*duration).Seconds())/10+2; c.udpCapRounds.Load() == 0 || w == 0 || w > most {
		t.Errorf("UDP cap: %d rounds, %d refusal WARNs in the cap gateway's log, want at least 1 and at most %d", c.udpCapRounds.Load(), w, most)
	}
	if c.diskAcked.Load() > 0 && c.disk503.Load() == 0 {
		t.Errorf("the disk gateway's tmpfs never filled up (%d acknowledged writes)", c.diskAcked.Load())
	}
	if c.streams.Load() != 2*nStreams || c.kills.Load() == 0 || c.reloads.Load() == 0 || c.adminAcked.Load() == 0 {
		// nStreams in the warm-up and as many in the soak
		t.Errorf("the soak did not run: %d streams, %d kills, %d reloads, %d acknowledged writes", c.streams.Load(), c.kills.Load(), c.reloads.Load(), c.adminAcked.Load())
	}
}
