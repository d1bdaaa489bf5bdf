//go:build linux

package admine2e

import (
	"fmt"
	"testing"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// serviceRig is a Caddy process with n stream_proxy listeners; route i
// (1-based) matches listener i by server_port.
type serviceRig struct {
	p      *caddyProc
	in     *instance
	ports  []int
	listen []string
}

func newServiceRig(t *testing.T, n int, extra map[string]any) *serviceRig {
	t.Helper()
	rig := &serviceRig{}
	var tcp []any
	for range n {
		port := freePort(t)
		rig.ports = append(rig.ports, port)
		rig.listen = append(rig.listen, hostPort("127.0.0.1", port))
		tcp = append(tcp, hostPort("127.0.0.1", port))
	}
	fields := map[string]any{"stream_proxy": map[string]any{"tcp": tcp}}
	for k, v := range extra {
		fields[k] = v
	}
	rig.in = newInstance(t, "", appsConfig(apisixApp(fields)))
	rig.p = rig.in.start()
	return rig
}

// route is a stream route body on listener i plus the given fields (a
// JSON object's members).
func (r *serviceRig) route(i int, fields string) string {
	if fields != "" {
		fields = "," + fields
	}
	return fmt.Sprintf(`{"server_port":%d%s}`, r.ports[i-1], fields)
}

// nodes is an upstream "nodes" object for one backend.
func nodes(b *backend) string { return `{"` + b.addr() + `":1}` }

// TestServicesCarryTraffic: stream routes under services reach the
// upstream of APISIX's merge (apisix/init.lua stream_preread_phase): the
// service's inline upstream, the service's upstream_id, the route's inline
// upstream before the service's, and the route's upstream_id ignoring the
// service and its plugins (an ip-restriction that would close the
// session).
func TestServicesCarryTraffic(t *testing.T) {
	a := startBackend(t, "A", "127.0.0.1:0", false, nil)
	b := startBackend(t, "B", "127.0.0.1:0", false, nil)
	c := startBackend(t, "C", "127.0.0.1:0", false, nil)
	rig := newServiceRig(t, 7, nil)
	p := rig.p
	p.must(t, "PUT", "/apisix/admin/upstreams/ub", `{"nodes":`+nodes(b)+`}`, 201)
	p.must(t, "PUT", "/apisix/admin/services/inline", `{"upstream":{"nodes":`+nodes(a)+`}}`, 201)
	p.must(t, "PUT", "/apisix/admin/services/byid", `{"upstream_id":"ub"}`, 201)
	// only 10.255.255.1 may pass: every test client is refused
	p.must(t, "PUT", "/apisix/admin/services/guarded",
		`{"upstream":{"nodes":`+nodes(a)+`},"plugins":{"ip-restriction":{"whitelist":["10.255.255.1"]}}}`, 201)

	tests := []struct {
		name, route string
		want        string // "" means closed without a byte routed
	}{
		{"service inline upstream", rig.route(1, `"service_id":"inline"`), "A"},
		{"service upstream_id", rig.route(2, `"service_id":"byid"`), "B"},
		{"route inline upstream beats the service's", rig.route(3, `"service_id":"inline","upstream":{"nodes":`+nodes(c)+`}`), "C"},
		{"service plugins apply", rig.route(4, `"service_id":"guarded"`), ""},
		{"route upstream_id ignores the service and its plugins", rig.route(5, `"service_id":"guarded","upstream_id":"ub"`), "B"},
		{"route plugin beats the service's", rig.route(6,
			`"service_id":"guarded","plugins":{"ip-restriction":{"whitelist":["127.0.0.0/8"]}}`), "A"},
		// a stream route's inline upstream is only schema-checked
		// (apisix/admin/stream_routes.lua): chash without key is stored
		// and hashes remote_addr
		{"inline chash without key", rig.route(7, `"upstream":{"type":"chash","nodes":`+nodes(c)+`}`), "C"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p.must(t, "PUT", fmt.Sprintf("/apisix/admin/stream_routes/%d", i+1), tc.route, 201)
			res := probe(t, rig.listen[i], nil, false)
			if res.answer != tc.want || (tc.want == "" && res.routed()) {
				t.Fatalf("%v, want %q", res, tc.want)
			}
		})
	}
	st, body, err := p.call("PUT", "/apisix/admin/stream_routes/x", adminKey, `{"service_id":"nope"}`, nil)
	if err != nil || st != 400 || body != `{"error_msg":"failed to fetch service info by service id [nope], response code: 404"}`+"\n" {
		t.Errorf("route with a missing service: %v %s", err, answer(st, body))
	}
	st, body, err = p.call("PUT", "/apisix/admin/upstreams/chash", adminKey, `{"type":"chash","nodes":`+nodes(c)+`}`, nil)
	if err != nil || st != 400 || body != `{"error_msg":"missing key"}`+"\n" {
		t.Errorf("/upstreams keeps check_upstream_conf: %v %s", err, answer(st, body))
	}
}

