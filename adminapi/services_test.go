package adminapi

import (
	"net/url"
	"regexp"
	"slices"
	"testing"
)

// errJSON is an APISIX error body as sent.
func errJSON(msg string) string { return `{"error_msg":"` + msg + `"}` + "\n" }

// TestServiceWrites: every write check of /apisix/admin/services in
// apisix/admin/services.lua's order, with APISIX's status and text.
func TestServiceWrites(t *testing.T) {
	const svc = "/apisix/admin/services"
	tests := []struct {
		name, method, path, body string
		status                   int
		want                     string // the exact body when not ""
	}{
		{"put", "PUT", svc + "/1", `{"upstream":` + upstreamBody + `}`, 201, ""},
		{"put with the id in the body", "PUT", svc, `{"id":"b1","upstream_id":"u1"}`, 201, ""},
		{"post", "POST", svc, `{"plugins":{"ip-restriction":{"whitelist":["127.0.0.1"]}}}`, 201, ""},
		{"empty service", "PUT", svc + "/e", `{}`, 201, ""},
		{"http fields accepted", "PUT", svc + "/h",
			`{"name":"n","desc":"d","labels":{"a":"b"},"hosts":["a.test"],"enable_websocket":true,"script":"return {} -- lua"}`, 201, ""},
		{"no body", "PUT", svc + "/1", ``, 400, errJSON("missing configurations")},
		{"no id", "PUT", svc, `{"upstream_id":"u1"}`, 400, errJSON("missing service id")},
		{"id mismatch", "PUT", svc + "/1", `{"id":"2"}`, 400, errJSON("wrong service id")},
		{"post with id", "POST", svc, `{"id":"2"}`, 400, errJSON("wrong service id, do not need it")},
		{"create_time", "PUT", svc + "/1", `{"create_time":1}`, 400, errJSON("the property is forbidden:  create_time")},
		{"unknown field", "PUT", svc + "/1", `{"uri":"/"}`, 400,
			errJSON("invalid configuration: additional properties forbidden, found uri")},
		{"bad id", "PUT", svc + "/*x", `{}`, 400,
			errJSON(`invalid configuration: property \"id\" validation failed: object matches none of the required`)},
		{"empty hosts", "PUT", svc + "/1", `{"hosts":[]}`, 400,
			errJSON(`invalid configuration: property \"hosts\" validation failed: expect array to have at least 1 items`)},
		// the inline upstream gets the full check_upstream_conf
		{"chash without key", "PUT", svc + "/1", `{"upstream":{"type":"chash","nodes":{"127.0.0.1:1":1}}}`, 400,
			errJSON("missing key")},
		{"upstream_id missing", "PUT", svc + "/1", `{"upstream_id":"nope"}`, 400,
			errJSON("failed to fetch upstream info by upstream id [nope], response code: 404")},
		{"unknown plugin", "PUT", svc + "/1", `{"plugins":{"proxy-rewrite":{}}}`, 400,
			errJSON("unknown plugin [proxy-rewrite]")},
		{"stream-only plugin", "PUT", svc + "/1", `{"plugins":{"mqtt-proxy":{"protocol_level":4}}}`, 400,
			errJSON("unknown plugin [mqtt-proxy]")},
		{"plugin conf not a table", "PUT", svc + "/1", `{"plugins":{"ip-restriction":1}}`, 400,
			errJSON("invalid plugin conf 1 for plugin [ip-restriction]")},
		{"bad plugin conf", "PUT", svc + "/1", `{"plugins":{"ip-restriction":{}}}`, 400,
			errJSON("failed to check the configuration of plugin ip-restriction err: value should match only one schema, but matches none")},
		{"bad plugin conf disabled", "PUT", svc + "/d", `{"plugins":{"ip-restriction":{"_meta":{"disable":true}}}}`, 201, ""},
		{"stream route service_id missing", "PUT", "/apisix/admin/stream_routes/r", `{"service_id":"nope"}`, 400,
			errJSON("failed to fetch service info by service id [nope], response code: 404")},
		{"stream route service_id", "PUT", "/apisix/admin/stream_routes/r", `{"service_id":"1"}`, 201, ""},
		{"stream route integer service_id", "PUT", "/apisix/admin/stream_routes/r", `{"service_id":1}`, 200, ""},
	}
	e := newEnv(t, streamCfg())
	e.must(201, "PUT", "/apisix/admin/upstreams/u1", upstreamBody)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, tc.path, tc.body)
			if r.status != tc.status || (tc.want != "" && r.body != tc.want) {
				t.Fatalf("%s %s: %d %q, want %d %q", tc.method, tc.path, r.status, r.body, tc.status, tc.want)
			}
		})
	}
}

