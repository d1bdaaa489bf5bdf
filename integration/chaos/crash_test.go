//go:build linux

package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// startWait bounds a gateway's start.
const startWait = 30 * time.Second

// startGateway writes config to dir/name and starts caddy run on it
// (with RLIMIT_NOFILE at nofile when not 0, and env added to its
// environment), waiting until the Admin API on adminAddr answers.
func startGateway(t *testing.T, dir, name, adminAddr string, config map[string]any, nofile int, env ...string) *e2e.Proc {
	t.Helper()
	path := e2e.WriteJSON(t, dir, name+".json", config)
	cmd := e2e.CaddyCmd(caddyBin, path, dir, env...)
	if nofile > 0 {
		e2e.LimitNofile(t, cmd, nofile)
	}
	p := e2e.Start(t, name, cmd, e2e.Options{})
	p.WaitReady(startWait, e2e.ApisixReady(adminAddr, e2e.AdminKey))
	return p
}

// crashLoop runs on the test goroutine until ctx ends: it starts the
// crash gateway on its storage, checks that every acknowledged write of
// the rounds before is stored, lets four writers PUT and DELETE
// upstreams and stream routes, and kills the gateway with SIGKILL at a
// random moment while they write.
func crashLoop(ctx context.Context, t *testing.T, c *counters, rng *rand.Rand, echo string) {
	dir := t.TempDir()
	ports := e2e.FreePorts(t, 2)
	adminAddr := e2e.HostPort("127.0.0.1", ports[0])
	config := e2e.CaddyConfig(adminAddr, filepath.Join(dir, "storage"), e2e.LogLevel("WARN"), map[string]any{
		"apisix": e2e.ApisixApp(map[string]any{"stream_proxy": map[string]any{"tcp": []any{e2e.HostPort("127.0.0.1", ports[1])}}}),
	})
	a := admin{adminAddr}
	led := newLedger()
	for round := 0; ctx.Err() == nil; round++ {
		p := startGateway(t, dir, "crash-gateway", adminAddr, config, 0)
		led.check(t, a, &c.crashVerified, &c.crashLost, fmt.Sprintf("after kill -9 #%d", round))
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			wrng := rand.New(rand.NewPCG(rng.Uint64(), uint64(w)))
			go func() {
				defer wg.Done()
				crashWriter(stop, c, a, led, wrng, w, round, echo, ports[1])
			}()
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(200+rng.IntN(1300)) * time.Millisecond):
		}
		p.Kill()
		c.kills.Add(1)
		close(stop)
		wg.Wait()
	}
	// the last round's writes, after one more restart
	p := startGateway(t, dir, "crash-gateway", adminAddr, config, 0)
	led.check(t, a, &c.crashVerified, &c.crashLost, "after the last kill -9")
	p.Stop()
}

// crashWriter is writer w of a crash round: it PUTs and DELETEs its own
// ids (so no two writers race on one path) until stop is closed.
func crashWriter(stop <-chan struct{}, c *counters, a admin, led *ledger, rng *rand.Rand, w, round int, echo string, port int) {
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		kind := []string{"upstreams", "stream_routes"}[rng.IntN(2)]
		path := fmt.Sprintf("%s/crash-%d-%d", kind, w, rng.IntN(20))
		gen := fmt.Sprintf("%d.%d", round, n)
		method := http.MethodPut
		var body any = map[string]any{"labels": map[string]string{"gen": gen}, "type": "roundrobin", "nodes": map[string]int{echo: 1}}
		if kind == "stream_routes" {
			body = map[string]any{"labels": map[string]string{"gen": gen}, "server_port": port, "remote_addr": fmt.Sprintf("127.0.2.%d", w+1),
				"upstream": map[string]any{"type": "roundrobin", "nodes": map[string]int{echo: 1}}}
		}
		if rng.IntN(4) == 0 {
			method, body, gen = http.MethodDelete, nil, ""
		}
		code, _, err := led.write(a, method, path, gen, body)
		if err == nil && code < 300 {
			c.crashAcked.Add(1)
		}
	}
}

// fdLoop exhausts the descriptors of the fd gateway (RLIMIT_NOFILE 128)
// every few seconds until ctx ends: it holds up to 300 connections to
// its listener at addr for 2 s (measuring the gateway's CPU time over
// them), checks that the process is alive, closes them
// and waits (at most 15 s) until a new connection is served again.
func fdLoop(ctx context.Context, c *counters, p *e2e.Proc, addr string) {
	for ctx.Err() == nil {
		var held []net.Conn
		for range 300 {
			conn, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				break
			}
			held = append(held, conn)
		}
		if int64(len(held)) > c.fdPeak.Load() {
			c.fdPeak.Store(int64(len(held)))
		}
		c.fdRounds.Add(1)
		// descriptors exhausted, clients waiting in the accept queue: the
		// gateway's CPU time over the hold shows whether accept spins
		t0, ticks0 := time.Now(), cpuTicks(p.PID())
		time.Sleep(2 * time.Second)
		c.fdCPUTicks.Add(cpuTicks(p.PID()) - ticks0)
		c.fdExhaustedNs.Add(int64(time.Since(t0)))
		for _, conn := range held {
			conn.Close()
		}
		if p.Exited() {
			c.fdCrashed.Add(1)
			return
		}
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			conn, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				ok := echoOnce(conn)
				conn.Close()
				if ok {
					c.fdRecovered.Add(1)
					break
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		select {
		case <-ctx.Done():
		case <-time.After(3 * time.Second):
		}
	}
}