// TestServiceChangeLive: changing a service rebuilds the routes that use
// it at once, without a reload; an open connection keeps its upstream and
// the next one follows the change (PUT, then sub-path PATCH).
func TestServiceChangeLive(t *testing.T) {
	a := startBackend(t, "A", "127.0.0.1:0", false, nil)
	b := startBackend(t, "B", "127.0.0.1:0", false, nil)
	rig := newServiceRig(t, 1, nil)
	p := rig.p
	p.must(t, "PUT", "/apisix/admin/services/s", `{"upstream":{"nodes":`+nodes(a)+`}}`, 201)
	p.must(t, "PUT", "/apisix/admin/stream_routes/1", rig.route(1, `"service_id":"s"`), 201)
	c1 := dialKeep(t, rig.listen[0])
	if res := talk(t, c1, false); res.answer != "A" {
		t.Fatalf("first connection: %v, want A", res)
	}

	p.must(t, "PUT", "/apisix/admin/services/s", `{"upstream":{"nodes":`+nodes(b)+`}}`, 200)
	if res := talk(t, c1, false); res.answer != "A" {
		t.Errorf("open connection after the service change: %v, want still A", res)
	}
	c2 := dialKeep(t, rig.listen[0])
	if res := talk(t, c2, false); res.answer != "B" {
		t.Errorf("next connection after the service change: %v, want B", res)
	}

	p.must(t, "PATCH", "/apisix/admin/services/s/upstream/nodes", nodes(a), 200)
	if res := probe(t, rig.listen[0], nil, false); res.answer != "A" {
		t.Errorf("next connection after the PATCH: %v, want A", res)
	}
	if res := talk(t, c1, false); res.answer != "A" {
		t.Errorf("first connection after the PATCH: %v, want still A", res)
	}
	if res := talk(t, c2, false); res.answer != "B" {
		t.Errorf("second connection after the PATCH: %v, want still B", res)
	}

	// plugins added to the service apply to the next connection only
	p.must(t, "PATCH", "/apisix/admin/services/s", `{"plugins":{"ip-restriction":{"blacklist":["127.0.0.0/8"]}}}`, 200)
	if res := probe(t, rig.listen[0], nil, false); res.routed() {
		t.Errorf("after the service got a blacklist: %v, want closed", res)
	}
	if res := talk(t, c1, false); res.answer != "A" {
		t.Errorf("first connection after the blacklist: %v, want still A", res)
	}
	p.Stop()
	checkNoReload(t, p.Output())
}

// TestServiceDeleteRules: a service a stream route uses and an upstream a
// service uses are not deleted, with APISIX's texts, unless ?force=true;
// a route whose service was force-deleted closes its connections.
func TestServiceDeleteRules(t *testing.T) {
	a := startBackend(t, "A", "127.0.0.1:0", false, nil)
	rig := newServiceRig(t, 1, nil)
	p := rig.p
	p.must(t, "PUT", "/apisix/admin/upstreams/u", `{"nodes":`+nodes(a)+`}`, 201)
	p.must(t, "PUT", "/apisix/admin/services/s", `{"upstream_id":"u"}`, 201)
	p.must(t, "PUT", "/apisix/admin/stream_routes/r", rig.route(1, `"service_id":"s"`), 201)
	if res := probe(t, rig.listen[0], nil, false); res.answer != "A" {
		t.Fatalf("before: %v", res)
	}
	tests := []struct{ path, msg string }{
		{"/apisix/admin/services/s", "can not delete this service directly, stream_route [r] is still using it now"},
		{"/apisix/admin/upstreams/u", "can not delete this upstream, service [s] is still using it now"},
		{"/apisix/admin/services/s?force=yes", "can not delete this service directly, stream_route [r] is still using it now"},
	}
	for _, tc := range tests {
		st, body, err := p.call("DELETE", tc.path, adminKey, "", nil)
		if err != nil || st != 400 || body != `{"error_msg":"`+tc.msg+`"}`+"\n" {
			t.Errorf("DELETE %s: %v %s", tc.path, err, answer(st, body))
		}
	}
	if res := probe(t, rig.listen[0], nil, false); res.answer != "A" {
		t.Fatalf("after the refused deletes: %v", res)
	}
	p.must(t, "DELETE", "/apisix/admin/services/s?force=true", "", 200)
	if res := probe(t, rig.listen[0], nil, false); res.routed() {
		t.Errorf("route of a deleted service: %v, want closed", res)
	}
	p.must(t, "GET", "/apisix/admin/stream_routes/r", "", 200)
	p.must(t, "DELETE", "/apisix/admin/upstreams/u", "", 200) // no service uses it now
}

