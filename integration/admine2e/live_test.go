//go:build linux

package admine2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// TestLiveChangeWithoutReload: an established connection through route 1
// keeps working, to the same backend, while route 1 is changed and then
// deleted; each new connection follows the state of the moment; Caddy is
// the same process throughout and never loads a config again.
func TestLiveChangeWithoutReload(t *testing.T) {
	a := startBackend(t, "A", "127.0.0.1:0", false, nil)
	b := startBackend(t, "B", "127.0.0.1:0", false, nil)
	lport := freePort(t)
	listen := hostPort("127.0.0.1", lport)
	in := newInstance(t, "", appsConfig(apisixApp(map[string]any{
		"stream_proxy": map[string]any{"tcp": []any{listen}},
	})))
	p := in.start()
	startTime := procStart(t, p.PID())
	route := func(node string) string {
		return fmt.Sprintf(`{"server_addr":"127.0.0.1","server_port":%d,"upstream":{"nodes":{"%s":1},"type":"roundrobin"}}`, lport, node)
	}

	p.must(t, "PUT", "/apisix/admin/stream_routes/1", route(a.addr()), 201)
	c1 := dialKeep(t, listen)
	if res := talk(t, c1, false); res.answer != "A" {
		t.Fatalf("first connection: %v, want A", res)
	}

	p.must(t, "PUT", "/apisix/admin/stream_routes/1", route(b.addr()), 200)
	if res := talk(t, c1, false); res.answer != "A" {
		t.Errorf("established connection after the change: %v, want still A", res)
	}
	c2 := dialKeep(t, listen)
	if res := talk(t, c2, false); res.answer != "B" {
		t.Errorf("next connection after the change: %v, want B", res)
	}

	p.must(t, "DELETE", "/apisix/admin/stream_routes/1", "", 200)
	if res := talk(t, c1, false); res.answer != "A" {
		t.Errorf("first connection after the delete: %v, want still A", res)
	}
	if res := talk(t, c2, false); res.answer != "B" {
		t.Errorf("second connection after the delete: %v, want still B", res)
	}
	if res := probe(t, listen, nil, false); res.routed() {
		t.Errorf("next connection after the delete: %v, want not routed", res)
	}

	p.must(t, "PUT", "/apisix/admin/stream_routes/1", route(a.addr()), 201)
	if res := probe(t, listen, nil, false); res.answer != "A" {
		t.Errorf("next connection after re-creating the route: %v, want A", res)
	}
	if res := talk(t, c2, false); res.answer != "B" {
		t.Errorf("second connection after re-creating the route: %v, want still B", res)
	}

	if p.Exited() || procStart(t, p.PID()) != startTime {
		t.Fatalf("caddy pid %d is not the process that was started", p.PID())
	}
	p.Stop()
	checkNoReload(t, p.Output())
}

// dialKeep opens a connection for several exchanges; the test closes it
// at its end.
func dialKeep(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, answerWait)
	if err != nil {
		t.Fatalf("dialing %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// procStart is the process's start time in clock ticks since boot
// (/proc/PID/stat field 22): a PID reused by another process differs.
func procStart(t *testing.T, pid int) string {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("reading /proc/%d/stat: %v", pid, err)
	}
	s := string(raw)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	return fields[19]
}

// checkNoReload fails if Caddy's log shows a config load after the first:
// a second "serving initial configuration" or app start, a request to
// /load or /config, or any other message about loading.
func checkNoReload(t *testing.T, log string) {
	t.Helper()
	counts := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e struct {
			Msg string `json:"msg"`
			URI string `json:"uri"`
		}
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		counts[e.Msg]++
		if strings.HasPrefix(e.URI, "/load") || strings.HasPrefix(e.URI, "/config") {
			t.Errorf("config API request in the log: %s", sc.Text())
		}
		if strings.Contains(strings.ToLower(e.Msg), "load") && e.Msg != "autosaved config (load with --resume flag)" {
			t.Errorf("load message in the log: %s", sc.Text())
		}
	}
	for _, once := range []string{"serving initial configuration", "apisix stream proxy started"} {
		if counts[once] != 1 {
			t.Errorf("%q logged %d times, want once", once, counts[once])
		}
	}
	if counts["autosaved config (load with --resume flag)"] > 1 {
		t.Errorf("config autosaved %d times: the config was loaded again", counts["autosaved config (load with --resume flag)"])
	}
}

// TestReloadKeepsObjects: a config reload through Caddy's own /load (a new
// listener added) keeps every Admin API object and its indexes, serves the
// routes on the old and the new listener, and keeps established
// connections.
func TestReloadKeepsObjects(t *testing.T) {
	a := startBackend(t, "A", "127.0.0.1:0", false, nil)
	l1, l2 := hostPort("127.0.0.1", freePort(t)), hostPort("127.0.0.1", freePort(t))
	in := newInstance(t, "", appsConfig(apisixApp(map[string]any{
		"stream_proxy": map[string]any{"tcp": []any{l1}},
	})))
	p := in.start()
	p.must(t, "PUT", "/apisix/admin/upstreams/u1", `{"nodes":{"`+a.addr()+`":1}}`, 201)
	p.must(t, "PUT", "/apisix/admin/stream_routes/1", `{"upstream_id":"u1"}`, 201)
	p.must(t, "POST", "/apisix/admin/stream_routes", `{"server_port":1}`, 201)
	before := listAll(t, p, "stream_routes")
	c1 := dialKeep(t, l1)
	if res := talk(t, c1, false); res.answer != "A" {
		t.Fatalf("before the reload: %v", res)
	}

	raw, err := os.ReadFile(in.config)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["apps"].(map[string]any)["apisix"].(map[string]any)["stream_proxy"] = map[string]any{"tcp": []any{l1, l2}}
	body, _ := json.Marshal(cfg)
	st, resp, err := p.call("POST", "/load", "", string(body), map[string]string{"Content-Type": "application/json"})
	if err != nil || st != 200 {
		t.Fatalf("POST /load: %v %s", err, answer(st, resp))
	}
	// Caddy restarts its admin endpoint on every /load and stops the old
	// one in the background (caddy admin.go replaceLocalAdminServer): a
	// connection the old socket accepted in that instant is reset
	for deadline := time.Now().Add(3 * time.Second); ; {
		if _, _, err := p.call("GET", "/apisix/admin/stream_routes", adminKey, "", nil); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	after := listAll(t, p, "stream_routes")
	if len(after) != len(before) {
		t.Errorf("%d routes after the reload, %d before", len(after), len(before))
	}
	for id, b := range before {
		if a := after[id]; a != b {
			t.Errorf("route %s after the reload: %+v, before %+v", id, a, b)
		}
	}
	for _, l := range []string{l1, l2} {
		if res := probe(t, l, nil, false); res.answer != "A" {
			t.Errorf("%s after the reload: %v, want A", l, res)
		}
	}
	if res := talk(t, c1, false); res.answer != "A" {
		t.Errorf("established connection after the reload: %v, want still A", res)
	}
	p.must(t, "PUT", "/apisix/admin/stream_routes/2", `{"server_port":2}`, 201)
}
