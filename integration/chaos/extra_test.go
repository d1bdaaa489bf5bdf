//go:build linux

package chaos

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// udpSweep sends datagrams to addr from ports distinct source ports at
// once (all their sockets open together, so the ports are distinct), one
// datagram per socket per round, in chunks of 100 (written, then their
// echoes read with a 1 s deadline: a chunk fits the socket buffers), until budget datagrams are sent or
// ctx ends. Each source port is a session of the gateway; the route's
// upstream timeout ends them once the sweep stops.
func udpSweep(ctx context.Context, c *counters, addr string, ports, budget int) {
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return
	}
	var conns []*net.UDPConn
	defer func() {
		for _, uc := range conns {
			uc.Close()
		}
	}()
	for range ports {
		uc, err := net.DialUDP("udp", nil, raddr)
		if err != nil {
			break
		}
		conns = append(conns, uc)
	}
	c.sweepPorts.Store(int64(len(conns)))
	msg := make([]byte, 64)
	got := make([]byte, 256)
	sent := 0
	for round := uint64(0); ctx.Err() == nil && sent < budget; round++ {
		for lo := 0; lo < len(conns) && sent < budget && ctx.Err() == nil; lo += 100 {
			chunk := conns[lo:min(lo+100, len(conns), lo+budget-sent)]
			for i, uc := range chunk {
				binary.BigEndian.PutUint64(msg, round)
				binary.BigEndian.PutUint64(msg[8:], uint64(lo+i))
				if _, err := uc.Write(msg); err == nil {
					c.sweepSent.Add(1)
				}
				sent++
			}
			deadline := time.Now().Add(time.Second)
			for i, uc := range chunk {
				_ = uc.SetReadDeadline(deadline)
				for {
					n, err := uc.Read(got)
					if err != nil {
						break
					}
					if n == len(msg) && binary.BigEndian.Uint64(got) == round && binary.BigEndian.Uint64(got[8:]) == uint64(lo+i) {
						c.sweepAnswered.Add(1)
						break
					}
				}
			}
		}
	}
}

// cpuTicks is the user plus system CPU time of process pid, in clock
// ticks (USER_HZ, 100 per second on Linux), from /proc/pid/stat.
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// the fields after the command name, which is in parentheses
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return utime + stime
}

// goMem is the Go runtime's view of a gateway's memory after a forced
// garbage collection, from its admin endpoint.
type goMem struct {
	heapInuse, heapObjects, heapIdleKept, goroutines int64
	// runtimeKiB is the Go runtime's memory outside the heap: goroutine
	// stacks, span and cache structures, GC metadata, profiling buckets
	// and the rest (StackInuse, MSpanInuse, MCacheInuse, GCSys,
	// BuckHashSys, OtherSys)
	runtimeKiB int64
	// profileKiB is the part of it that holds the heap profile's
	// buckets (BuckHashSys): one per call stack and size a sampled
	// allocation came from, never freed, so it grows with the variety of
	// the fuzzed bodies (encoding/json recurses once per nesting level)
	profileKiB int64
	// series are the samples of its /metrics (saved as dir/name.metrics
	// when dir is not ""), stream those of apisix_stream_*: what grows
	// there is label values that keep appearing
	series, stream int64
}

