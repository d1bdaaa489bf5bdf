//go:build linux

package usere2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestWarningsOnWrite writes routes a user gets wrong and reads the
// answer's X-APISIX-Warning header and the node's WARN log line; the
// status and the stored object stay APISIX's.
func TestWarningsOnWrite(t *testing.T) {
	n := startNode(t, nil)
	up := fmt.Sprintf(`"upstream":{"nodes":{%q:1},"type":"roundrobin"}`, n.backend)
	steps := []struct {
		name, id, body string
		status         int
		want           string // the warning, "" for none
	}{
		{"catch-all", "1", `{` + up + `}`, http.StatusCreated, ""},
		{"shadowed by the catch-all", "2", fmt.Sprintf(`{"server_addr":"127.0.0.1","server_port":%d,%s}`, n.stream, up), http.StatusCreated,
			"stream route 2 is shadowed by stream route 1 on every connection it could match: it never matches"},
		{"no listener on the port", "3", `{"server_port":1,` + up + `}`, http.StatusCreated,
			"no stream_proxy listener is on server_port 1"},
		{"address not bound", "4", fmt.Sprintf(`{"server_addr":"127.0.0.9","server_port":%d,%s}`, n.stream, up), http.StatusCreated,
			fmt.Sprintf("server_addr 127.0.0.9/32 is not an address a listener binds (tcp/127.0.0.1:%d)", n.stream)},
		{"sni on a plain listener", "5", fmt.Sprintf(`{"sni":"a.test","server_port":%d,%s}`, n.stream, up), http.StatusCreated,
			"no listener it can reach terminates or passes through TLS"},
	}
	for _, s := range steps {
		hdr := n.must(s.status, http.MethodPut, "/apisix/admin/stream_routes/"+s.id, s.body)
		got := strings.Join(hdr.Values("X-APISIX-Warning"), " | ")
		if s.want == "" {
			if got != "" {
				t.Errorf("%s: warning %q, want none", s.name, got)
			}
			continue
		}
		if !strings.Contains(got, s.want) {
			t.Errorf("%s: warnings %q, want %q", s.name, got, s.want)
		}
		line := n.waitLog(`"level":"warn"`, s.want)
		if !strings.Contains(line, `"stream_route":"`+s.id+`"`) {
			t.Errorf("%s: log line lacks the route id: %s", s.name, line)
		}
	}
	// APISIX's behaviour stays: the shadowing route takes the connection
	if err := n.echo("hello"); err != nil {
		t.Fatal(err)
	}
	// narrowing route 1 leaves 2 reachable: no warning for it any more
	hdr := n.must(http.StatusOK, http.MethodPut, "/apisix/admin/stream_routes/1", `{"remote_addr":"10.0.0.1",`+up+`}`)
	if w := hdr.Values("X-APISIX-Warning"); len(w) != 0 {
		t.Errorf("narrowed route 1: warnings %q", w)
	}
	hdr = n.must(http.StatusOK, http.MethodPut, "/apisix/admin/stream_routes/2", fmt.Sprintf(`{"server_addr":"127.0.0.1","server_port":%d,%s}`, n.stream, up))
	if w := hdr.Values("X-APISIX-Warning"); len(w) != 0 {
		t.Errorf("route 2 after the change: warnings %q", w)
	}
}
