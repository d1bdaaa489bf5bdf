//go:build linux

package standalonee2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestDashboardCalls replays the calls of APISIX's dashboard
// (apisix-dashboard src/apis/*.ts, src/config/constant.ts): the stream
// plugin catalogue, paginated lists, the service filter, and CRUD of a
// stream route, with the traffic that results.
func TestDashboardCalls(t *testing.T) {
	a := backend(t, "A")
	in := newInstance(t, nil)
	in.start()

	_, body := in.must(200, "GET", "/apisix/admin/plugins/list?subsystem=stream", "", nil)
	if !strings.Contains(body, `"ip-restriction"`) {
		t.Fatalf("plugins/list: %s", body)
	}
	_, body = in.must(200, "GET", "/apisix/admin/plugins?subsystem=stream&all=true", "", nil)
	var all map[string]struct {
		Schema   json.RawMessage `json:"schema"`
		Priority int             `json:"priority"`
	}
	if err := json.Unmarshal([]byte(body), &all); err != nil || all["limit-conn"].Priority != 1003 ||
		len(all["limit-conn"].Schema) == 0 {
		t.Fatalf("plugins?all=true: %v %s", err, body)
	}
	in.must(200, "GET", "/apisix/admin/plugins/limit-conn?subsystem=stream", "", nil)

	in.must(201, "PUT", "/apisix/admin/upstreams/1", `{"nodes":{"`+a+`":1},"type":"roundrobin"}`, nil)
	_, body = in.must(201, "POST", "/apisix/admin/stream_routes",
		`{"server_port":`+itoa(portOf(in.proxy))+`,"upstream_id":"1","desc":"from the dashboard"}`, nil)
	id := jsonOf(t, body)["value"].(map[string]any)["id"].(string)
	waitGreeter(t, in.proxy, "A")

	_, body = in.must(200, "GET", "/apisix/admin/stream_routes?page=1&page_size=10", "", nil)
	if m := jsonOf(t, body); m["total"] != 1.0 {
		t.Fatalf("paginated list: %s", body)
	}
	_, body = in.must(200, "GET", "/apisix/admin/stream_routes?page=1&page_size=10&filter=service_id%3Dnone", "", nil)
	if body != `{"list":[],"total":0}`+"\n" {
		t.Fatalf("service filter: %s", body)
	}
	_, body = in.must(200, "GET", "/apisix/admin/upstreams?page=1&page_size=500", "", nil)
	if m := jsonOf(t, body); m["total"] != 1.0 {
		t.Fatalf("upstreams: %s", body)
	}
	in.must(200, "GET", "/apisix/admin/stream_routes/"+id, "", nil)
	in.must(200, "DELETE", "/apisix/admin/stream_routes/"+id, "", nil)
	if _, err := greeter(in.proxy); err == nil {
		t.Fatal("proxied after the dashboard deleted the route")
	}
}
