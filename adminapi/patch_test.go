package adminapi

import (
	"encoding/json"
	"testing"

	"github.com/caddy-apisix/stream/internal/testcert"
	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"
)

func TestPatch(t *testing.T) {
	tests := []struct {
		name, path, body string
		status           int
		msg              string         // error_msg for failures
		check            map[string]any // fields of the new value (JSON-decoded)
	}{
		{name: "merge", path: "/1", body: `{"nodes":{"127.0.0.1:1996":2,"127.0.0.1:1995":null},"retries":2}`,
			status: 200, check: map[string]any{"nodes": map[string]any{"127.0.0.1:1996": 2.0}, "retries": 2.0,
				"create_time": float64(testNow), "update_time": float64(testNow + 5), "id": "1", "name": "u"}},
		{name: "null removes", path: "/1", body: `{"name":null}`, status: 200,
			check: map[string]any{"name": nil}},
		{name: "update_time from the body is kept", path: "/1", body: `{"update_time":42}`, status: 200,
			check: map[string]any{"update_time": 42.0}},
		{name: "sub-path replaces", path: "/1/nodes", body: `{"127.0.0.1:2000":5}`, status: 200,
			check: map[string]any{"nodes": map[string]any{"127.0.0.1:2000": 5.0}, "update_time": float64(testNow + 5)}},
		{name: "sub-path scalar", path: "/1/retries", body: `3`, status: 200, check: map[string]any{"retries": 3.0}},
		{name: "sub-path nested", path: "/1/labels/env", body: `"prod"`, status: 200,
			check: map[string]any{"labels": map[string]any{"env": "prod"}}},
		{name: "sub-path null removes", path: "/1/name", body: `null`, status: 200, check: map[string]any{"name": nil}},
		{name: "result validated in full", path: "/1/timeout/connect", body: `5`, status: 400,
			msg: `invalid configuration: property "timeout" validation failed: property "send" is required`},
		{name: "sub-path through a scalar", path: "/1/type/x", body: `1`, status: 400, msg: "invalid sub-path: /type"},
		{name: "schema", path: "/1", body: `{"retries":-1}`, status: 400,
			msg: `invalid configuration: property "retries" validation failed: expected -1 to be at least 0`},
		{name: "missing object", path: "/9", body: `{}`, status: 404},
		{name: "no id", path: "", body: `{}`, status: 400, msg: "missing upstream id"},
		{name: "no body", path: "/1", body: ``, status: 400, msg: "missing new configuration"},
		{name: "not an object", path: "/1", body: `5`, status: 400, msg: "invalid configuration"},
		{name: "id mismatch", path: "/1", body: `{"id":"2"}`, status: 400, msg: "wrong upstream id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, streamCfg())
			e.must(201, "PUT", "/apisix/admin/upstreams/1", `{"name":"u","nodes":{"127.0.0.1:1995":1}}`)
			before := e.must(200, "GET", "/apisix/admin/upstreams/1", "").json(t)["value"]
			e.clock.Add(5)
			r := e.must(tc.status, "PATCH", "/apisix/admin/upstreams"+tc.path, tc.body)
			if tc.status != 200 {
				if tc.msg != "" {
					if got := r.json(t)["error_msg"]; got != tc.msg {
						t.Fatalf("error_msg %q, want %q", got, tc.msg)
					}
				}
				after := e.must(200, "GET", "/apisix/admin/upstreams/1", "").json(t)["value"]
				if b1, b2 := mustJSON(t, before), mustJSON(t, after); b1 != b2 {
					t.Fatalf("failed PATCH changed the object:\n%s\n%s", b1, b2)
				}
				return
			}
			m := r.json(t)
			if m["key"] != "/apisix/upstreams/1" {
				t.Fatalf("key %v", m["key"])
			}
			v := m["value"].(map[string]any)
			for k, want := range tc.check {
				if got := v[k]; mustJSON(t, got) != mustJSON(t, want) {
					t.Fatalf("%s = %s, want %s (value %v)", k, mustJSON(t, got), mustJSON(t, want), v)
				}
			}
		})
	}
}

func TestPatchSSL(t *testing.T) {
	e := newEnv(t, streamCfg())
	cert, key := testcert.SelfSigned(t, "a.test.com")
	e.must(201, "PUT", "/apisix/admin/ssls/1", `{"cert":`+jsonStr(cert)+`,"key":`+jsonStr(key)+`,"sni":"a.test.com"}`)
	v := e.must(200, "PATCH", "/apisix/admin/ssls/1", `{"status":0}`).json(t)["value"].(map[string]any)
	if v["status"] != 0.0 || v["sni"] != "a.test.com" {
		t.Fatalf("value %v", v)
	}
	// A key of another certificate: the whole object is checked again and
	// the stored key stays.
	_, otherKey := testcert.SelfSigned(t, "b.test.com")
	e.must(400, "PATCH", "/apisix/admin/ssls/1/key", jsonStr(otherKey))
	e.reg.View(func(v registry.View) {
		obj, err := model.DecodeObject(v.Get(model.SSLs, "1").Value)
		if err != nil || obj["key"] != key {
			t.Fatal("failed PATCH replaced the key")
		}
	})
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