// memOf forces a GC in the gateway whose Caddy admin endpoint is admin
// (GET /debug/pprof/heap?gc=1, saved as dir/name.pb.gz when dir is not
// ""), has it return the freed memory to the OS (POST /v1/gc, APISIX's
// control API), so that the RSS read next is what the process holds and
// not what the Go runtime kept for reuse, then reads its memory
// statistics (/debug/vars, saved as dir/name.vars.json) and goroutine
// count (/debug/pprof/goroutine?debug=1), and counts its metric series
// (/metrics).
// memClient is memOf's client: no keep-alive, so that the descriptors
// counted after it are the gateway's own.
var memClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func memOf(admin, dir, name string) goMem {
	var m goMem
	get := func(path string) []byte {
		resp, err := memClient.Get("http://" + admin + path)
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return b
	}
	if prof := get("/debug/pprof/heap?gc=1"); dir != "" && len(prof) > 0 {
		_ = os.WriteFile(filepath.Join(dir, name+".pb.gz"), prof, 0o644)
	}
	if resp, err := memClient.Post("http://"+admin+"/v1/gc", "", nil); err == nil {
		resp.Body.Close()
	}
	var vars struct {
		Memstats struct {
			HeapInuse, HeapObjects, HeapIdle, HeapReleased                    int64
			StackInuse, MSpanInuse, MCacheInuse, GCSys, BuckHashSys, OtherSys int64
		} `json:"memstats"`
	}
	expvars := get("/debug/vars")
	if dir != "" && len(expvars) > 0 {
		_ = os.WriteFile(filepath.Join(dir, name+".vars.json"), expvars, 0o644)
	}
	if json.Unmarshal(expvars, &vars) == nil {
		ms := vars.Memstats
		m.heapInuse, m.heapObjects, m.heapIdleKept = ms.HeapInuse, ms.HeapObjects, ms.HeapIdle-ms.HeapReleased
		m.runtimeKiB = (ms.StackInuse + ms.MSpanInuse + ms.MCacheInuse + ms.GCSys + ms.BuckHashSys + ms.OtherSys) >> 10
		m.profileKiB = ms.BuckHashSys >> 10
	}
	if text := get("/metrics"); len(text) > 0 {
		if dir != "" {
			_ = os.WriteFile(filepath.Join(dir, name+".metrics"), text, 0o644)
		}
		for _, line := range strings.Split(string(text), "\n") {
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			m.series++
			if strings.HasPrefix(line, "apisix_stream_") {
				m.stream++
			}
		}
	}
	if g := get("/debug/pprof/goroutine?debug=1"); len(g) > 0 {
		// "goroutine profile: total N"
		line, _, _ := strings.Cut(string(g), "\n")
		m.goroutines, _ = strconv.ParseInt(strings.TrimPrefix(line, "goroutine profile: total "), 10, 64)
	}
	return m
}

