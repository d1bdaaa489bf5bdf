//go:build linux

package clustere2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// held is a connection through a gateway that stays open across a test.
type held struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

func (g *gateway) hold() *held {
	g.t.Helper()
	c, err := net.DialTimeout("tcp", g.stream, 2*time.Second)
	if err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(func() { c.Close() })
	h := &held{t: g.t, c: c, r: bufio.NewReader(c)}
	h.check("first")
	return h
}

// check sends a line and expects the backend's echo of it.
func (h *held) check(msg string) {
	h.t.Helper()
	_ = h.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(h.c, msg+"\n"); err != nil {
		h.t.Fatalf("held connection: write %q: %v", msg, err)
	}
	line, err := h.r.ReadString('\n')
	if err != nil || !strings.HasSuffix(strings.TrimSpace(line), " "+msg) {
		h.t.Fatalf("held connection: %q, %v (want the echo of %q)", line, err, msg)
	}
}

// TestMemberOutage: a 3-member cluster. One member killed: no interruption
// (connections, new connections, writes). A data plane whose only etcd
// member is down misses writes; the others compact past them; when its
// member returns it finds its revision compacted and reloads in full,
// without dropping its open connection. All members stopped: traffic
// continues on the last snapshot, writes answer 503 with the etcd error,
// the node view says disconnected; members back: writes work again and
// the data plane catches up without a restart.
func TestMemberOutage(t *testing.T) {
	ec := e2e.StartEtcd(t, 3, "http")
	b1, b2 := backend(t, "b1"), backend(t, "b2")
	a := startGateway(t, "A", etcdConf(ec.Hosts()[:2], nil), nil)
	// B talks to member 2 only, so stopping it cuts B off
	b := startGateway(t, "B", etcdConf(ec.Hosts()[2:], nil), map[string]any{"role": "data_plane"})
	a.must(201, "PUT", "/apisix/admin/upstreams/u1", upstreamBody(b1))
	a.must(201, "PUT", "/apisix/admin/upstreams/u2", upstreamBody(b2))
	a.must(201, "PUT", "/apisix/admin/stream_routes/r1", `{"upstream_id":"u1"}`)
	b.answers("b1 hi")
	hb, ha := b.hold(), a.hold()

	// member 2 (B's) down: B keeps serving; A writes through 0 and 1
	ec.Stop(2)
	if got := b.ask(); got != "b1 hi" {
		t.Fatalf("B with its etcd member down: %q", got)
	}
	hb.check("m2-down")
	a.must(200, "PUT", "/apisix/admin/stream_routes/r1", `{"upstream_id":"u2"}`)
	a.answers("b2 hi")
	for i := range 5 {
		a.must(200, "PUT", "/apisix/admin/upstreams/u1", upstreamBody(b1)+fmt.Sprintf(`%.0s`, fmt.Sprint(i)))
	}
	// compact past what B has seen
	cli := ec.Client(func(c *clientConfig) { c.Endpoints = ec.Hosts()[:2] })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	resp, err := cli.Get(ctx, "/apisix/gen_id")
	if err == nil {
		_, err = cli.Compact(ctx, resp.Header.Revision)
	}
	cancel()
	if err != nil {
		t.Fatalf("compact: %v", err)
	}
	if got := b.ask(); got != "b1 hi" {
		t.Fatalf("B, cut off, must serve its last snapshot: %q", got)
	}
	ec.Restart(2, false)
	b.answers("b2 hi") // reloaded in full after the compaction
	hb.check("after-compaction")
	if !strings.Contains(b.proc.Output(), "etcd compacted past the watched revision") {
		t.Fatal("B did not reload for the compaction")
	}
	ha.check("after-compaction")

	// every member down
	for i := range 3 {
		ec.Stop(i)
	}
	a.answers("b2 hi")
	b.answers("b2 hi")
	hb.check("all-down")
	eventually(t, "A's view: disconnected", func() (bool, string) {
		e := a.clusterView()["etcd"].(map[string]any)
		return e["connected"] == false, fmt.Sprint(e)
	})
	code, body := a.do("PUT", "/apisix/admin/stream_routes/r1", `{"upstream_id":"u1"}`)
	if code != 503 || body["error_msg"] == nil || body["error_msg"] == "" {
		t.Fatalf("write with etcd down = %d %v, want 503 with the etcd error", code, body)
	}
	a.answers("b2 hi") // nothing etcd did not commit is published
	metrics := a.metrics()
	if !strings.Contains(metrics, "apisix_etcd_reachable 0") {
		t.Fatalf("metrics while etcd is down:\n%s", grep(metrics, "apisix_etcd"))
	}

	// back
	for i := range 3 {
		ec.Restart(i, false)
	}
	eventually(t, "A writes again", func() (bool, string) {
		code, body := a.do("PUT", "/apisix/admin/stream_routes/r1", `{"upstream_id":"u1"}`)
		return code == 200, fmt.Sprint(code, body)
	})
	b.answers("b1 hi")
	a.answers("b1 hi")
	hb.check("recovered")
	ha.check("recovered")
	metrics = b.metrics()
	if !strings.Contains(metrics, "apisix_etcd_reachable 1") || !strings.Contains(metrics, `apisix_etcd_modify_indexes{key="stream_routes"}`) {
		t.Fatalf("metrics after recovery:\n%s", grep(metrics, "apisix_etcd"))
	}
}

// TestWipedRestart: etcd restarted with its data wiped (a smaller
// revision): the node reloads in full, drops what the new etcd does not
// hold, serves what it holds, and keeps its open connection.
func TestWipedRestart(t *testing.T) {
	ec := e2e.StartEtcd(t, 1, "http")
	b1, b2 := backend(t, "b1"), backend(t, "b2")
	a := startGateway(t, "A", etcdConf(ec.Hosts(), nil), nil)
	b := startGateway(t, "B", etcdConf(ec.Hosts(), nil), map[string]any{"role": "data_plane"})
	a.must(201, "PUT", "/apisix/admin/upstreams/u1", upstreamBody(b1))
	a.must(201, "PUT", "/apisix/admin/stream_routes/r1", `{"upstream_id":"u1"}`)
	for i := range 10 { // move the revision well past the new etcd's
		a.must(200, "PUT", "/apisix/admin/upstreams/u1", upstreamBody(b1)+fmt.Sprintf(`%.0s`, fmt.Sprint(i)))
	}
	b.answers("b1 hi")
	h := b.hold()

	ec.Stop(0)
	ec.Restart(0, true)
	ec.WaitHealthy()
	// the new etcd holds another route only
	put(t, ec, "/apisix/upstreams/u2", upstreamBody(b2))
	put(t, ec, "/apisix/stream_routes/r2", `{"upstream_id":"u2"}`)
	b.answers("b2 hi")
	eventually(t, "r1 dropped", func() (bool, string) {
		code, _ := b.do("GET", "/apisix/admin/stream_routes/r1", "")
		return code == 404, fmt.Sprint(code)
	})
	h.check("after-wipe")
	if e := b.clusterView()["etcd"].(map[string]any); e["reloads"].(float64) < 2 {
		t.Fatalf("no full reload after the wipe: %v", e)
	}
}
