//go:build linux

package admine2e

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// TestAdminListenLimits: admin_listen closes a client that never finishes
// its headers (Caddy's admin server limits: 5 s for headers, 10 s for the
// request) and refuses headers over 64 KiB with 431; bodies over
// APISIX's 1.5 MiB answer APISIX's 400.
func TestAdminListenLimits(t *testing.T) {
	in, adminListen := recommendedInstance(t, nil)
	in.start()

	slow, err := net.DialTimeout("tcp", adminListen, answerWait)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if _, err := io.WriteString(slow, "GET /apisix/admin/upstreams HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	// well past the 5 s header timeout: the server must have closed it
	_ = slow.SetReadDeadline(time.Now().Add(30 * time.Second))
	if n, err := slow.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) && !isReset(err) {
		t.Errorf("a client stalled in its headers: read %d, %v; want the server to close it", n, err)
	}

	st, _, body, err := e2e.Admin{Addr: adminListen}.Do(http.MethodGet, "/apisix/admin/upstreams", adminKey, nil,
		map[string]string{"X-Big": strings.Repeat("a", 70<<10)})
	if err != nil {
		t.Fatal(err)
	}
	if st != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("70 KiB of headers: %s, want 431", answer(st, string(body)))
	}
	big := []byte(`{"desc":"` + strings.Repeat("a", 1572864) + `"}`)
	st, _, body, err = e2e.Admin{Addr: adminListen, KeepAlive: true}.Do(http.MethodPut, "/apisix/admin/upstreams/big", adminKey, big, e2e.JSONContent)
	if err != nil {
		t.Fatal(err)
	}
	if st != http.StatusBadRequest || !strings.Contains(string(body), "is greater than the maximum size 1572864 allowed") {
		t.Errorf("a 1.5 MiB body: %s, want APISIX's 400", answer(st, string(body)))
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// TestConcurrentWritesSameID: goroutines PUT and DELETE one id at the same
// time; every answer is a success, and afterwards GET, the list and a
// restart agree on one whole value (or on its absence) that one of the
// writers sent: the last write wins, nothing is half applied.
func TestConcurrentWritesSameID(t *testing.T) {
	in := newInstance(t, "", appsConfig(apisixApp(nil)))
	p := in.start()
	const writers, rounds = 16, 12
	var wg sync.WaitGroup
	errs := make(chan string, writers*rounds)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := e2e.Admin{Addr: in.admin, KeepAlive: true}
			for r := range rounds {
				method, body := http.MethodPut, []byte(fmt.Sprintf(`{"desc":"w%d-r%d","nodes":{"127.0.0.1:%d":1}}`, w, r, 1000+w))
				if (w+r)%3 == 0 {
					method, body = http.MethodDelete, nil
				}
				st, _, b, err := a.Do(method, "/apisix/admin/upstreams/same", adminKey, body, e2e.JSONContent)
				switch {
				case err != nil:
					errs <- err.Error()
				case method == http.MethodPut && st != 200 && st != 201:
					errs <- fmt.Sprintf("PUT: %d %s", st, b)
				case method == http.MethodDelete && st != 200 && st != 404:
					errs <- fmt.Sprintf("DELETE: %d %s", st, b)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	state := func(p *caddyProc) string {
		st, b, err := p.call(http.MethodGet, "/apisix/admin/upstreams/same", adminKey, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if st == http.StatusNotFound {
			if _, ok := listAll(t, p, "upstreams")["same"]; ok {
				t.Errorf("GET says 404, the list has it")
			}
			return "absent"
		}
		v := mustJSON(t, b)["value"].(map[string]any)
		desc, _ := v["desc"].(string)
		var w, r int
		if _, err := fmt.Sscanf(desc, "w%d-r%d", &w, &r); err != nil {
			t.Fatalf("value is not one that was written: %s", b)
		}
		nodes := fmt.Sprint(v["nodes"])
		if want := fmt.Sprintf("127.0.0.1:%d", 1000+w); !strings.Contains(nodes, want) {
			t.Errorf("half state: desc %s with nodes %s", desc, nodes)
		}
		if listAll(t, p, "upstreams")["same"].value == "" {
			t.Errorf("GET has it, the list does not")
		}
		return desc + " " + nodes
	}
	before := state(p)
	p.Stop()
	p = in.start()
	if after := state(p); after != before {
		t.Errorf("after a restart %q, before %q", after, before)
	}
	if tmps, _ := filepath.Glob(filepath.Join(in.storageRoot(), "apisix", "upstreams", ".tmp-*")); len(tmps) > 0 {
		t.Errorf("temporary files left: %v", tmps)
	}
}

// chattr sets or clears the immutable attribute of dir: even root cannot
// create, rename or delete files in an immutable directory, which makes it
// a read-only store directory for a test running as root.
func chattr(t *testing.T, flag, dir string) bool {
	t.Helper()
	out, err := exec.Command("chattr", flag, dir).CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("chattr %s %s: %v %s (needs e2fsprogs and a file system with the immutable attribute)", flag, dir, err, out)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return true
}

// TestReadOnlyStore: when the store's directories cannot be written, every
// write answers 503 with the storage error and changes nothing, the
// current routes keep serving, no temporary file is left, and once the
// directories are writable again a restart shows the state from before.
func TestReadOnlyStore(t *testing.T) {
	be := startBackend(t, "be", "127.0.0.1:0", false, nil)
	lport := freePort(t)
	listen := hostPort("127.0.0.1", lport)
	in := newInstance(t, "", appsConfig(apisixApp(map[string]any{"stream_proxy": map[string]any{"tcp": []any{listen}}})))
	p := in.start()
	p.must(t, "PUT", "/apisix/admin/upstreams/u1", `{"nodes":{"`+be.addr()+`":1}}`, 201)
	p.must(t, "PUT", "/apisix/admin/stream_routes/r1", fmt.Sprintf(`{"server_port":%d,"upstream_id":"u1"}`, lport), 201)
	before := p.must(t, "GET", "/apisix/admin/upstreams/u1", "", 200)

	dirs := []string{"", "upstreams", "stream_routes"}
	for _, d := range dirs {
		dir := filepath.Join(in.storageRoot(), "apisix", d)
		chattr(t, "+i", dir)
		t.Cleanup(func() { _ = exec.Command("chattr", "-i", dir).Run() })
	}
	for _, c := range []struct{ method, path, body string }{
		{"PUT", "/apisix/admin/upstreams/u2", `{"nodes":{"127.0.0.1:1":1}}`},
		{"PUT", "/apisix/admin/upstreams/u1", `{"nodes":{"127.0.0.1:1":1}}`},
		{"PATCH", "/apisix/admin/upstreams/u1", `{"desc":"x"}`},
		{"DELETE", "/apisix/admin/stream_routes/r1", ""},
		{"POST", "/apisix/admin/upstreams", `{"nodes":{"127.0.0.1:1":1}}`},
		{"PUT", "/apisix/admin/ssls/s1", `{}`}, // invalid: 400 before the store
	} {
		st, body, err := p.call(c.method, c.path, adminKey, c.body, e2e.JSONContent)
		if err != nil {
			t.Fatal(err)
		}
		want := http.StatusServiceUnavailable
		if strings.HasPrefix(c.path, "/apisix/admin/ssls") {
			want = http.StatusBadRequest
		}
		if st != want || (want == 503 && !strings.Contains(body, "operation not permitted")) {
			t.Errorf("%s %s on a read-only store: %s, want %d with the storage error", c.method, c.path, answer(st, body), want)
		}
	}
	if got := p.must(t, "GET", "/apisix/admin/upstreams/u1", "", 200); got != before {
		t.Errorf("u1 changed:\n%s\nwant\n%s", got, before)
	}
	p.must(t, "GET", "/apisix/admin/upstreams/u2", "", 404)
	p.must(t, "GET", "/apisix/admin/stream_routes/r1", "", 200)
	if res := probe(t, listen, nil, false); res.answer != "be" {
		t.Errorf("traffic on a read-only store: %v", res)
	}
	for _, d := range dirs {
		if tmps, _ := filepath.Glob(filepath.Join(in.storageRoot(), "apisix", d, ".tmp-*")); len(tmps) > 0 {
			t.Errorf("temporary files left: %v", tmps)
		}
	}
	p.Stop()
	for _, d := range dirs {
		chattr(t, "-i", filepath.Join(in.storageRoot(), "apisix", d))
	}
	p = in.start()
	if got := p.must(t, "GET", "/apisix/admin/upstreams/u1", "", 200); got != before {
		t.Errorf("after a restart u1 is\n%s\nwant\n%s", got, before)
	}
	p.must(t, "GET", "/apisix/admin/upstreams/u2", "", 404)
	if res := probe(t, listen, nil, false); res.answer != "be" {
		t.Errorf("traffic after the restart: %v", res)
	}
	p.must(t, "PUT", "/apisix/admin/upstreams/u2", `{"nodes":{"127.0.0.1:1":1}}`, 201)
}

// TestFullDiskStore runs Caddy in a mount namespace of its own whose
// storage root is a 256 KiB tmpfs, and fills it through the Admin API:
// writes that do not fit answer 503 with "no space left on device" and
// change nothing, the routes keep serving, a DELETE frees room for new
// writes, and a restart on the same tmpfs shows exactly the acknowledged
// writes.
func TestFullDiskStore(t *testing.T) {
	e2e.RequireTmpfs(t)
	be := startBackend(t, "be", "127.0.0.1:0", false, nil)
	lport := freePort(t)
	listen := hostPort("127.0.0.1", lport)
	in := newInstance(t, "", appsConfig(apisixApp(map[string]any{"stream_proxy": map[string]any{"tcp": []any{listen}}})))
	if err := os.MkdirAll(in.storageRoot(), 0o700); err != nil {
		t.Fatal(err)
	}
	// two Caddy runs one after the other on the same tmpfs: the first one
	// ends with POST /stop, the second is the restart; between them the
	// script creates the file restarted (outside the tmpfs)
	restarted := filepath.Join(in.dir, "restarted")
	cmd := e2e.TmpfsCaddyCmd(caddyBin, in.config, in.dir, in.storageRoot(), "256k", restarted)
	proc := e2e.Start(t, "caddy", cmd, e2e.Options{StopWait: stopWait, Group: true})
	p := &caddyProc{Proc: proc, inst: in}
	p.WaitReady(startWait, e2e.ApisixReady(in.admin, adminKey))

	p.must(t, "PUT", "/apisix/admin/upstreams/u1", `{"nodes":{"`+be.addr()+`":1}}`, 201)
	p.must(t, "PUT", "/apisix/admin/stream_routes/r1", fmt.Sprintf(`{"server_port":%d,"upstream_id":"u1"}`, lport), 201)
	// ~40 KiB upstreams until the tmpfs is full (bounded: 256 KiB / 40 KiB)
	big := func(i int) string {
		var nodes []string
		for n := range 1500 {
			nodes = append(nodes, fmt.Sprintf(`"127.0.%d.%d:%d":1`, n/250, n%250+1, 1000+i))
		}
		return `{"nodes":{` + strings.Join(nodes, ",") + `}}`
	}
	acked := map[string]bool{}
	full := ""
	for i := range 20 {
		id := fmt.Sprintf("big%d", i)
		st, body, err := p.call("PUT", "/apisix/admin/upstreams/"+id, adminKey, big(i), e2e.JSONContent)
		if err != nil {
			t.Fatal(err)
		}
		if st == http.StatusCreated {
			acked[id] = true
			continue
		}
		if st != http.StatusServiceUnavailable || !strings.Contains(body, "no space left on device") {
			t.Fatalf("PUT %s on a full disk: %s, want 503 with the storage error", id, answer(st, body))
		}
		full = id
		break
	}
	if full == "" {
		t.Fatalf("the tmpfs never filled up after %d writes", len(acked))
	}
	t.Logf("the 256 KiB tmpfs was full after %d large writes", len(acked))
	p.must(t, "GET", "/apisix/admin/upstreams/"+full, "", 404)
	if res := probe(t, listen, nil, false); res.answer != "be" {
		t.Errorf("traffic on a full disk: %v", res)
	}
	// an update that does not fit leaves the old value
	st, body, _ := p.call("PUT", "/apisix/admin/upstreams/u1", adminKey, big(99), e2e.JSONContent)
	if st != http.StatusServiceUnavailable {
		t.Errorf("update on a full disk: %s, want 503", answer(st, body))
	}
	if res := probe(t, listen, nil, false); res.answer != "be" {
		t.Errorf("traffic after a refused update: %v", res)
	}
	before := listAll(t, p, "upstreams")
	// a DELETE needs no room and makes some
	p.must(t, "DELETE", "/apisix/admin/upstreams/big0", "", 200)
	delete(acked, "big0")
	delete(before, "big0")
	p.must(t, "PUT", "/apisix/admin/upstreams/small", `{"nodes":{"127.0.0.1:1":1}}`, 201)
	before = listAll(t, p, "upstreams")

	// restart on the same tmpfs
	if st, body, err := p.call("POST", "/stop", "", "", nil); err != nil || st != 200 {
		t.Fatalf("POST /stop: %v %s", err, answer(st, body))
	}
	p.WaitReady(startWait, func() error {
		if _, err := os.Stat(restarted); err != nil {
			return fmt.Errorf("the first run has not ended: %v", err)
		}
		return e2e.ApisixReady(in.admin, adminKey)()
	})
	after := listAll(t, p, "upstreams")
	if len(after) != len(before) {
		t.Errorf("%d upstreams after the restart, %d before", len(after), len(before))
	}
	for id, b := range before {
		if a, ok := after[id]; !ok || a.value != b.value {
			t.Errorf("upstream %s after the restart: %v, before %v", id, ok, b.value == a.value)
		}
	}
	if _, ok := after[full]; ok {
		t.Errorf("the refused write %s came back", full)
	}
	if res := probe(t, listen, nil, false); res.answer != "be" {
		t.Errorf("traffic after the restart: %v", res)
	}
}