// diskLoop runs the disk gateway until ctx ends: Caddy in a mount
// namespace whose storage is a 512 KiB tmpfs (e2e.TmpfsCaddyCmd). It
// writes ~40 KiB upstreams under 20 ids until the disk is full (503 with
// the storage error), checks that traffic through its route still flows,
// deletes two of them and goes on. At the end every acknowledged write
// is checked on the running gateway and again after a restart on the
// same tmpfs.
func diskLoop(ctx context.Context, t *testing.T, c *counters, echo string) {
	dir := t.TempDir()
	ports := e2e.FreePorts(t, 2)
	adminAddr, listen := e2e.HostPort("127.0.0.1", ports[0]), e2e.HostPort("127.0.0.1", ports[1])
	storage := filepath.Join(dir, "storage")
	if err := os.MkdirAll(storage, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := e2e.WriteJSON(t, dir, "disk-gateway.json", e2e.CaddyConfig(adminAddr, storage, e2e.LogLevel("ERROR"), map[string]any{
		"apisix": e2e.ApisixApp(map[string]any{"stream_proxy": map[string]any{"tcp": []any{listen}}}),
	}))
	restarted := filepath.Join(dir, "restarted")
	p := e2e.Start(t, "disk-gateway", e2e.TmpfsCaddyCmd(caddyBin, cfg, dir, storage, "512k", restarted), e2e.Options{Group: true})
	p.WaitReady(startWait, e2e.ApisixReady(adminAddr, e2e.AdminKey))
	a := admin{adminAddr}
	if code, resp, err := a.do("PUT", "/apisix/admin/stream_routes/disk", map[string]any{"server_port": ports[1],
		"upstream": map[string]any{"type": "roundrobin", "nodes": map[string]int{echo: 1}}}); err != nil || code >= 300 {
		t.Errorf("disk gateway: PUT route: %d %s %v", code, resp, err)
		return
	}
	big := func(gen string, i int) map[string]any {
		nodes := map[string]int{}
		for n := range 1500 {
			nodes[fmt.Sprintf("127.0.%d.%d:%d", n/250, n%250+1, 1000+i)] = 1
		}
		return map[string]any{"labels": map[string]string{"gen": gen}, "type": "roundrobin", "nodes": nodes}
	}
	led := newLedger()
	for n := 0; ctx.Err() == nil; n++ {
		i := n % 20
		path := fmt.Sprintf("upstreams/disk-%d", i)
		gen := fmt.Sprint(n)
		code, body, err := led.write(a, http.MethodPut, path, gen, big(gen, i))
		switch {
		case err == nil && code < 300:
			c.diskAcked.Add(1)
		case err == nil && diskFull(code, body):
			c.disk503.Add(1)
			conn, err := net.DialTimeout("tcp", listen, 2*time.Second)
			if err != nil || !echoOnce(conn) {
				c.diskTrafficFailed.Add(1)
			}
			if conn != nil {
				conn.Close()
			}
			// make room: two deletes (they need no space)
			for range 2 {
				n++
				_, _, _ = led.write(a, http.MethodDelete, fmt.Sprintf("upstreams/disk-%d", (i+1+n)%20), "", nil)
			}
		default:
			c.diskOther.Add(1)
		}
		time.Sleep(20 * time.Millisecond)
	}
	check := func(when string) { led.check(t, a, &c.diskVerified, &c.diskLost, "disk gateway "+when) }
	// room for the restart (Caddy writes to its storage as it starts)
	for i := range 2 {
		_, _, _ = led.write(a, http.MethodDelete, fmt.Sprintf("upstreams/disk-%d", i), "", nil)
	}
	check("at the end")
	if code, _, err := a.do(http.MethodPost, "/stop", nil); err != nil || code != http.StatusOK {
		t.Errorf("disk gateway: POST /stop: %d %v", code, err)
		return
	}
	p.WaitReady(startWait, func() error {
		if _, err := os.Stat(restarted); err != nil {
			return fmt.Errorf("the first run has not ended: %v", err)
		}
		return e2e.ApisixReady(adminAddr, e2e.AdminKey)()
	})
	check("after a restart on the full tmpfs")
	p.Stop()
}

// etcdLoop runs the cluster part until ctx ends: a 3-member etcd cluster
// (Debian's etcd-server) and a gateway in etcd mode with one stream
// route. While a client opens short connections through the route and a
// writer PUTs and DELETEs upstreams through the gateway's Admin API, one
// member after the other is killed with SIGKILL and restarted on its
// data a moment later. At the end, with every member back, each
// acknowledged write must be what the gateway serves.
func etcdLoop(ctx context.Context, t *testing.T, c *counters, rngSeed uint64, echo string) {
	ec := e2e.StartEtcd(t, 3, "http")
	dir := t.TempDir()
	ports := e2e.FreePorts(t, 2)
	adminAddr, listen := e2e.HostPort("127.0.0.1", ports[0]), e2e.HostPort("127.0.0.1", ports[1])
	p := startGateway(t, dir, "etcd-gateway", adminAddr, e2e.CaddyConfig(adminAddr, filepath.Join(dir, "storage"), e2e.LogLevel("ERROR"), map[string]any{
		"apisix": e2e.ApisixApp(map[string]any{
			"stream_proxy": map[string]any{"tcp": []any{listen}},
			"etcd":         map[string]any{"host": ec.Hosts(), "prefix": "/apisix", "timeout": "3s"},
		}),
	}), 0)
	a := admin{adminAddr}
	// the cluster has just formed: its first write may meet a leader
	// election (503, etcd timed out), which a client retries
	route := map[string]any{"server_port": ports[1], "upstream": map[string]any{"type": "roundrobin", "nodes": map[string]int{echo: 1}}}
	for deadline := time.Now().Add(30 * time.Second); ; {
		code, resp, err := a.do("PUT", "/apisix/admin/stream_routes/etcd", route)
		if err == nil && code < 300 {
			break
		}
		if err != nil || code != http.StatusServiceUnavailable || time.Now().After(deadline) || ctx.Err() != nil {
			t.Errorf("etcd gateway: PUT route: %d %s %v", code, resp, err)
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	led := newLedger()
	done := make(chan struct{}, 2)
	go func() { // traffic
		defer func() { done <- struct{}{} }()
		for ctx.Err() == nil {
			conn, err := net.DialTimeout("tcp", listen, 2*time.Second)
			if err == nil && echoOnce(conn) {
				c.etcdConnOK.Add(1)
			} else {
				c.etcdConnFailed.Add(1)
			}
			if conn != nil {
				conn.Close()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	go func() { // writes
		defer func() { done <- struct{}{} }()
		for n := 0; ctx.Err() == nil; n++ {
			path := fmt.Sprintf("upstreams/etcd-%d", n%10)
			gen, method := fmt.Sprint(n), http.MethodPut
			var body any = map[string]any{"labels": map[string]string{"gen": gen}, "type": "roundrobin", "nodes": map[string]int{echo: 1}}
			if n%4 == 3 {
				method, body, gen = http.MethodDelete, nil, ""
			}
			code, _, err := led.write(a, method, path, gen, body)
			switch {
			case err == nil && code < 300:
				c.etcdAcked.Add(1)
			case err == nil && code == http.StatusNotFound:
			default:
				c.etcdWriteFailed.Add(1) // etcd unavailable for a moment: 5xx, not acknowledged
			}
			time.Sleep(30 * time.Millisecond)
		}
	}()
	for i := int(rngSeed % 3); ctx.Err() == nil; i = (i + 1) % 3 {
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
		if ctx.Err() != nil {
			break
		}
		ec.Kill(i)
		c.etcdKills.Add(1)
		time.Sleep(time.Second)
		ec.Restart(i, false)
	}
	<-done
	<-done
	ec.WaitHealthy()
	// the gateway applies the watch events of the last writes
	time.Sleep(2 * time.Second)
	led.check(t, a, &c.etcdVerified, &c.etcdLost, "etcd gateway")
	p.Stop()
}

// removeAllBut deletes every object of the gateway a except the paths in
// keep (kind/id), stream routes first (they may use the others), so that
// the end of the soak is measured with the objects of its start.
func removeAllBut(t *testing.T, a admin, keep map[string]bool) {
	for _, kind := range []string{"stream_routes", "services", "upstreams", "ssls", "plugin_metadata"} {
		code, body, err := a.do(http.MethodGet, "/apisix/admin/"+kind, nil)
		if err != nil || code != http.StatusOK {
			continue
		}
		var list struct {
			List []struct {
				Value struct {
					ID any `json:"id"`
				} `json:"value"`
			} `json:"list"`
		}
		if err := json.Unmarshal(body, &list); err != nil {
			t.Errorf("listing %s: %v", kind, err)
			continue
		}
		for _, o := range list.List {
			path := fmt.Sprintf("%s/%v", kind, o.Value.ID)
			if keep[path] {
				continue
			}
			if id := fmt.Sprint(o.Value.ID); id == "." || id == ".." {
				// a valid id by APISIX's pattern (^[a-zA-Z0-9-_.]+$) that a
				// fuzzed body can create, but that no URL can name: HTTP
				// servers clean /x/.. to /, as nginx does for APISIX
				t.Logf("left %s: its id cannot be named in a URL", path)
				continue
			}
			if code, resp, err := a.do(http.MethodDelete, "/apisix/admin/"+path, nil); err != nil || code != http.StatusOK {
				t.Errorf("deleting %s at the end: %d %s %v", path, code, resp, err)
			}
		}
	}
}
