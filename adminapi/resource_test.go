package adminapi

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/caddy-apisix/stream/internal/testcert"
	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"
)

// seedRoute is the first curl of seed/apisix-stream-proxy.md, body as sent.
const seedRoute = `
{
"remote_addr": "192.168.5.3",
"upstream": {
"nodes": {
"192.168.4.10:1995": 1
},
"type": "roundrobin"
}
}`

func TestPutGetUpdateDelete(t *testing.T) {
	e := newEnv(t, streamCfg())
	r := e.must(201, "PUT", "/apisix/admin/stream_routes/1", seedRoute)
	m := r.json(t)
	if m["key"] != "/apisix/stream_routes/1" {
		t.Fatalf("key %v", m["key"])
	}
	v := m["value"].(map[string]any)
	if v["id"] != "1" || v["remote_addr"] != "192.168.5.3" || v["create_time"] != float64(testNow) ||
		v["update_time"] != float64(testNow) {
		t.Fatalf("value %v", v)
	}
	if _, ok := m["createdIndex"]; ok {
		t.Fatal("PUT answer carries createdIndex")
	}
	g1 := e.must(200, "GET", "/apisix/admin/stream_routes/1", "").json(t)

	e.clock.Add(100)
	r = e.must(200, "PUT", "/apisix/admin/stream_routes/1", `{"server_port": 9100}`)
	v = r.json(t)["value"].(map[string]any)
	if v["create_time"] != float64(testNow) || v["update_time"] != float64(testNow+100) {
		t.Fatalf("timestamps after update: %v", v)
	}
	if _, ok := v["remote_addr"]; ok {
		t.Fatal("PUT merged instead of replacing")
	}
	g2 := e.must(200, "GET", "/apisix/admin/stream_routes/1", "").json(t)
	if g2["createdIndex"] != g1["createdIndex"] || g2["modifiedIndex"].(float64) <= g1["modifiedIndex"].(float64) {
		t.Fatalf("indexes: before %v, after %v", g1, g2)
	}

	r = e.must(200, "DELETE", "/apisix/admin/stream_routes/1", "")
	if r.body != `{"deleted":"1","key":"/apisix/stream_routes/1"}`+"\n" {
		t.Fatalf("delete body %q", r.body)
	}
	for _, method := range []string{"GET", "DELETE"} {
		r = e.must(404, method, "/apisix/admin/stream_routes/1", "")
		if r.body != `{"message":"Key not found"}`+"\n" {
			t.Fatalf("%s missing: %q", method, r.body)
		}
	}
	// Deleting and re-creating the same id works.
	e.must(201, "PUT", "/apisix/admin/stream_routes/1", seedRoute)
}

func TestPost(t *testing.T) {
	e := newEnv(t, streamCfg())
	ids := map[string]bool{}
	for range 3 {
		m := e.must(201, "POST", "/apisix/admin/upstreams", upstreamBody).json(t)
		v := m["value"].(map[string]any)
		id, _ := v["id"].(string)
		if !regexp.MustCompile(`^[0-9]{20}$`).MatchString(id) || m["key"] != "/apisix/upstreams/"+id || ids[id] {
			t.Fatalf("POST answer %v", m)
		}
		ids[id] = true
		e.must(200, "GET", "/apisix/admin/upstreams/"+id, "")
	}
}