// TestServicesPersist: services and plugin_metadata survive a restart with
// their indexes, and the routes using the service carry traffic again.
// A static service from the Caddy config serves too and is read-only.
func TestServicesPersist(t *testing.T) {
	a := startBackend(t, "A", "127.0.0.1:0", false, nil)
	b := startBackend(t, "B", "127.0.0.1:0", false, nil)
	rig := newServiceRig(t, 2, nil)
	p := rig.p
	p.must(t, "PUT", "/apisix/admin/services/s", `{"name":"svc","upstream":{"nodes":`+nodes(a)+`}}`, 201)
	p.must(t, "PUT", "/apisix/admin/stream_routes/r", rig.route(1, `"service_id":"s"`), 201)
	p.must(t, "PUT", "/apisix/admin/plugin_metadata/syslog", `{"log_format":{"client":"$remote_addr"}}`, 201)
	kinds := []string{"services", "plugin_metadata", "stream_routes"}
	before := map[string]map[string]storedItem{}
	for _, k := range kinds {
		before[k] = listAll(t, p, k)
	}
	p.Stop()

	// the same storage, now with a static service and a route under it
	full := e2e.CaddyConfig(rig.in.admin, rig.in.storageRoot(), e2e.LogLevel("INFO"), map[string]any{
		"apisix": apisixApp(map[string]any{
			"stream_proxy":  map[string]any{"tcp": []any{rig.listen[0], rig.listen[1]}},
			"services":      []any{map[string]any{"id": "static-s", "upstream": map[string]any{"nodes": map[string]any{b.addr(): 1}}}},
			"stream_routes": []any{map[string]any{"id": "static-r", "server_port": rig.ports[1], "service_id": "static-s"}},
		}),
	})
	rig.in.config = e2e.WriteJSON(t, rig.in.dir, "caddy-static.json", full)
	p2 := rig.in.start()
	for _, k := range kinds {
		after := listAll(t, p2, k)
		for id, was := range before[k] {
			if after[id] != was {
				t.Errorf("%s/%s after the restart: %+v, before %+v", k, id, after[id], was)
			}
		}
	}
	if res := probe(t, rig.listen[0], nil, false); res.answer != "A" {
		t.Errorf("stored route after the restart: %v, want A", res)
	}
	if res := probe(t, rig.listen[1], nil, false); res.answer != "B" {
		t.Errorf("static route under the static service: %v, want B", res)
	}
	st, body, err := p2.call("PUT", "/apisix/admin/services/static-s", adminKey, `{}`, nil)
	if err != nil || st != 400 ||
		body != `{"error_msg":"service [static-s] is defined in the Caddy config and is read-only; change it there"}`+"\n" {
		t.Errorf("write to the static service: %v %s", err, answer(st, body))
	}
}

// TestPluginMetadataAPI: /apisix/admin/plugin_metadata/<name> over HTTP
// on the real process, with APISIX's shapes, statuses and texts
// (apisix/admin/plugin_metadata.lua).
func TestPluginMetadataAPI(t *testing.T) {
	rig := newServiceRig(t, 1, nil)
	const pm = "/apisix/admin/plugin_metadata"
	stored := `{"key":"/apisix/plugin_metadata/syslog","value":{"id":"syslog","log_format":{"client_ip":"$remote_addr","host":"$host"}}}` + "\n"
	tests := []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"PUT", pm + "/syslog", `{"log_format":{"host":"$host","client_ip":"$remote_addr"}}`, 201, stored},
		{"PUT", pm + "/syslog", `{"log_format":{"host":"$host","client_ip":"$remote_addr"}}`, 200, stored},
		{"PUT", pm + "/no-such-plugin", `{}`, 400, `{"error_msg":"invalid plugin name"}` + "\n"},
		{"PUT", pm + "/syslog", `{"log_format":1}`, 400,
			`{"error_msg":"invalid configuration: property \"log_format\" validation failed: wrong type: expected object, got number"}` + "\n"},
		{"POST", pm, `{}`, 405, "{\"error_msg\":\"not supported `POST` method for plugin_metadata\"}\n"},
		{"DELETE", pm + "/syslog", "", 200, `{"deleted":"1","key":"/apisix/plugin_metadata/syslog"}` + "\n"},
		{"GET", pm + "/syslog", "", 404, `{"message":"Key not found"}` + "\n"},
	}
	for _, tc := range tests {
		st, body, err := rig.p.call(tc.method, tc.path, adminKey, tc.body, nil)
		if err != nil || st != tc.status || body != tc.want {
			t.Errorf("%s %s: %v %s, want %d %q", tc.method, tc.path, err, answer(st, body), tc.status, tc.want)
		}
	}
}