// TestServiceLifecycle: the answers' shapes, timestamps carried over, PATCH
// merge and sub-path PATCH, list with filter=service_id, and delete.
func TestServiceLifecycle(t *testing.T) {
	e := newEnv(t, streamCfg())
	r := e.must(201, "PUT", "/apisix/admin/services/1", `{"name":"s","upstream":`+upstreamBody+`}`)
	m := r.json(t)
	v := m["value"].(map[string]any)
	if m["key"] != "/apisix/services/1" || v["id"] != "1" || v["create_time"] != float64(testNow) ||
		v["upstream"].(map[string]any)["scheme"] != "http" {
		t.Fatalf("PUT answer %s", r.body)
	}
	if _, ok := m["createdIndex"]; ok {
		t.Fatal("PUT answer carries createdIndex")
	}
	got := e.must(200, "GET", "/apisix/admin/services/1", "").json(t)
	if got["key"] != "/apisix/services/1" || got["createdIndex"] == nil || got["modifiedIndex"] == nil {
		t.Fatalf("GET %v", got)
	}

	e.clock.Add(10)
	v = e.must(200, "PATCH", "/apisix/admin/services/1", `{"desc":"d"}`).json(t)["value"].(map[string]any)
	if v["desc"] != "d" || v["name"] != "s" || v["create_time"] != float64(testNow) || v["update_time"] != float64(testNow+10) {
		t.Fatalf("PATCH merge %v", v)
	}
	v = e.must(200, "PATCH", "/apisix/admin/services/1/upstream/nodes", `{"127.0.0.1:2":1}`).json(t)["value"].(map[string]any)
	nodes := v["upstream"].(map[string]any)["nodes"].(map[string]any)
	if len(nodes) != 1 || nodes["127.0.0.1:2"] != float64(1) {
		t.Fatalf("sub-path PATCH %v", v)
	}
	r = e.must(400, "PATCH", "/apisix/admin/services/1/upstream/type", `"chash"`)
	if r.body != errJSON("missing key") {
		t.Fatalf("PATCH is checked as a PUT: %q", r.body)
	}
	e.must(404, "PATCH", "/apisix/admin/services/nope", `{"desc":"d"}`)

	e.must(201, "PUT", "/apisix/admin/services/2", `{}`)
	e.must(201, "PUT", "/apisix/admin/stream_routes/a", `{"service_id":"1"}`)
	e.must(201, "PUT", "/apisix/admin/stream_routes/b", `{"service_id":"2"}`)
	e.must(201, "PUT", "/apisix/admin/stream_routes/c", `{"service_id":1}`)
	for _, tc := range []struct {
		query string
		ids   []string
	}{
		{"", []string{"a", "b", "c"}},
		{"?filter=" + url.QueryEscape("service_id=1"), []string{"a"}}, // type-sensitive, as APISIX
		{"?filter=" + url.QueryEscape("service_id=2"), []string{"b"}},
	} {
		ids, total := listIDs(t, e.must(200, "GET", "/apisix/admin/stream_routes"+tc.query, ""))
		if !slices.Equal(ids, tc.ids) || total != len(tc.ids) {
			t.Errorf("stream_routes%s: %v (total %d), want %v", tc.query, ids, total, tc.ids)
		}
	}
	if ids, total := listIDs(t, e.must(200, "GET", "/apisix/admin/services", "")); !slices.Equal(ids, []string{"1", "2"}) || total != 2 {
		t.Errorf("services list %v %d", ids, total)
	}

	e.must(200, "DELETE", "/apisix/admin/stream_routes/b", "")
	r = e.must(200, "DELETE", "/apisix/admin/services/2", "")
	if r.body != `{"deleted":"1","key":"/apisix/services/2"}`+"\n" {
		t.Fatalf("DELETE %q", r.body)
	}
	if r := e.must(404, "GET", "/apisix/admin/services/2", ""); r.body != `{"message":"Key not found"}`+"\n" {
		t.Fatalf("GET after delete %q", r.body)
	}
	if r := e.must(400, "DELETE", "/apisix/admin/services", ""); r.body != errJSON("missing service id") {
		t.Fatalf("DELETE collection %q", r.body)
	}
	// POST ids are 20 digits
	id := e.must(201, "POST", "/apisix/admin/services", `{}`).json(t)["value"].(map[string]any)["id"].(string)
	if !regexp.MustCompile(`^\d{20}$`).MatchString(id) {
		t.Fatalf("POST id %q", id)
	}
}