func TestIDAndBodyChecks(t *testing.T) {
	tests := []struct {
		name, method, path, body string
		status                   int
		msg                      string // error_msg, or a prefix of it ending in "*"
	}{
		{"no body", "PUT", "/apisix/admin/stream_routes/1", "", 400, "missing configurations"},
		{"null body", "PUT", "/apisix/admin/stream_routes/1", "null", 400, "missing configurations"},
		{"array body", "PUT", "/apisix/admin/upstreams/1", "[1]", 400, "invalid configuration: wrong type: expected object, got table"},
		{"put without id", "PUT", "/apisix/admin/stream_routes", "{}", 400, "missing stream route id"},
		{"put trailing slash", "PUT", "/apisix/admin/upstreams/", upstreamBody, 400, "missing upstream id"},
		{"post with url id", "POST", "/apisix/admin/stream_routes/1", "{}", 400, "wrong stream route id, do not need it"},
		{"post with body id", "POST", "/apisix/admin/ssls", `{"id":"1"}`, 400, "wrong ssl id, do not need it"},
		{"id mismatch", "PUT", "/apisix/admin/stream_routes/1", `{"id":"2"}`, 400, "wrong stream route id"},
		{"id mismatch type", "PUT", "/apisix/admin/stream_routes/1", `{"id":true}`, 400, "wrong stream route id"},
		{"numeric id matches", "PUT", "/apisix/admin/stream_routes/1", `{"id":1}`, 201, ""},
		{"float id matches", "PUT", "/apisix/admin/stream_routes/1", `{"id":1.0}`, 201, ""},
		{"forbidden create_time", "PUT", "/apisix/admin/stream_routes/1", `{"create_time":1}`, 400,
			"the property is forbidden:  create_time"},
		{"forbidden null update_time", "POST", "/apisix/admin/upstreams", `{"update_time":null}`, 400,
			"the property is forbidden:  update_time"},
		{"forbidden in upstream", "PUT", "/apisix/admin/stream_routes/1", `{"upstream":{"update_time":1}}`, 400,
			"the property is forbidden:  upstream.update_time"},
		{"forbidden in plugins", "PUT", "/apisix/admin/stream_routes/1", `{"plugins":{"create_time":1}}`, 400,
			"the property is forbidden:  plugins.create_time"},
		{"id checked before times", "PUT", "/apisix/admin/stream_routes/1", `{"id":"2","create_time":1}`, 400,
			"wrong stream route id"},
		{"schema", "PUT", "/apisix/admin/stream_routes/1", `{"server_port":70000}`, 400,
			`invalid configuration: property "server_port" validation failed: expected 70000 to be at most 65535`},
		{"bad url id", "PUT", "/apisix/admin/stream_routes/*invalid", `{}`, 400, `invalid configuration: property "id" *`},
		{"upstream_id must exist", "PUT", "/apisix/admin/stream_routes/1", `{"upstream_id":"9"}`, 400,
			"failed to fetch upstream info by upstream id [9], response code: 404"},
		{"unknown plugin", "PUT", "/apisix/admin/stream_routes/1", `{"plugins":{"x-rewrite":{}}}`, 400,
			"unknown plugin [x-rewrite]"},
		{"delete without id", "DELETE", "/apisix/admin/upstreams", "", 400, "missing upstream id"},
		{"empty route is valid", "PUT", "/apisix/admin/stream_routes/1", `{}`, 201, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, streamCfg())
			r := e.must(tc.status, tc.method, tc.path, tc.body)
			if tc.msg == "" {
				return
			}
			got, _ := r.json(t)["error_msg"].(string)
			if p, ok := strings.CutSuffix(tc.msg, "*"); ok {
				if !strings.HasPrefix(got, p) {
					t.Fatalf("error_msg %q, want prefix %q", got, p)
				}
			} else if got != tc.msg {
				t.Fatalf("error_msg %q, want %q", got, tc.msg)
			}
		})
	}
}

func TestPutToCollectionKeepsBodyIDType(t *testing.T) {
	e := newEnv(t, streamCfg())
	m := e.must(201, "PUT", "/apisix/admin/upstreams", `{"id":7,"nodes":{"127.0.0.1:80":1}}`).json(t)
	if m["key"] != "/apisix/upstreams/7" || m["value"].(map[string]any)["id"] != float64(7) {
		t.Fatalf("answer %v", m)
	}
	// A route refers to it by either form.
	e.must(201, "PUT", "/apisix/admin/stream_routes/1", `{"upstream_id":7}`)
	e.must(201, "PUT", "/apisix/admin/stream_routes/2", `{"upstream_id":"7"}`)
}

func TestStaticObjectsAreReadOnly(t *testing.T) {
	e := newEnv(t, streamCfg())
	err := e.reg.SetStatic([]*registry.Object{
		{Kind: model.Upstreams, ID: "s1", Value: []byte(`{"id":"s1","nodes":{"127.0.0.1:80":1}}`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "upstream [s1] is defined in the Caddy config and is read-only; change it there"
	for _, c := range []struct{ method, body string }{
		{"PUT", upstreamBody}, {"PATCH", `{"retries":1}`}, {"PATCH", "2"}, {"DELETE", ""},
	} {
		path := "/apisix/admin/upstreams/s1"
		if c.body == "2" {
			path += "/retries"
		}
		r := e.must(400, c.method, path, c.body)
		if got := r.json(t)["error_msg"]; got != want {
			t.Fatalf("%s: %v", c.method, got)
		}
	}
	e.must(200, "GET", "/apisix/admin/upstreams/s1", "")
	if l := e.must(200, "GET", "/apisix/admin/upstreams", "").json(t); l["total"] != float64(1) {
		t.Fatalf("list %v", l)
	}
	// A stream route may use it.
	e.must(201, "PUT", "/apisix/admin/stream_routes/1", `{"upstream_id":"s1"}`)
}

func TestStorageFailureIs503(t *testing.T) {
	e := newEnv(t, streamCfg())
	e.must(201, "PUT", "/apisix/admin/upstreams/1", upstreamBody)
	e.store.fail.Store(true)
	tests := []struct{ method, path, body string }{
		{"PUT", "/apisix/admin/upstreams/2", upstreamBody},
		{"PUT", "/apisix/admin/upstreams/1", `{"nodes":{"127.0.0.1:81":1}}`},
		{"POST", "/apisix/admin/upstreams", upstreamBody},
		{"PATCH", "/apisix/admin/upstreams/1", `{"retries":2}`},
		{"DELETE", "/apisix/admin/upstreams/1", ""},
	}
	for _, tc := range tests {
		r := e.must(http.StatusServiceUnavailable, tc.method, tc.path, tc.body)
		if r.body != `{"error_msg":"storage failure: disk full"}`+"\n" {
			t.Fatalf("%s %s: %q", tc.method, tc.path, r.body)
		}
	}
	e.store.fail.Store(false)
	// Nothing changed.
	e.must(404, "GET", "/apisix/admin/upstreams/2", "")
	v := e.must(200, "GET", "/apisix/admin/upstreams/1", "").json(t)["value"].(map[string]any)
	if _, ok := v["nodes"].(map[string]any)["127.0.0.1:1995"]; !ok || v["retries"] != nil {
		t.Fatalf("upstream changed by failed writes: %v", v)
	}
	if l := e.must(200, "GET", "/apisix/admin/upstreams", "").json(t); l["total"] != float64(1) {
		t.Fatalf("list %v", l)
	}
}

func TestSecretsNeverReturned(t *testing.T) {
	e := newEnv(t, streamCfg())
	cert, key := testcert.SelfSigned(t, "test.com")
	ccert, ckey := testcert.SelfSigned(t, "client")
	ssl := `{"cert":` + jsonStr(cert) + `,"key":` + jsonStr(key) + `,"sni":"test.com"}`
	tlsUp := `{"nodes":{"127.0.0.1:80":1},"scheme":"tls","tls":{"client_cert":` + jsonStr(ccert) +
		`,"client_key":` + jsonStr(ckey) + `}}`
	answers := []resp{
		e.must(201, "PUT", "/apisix/admin/ssls/1", ssl),
		e.must(201, "PUT", "/apisix/admin/upstreams/1", tlsUp),
		e.must(201, "PUT", "/apisix/admin/stream_routes/1", `{"upstream":`+tlsUp+`}`),
		e.must(201, "PUT", "/apisix/admin/services/1", `{"upstream":`+tlsUp+`}`),
		e.must(200, "PATCH", "/apisix/admin/services/1", `{"desc":"d"}`),
		e.must(201, "POST", "/apisix/admin/ssls", ssl),
		e.must(200, "PATCH", "/apisix/admin/ssls/1", `{"key":`+jsonStr(key)+`}`),
		e.must(200, "PATCH", "/apisix/admin/upstreams/1/tls", `{"client_cert":`+jsonStr(ccert)+
			`,"client_key":`+jsonStr(ckey)+`}`),
	}
	for _, kind := range []string{"ssls", "upstreams", "stream_routes", "services"} {
		answers = append(answers,
			e.must(200, "GET", "/apisix/admin/"+kind+"/1", ""),
			e.must(200, "GET", "/apisix/admin/"+kind, ""),
			e.must(200, "GET", "/apisix/admin/"+kind+"?page=1&page_size=10", ""))
	}
	for i, a := range answers {
		if strings.Contains(a.body, "PRIVATE KEY") || strings.Contains(a.body, `"keys"`) ||
			strings.Contains(a.body, "client_key") || regexp.MustCompile(`"key":"[^/]`).MatchString(a.body) {
			t.Fatalf("answer %d leaks a key: %s", i, a.body)
		}
	}
	if !strings.Contains(answers[0].body, "BEGIN CERTIFICATE") {
		t.Fatalf("certificate missing from the answer: %s", answers[0].body)
	}
	// The registry keeps them: the data path needs them.
	e.reg.View(func(v registry.View) {
		if !strings.Contains(string(v.Get(model.SSLs, "1").Value), "PRIVATE KEY") {
			t.Fatal("stored SSL lost its key")
		}
	})
}
