package adminapi

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/caddy-apisix/stream/model"
	// the stream plugins' units
	_ "github.com/caddy-apisix/stream/plugin"
)

func TestPluginsList(t *testing.T) {
	e := newEnv(t, streamCfg())
	var names []string
	if err := json.Unmarshal([]byte(e.must(200, "GET", "/apisix/admin/plugins/list?subsystem=stream", "").body), &names); err != nil {
		t.Fatal(err)
	}
	if len(names) != len(model.KnownStreamPlugins) {
		t.Fatalf("names %v", names)
	}
	if !slices.IsSortedFunc(names, func(a, b string) int {
		return model.KnownStreamPlugins[b] - model.KnownStreamPlugins[a]
	}) {
		t.Fatalf("not by priority: %v", names)
	}
	if r := e.must(200, "GET", "/apisix/admin/plugins/list", ""); r.body != "[]\n" {
		t.Fatalf("http subsystem: %q", r.body)
	}
	if r := e.must(400, "GET", "/apisix/admin/plugins/list?subsystem=dns", ""); r.body != "invalid subsystem passed" {
		t.Fatalf("bad subsystem: %q", r.body)
	}
}

func TestPluginSchema(t *testing.T) {
	e := newEnv(t, streamCfg())
	// Every plugin the model knows has a schema document.
	for name := range model.KnownStreamPlugins {
		m := e.must(200, "GET", "/apisix/admin/plugins/"+name+"?subsystem=stream", "").json(t)
		if m["type"] != "object" {
			t.Fatalf("%s: %v", name, m)
		}
	}
	all := e.must(200, "GET", "/apisix/admin/plugins?subsystem=stream&all=true", "").json(t)
	if len(all) != len(model.KnownStreamPlugins) {
		t.Fatalf("all=true lists %d plugins, want %d: %v", len(all), len(model.KnownStreamPlugins), all)
	}
	for name, prio := range model.KnownStreamPlugins {
		info, _ := all[name].(map[string]any)
		schema, _ := info["schema"].(map[string]any)
		if schema["type"] != "object" || info["priority"] != float64(prio) {
			t.Fatalf("all=true: %s: %v", name, info)
		}
	}
	tests := []struct {
		path   string
		status int
		msg    string
	}{
		{"/apisix/admin/plugins/key-auth?subsystem=stream", 404, "plugin not found in subsystem stream"},
		{"/apisix/admin/plugins/limit-conn", 404, "plugin not found in subsystem http"},
		{"/apisix/admin/plugins/limit-conn?subsystem=dns", 400, "unsupported subsystem: dns"},
	}
	for _, tc := range tests {
		if got := e.must(tc.status, "GET", tc.path, "").json(t)["error_msg"]; got != tc.msg {
			t.Fatalf("%s: %v", tc.path, got)
		}
	}
}

func TestSchemaValidate(t *testing.T) {
	e := newEnv(t, &Config{StreamEnabled: false})
	tests := []struct {
		res, body string
		status    int
		msg       string
	}{
		{"stream_routes", `{"server_port":9100,"upstream_id":"not-stored"}`, 200, ""},
		{"stream_routes", `{"server_port":70000}`, 400,
			`property "server_port" validation failed: expected 70000 to be at most 65535`},
		{"upstreams", upstreamBody, 200, ""},
		{"upstreams", `{"nodes":{"127.0.0.1:80":1},"retries":-1}`, 400,
			`property "retries" validation failed: expected -1 to be at least 0`},
		{"ssls", `{"sni":"a.com"}`, 400, ""},
		{"routes", `{}`, 404, "Unsupported resource type: routes"},
		{"services", `{"upstream_id":"not-stored","hosts":["a.test"]}`, 200, ""},
		{"services", `{"hosts":"a.test"}`, 400,
			`property "hosts" validation failed: wrong type: expected array, got string`},
		{"plugin_metadata", `{}`, 404, "Unsupported resource type: plugin_metadata"},
		{"upstreams", `[]`, 400, "wrong type: expected object, got table"},
		{"upstreams", ``, 400, "wrong type: expected object, got nil"},
		{"upstreams", `null`, 400, "wrong type: expected object, got userdata"},
	}
	for _, tc := range tests {
		r := e.must(tc.status, "POST", "/apisix/admin/schema/validate/"+tc.res, tc.body)
		if tc.status == 200 {
			if r.body != "" {
				t.Fatalf("%s: body %q", tc.res, r.body)
			}
			continue
		}
		if got := r.json(t)["error_msg"]; tc.msg != "" && got != tc.msg {
			t.Fatalf("%s %s: %v", tc.res, tc.body, got)
		}
	}
	// Validation stores nothing.
	if l := e.must(200, "GET", "/apisix/admin/upstreams", "").json(t); l["total"] != 0.0 {
		t.Fatalf("list %v", l)
	}
}

// TestPublishedSchemasAreTheCheckedOnes: each plugin unit has one schema
// document, and it is both what /apisix/admin/plugins/<name> and
// plugins?all=true publish and what a route's plugin conf is checked
// against; its metadata_schema is what plugin_metadata/<name> checks.
func TestPublishedSchemasAreTheCheckedOnes(t *testing.T) {
	e := newEnv(t, streamCfg())
	decode := func(b []byte) any {
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	all := e.must(200, "GET", "/apisix/admin/plugins?subsystem=stream&all=true", "").json(t)
	for _, p := range model.StreamPluginList() {
		want := decode(p.Schema.JSON())
		if got := decode([]byte(e.must(200, "GET", "/apisix/admin/plugins/"+p.Name+"?subsystem=stream", "").body)); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: published %v, checked against %v", p.Name, got, want)
		}
		info, _ := all[p.Name].(map[string]any)
		if !reflect.DeepEqual(info["schema"], want) {
			t.Errorf("all=true %s: schema %v, checked against %v", p.Name, info["schema"], want)
		}
		if p.MetadataSchema == nil {
			if _, has := info["metadata_schema"]; has {
				t.Errorf("all=true %s: a metadata_schema the unit does not have", p.Name)
			}
			// the injected empty metadata_schema: any object
			e.must(201, "PUT", "/apisix/admin/plugin_metadata/"+p.Name, `{"anything":1}`)
		} else if !reflect.DeepEqual(info["metadata_schema"], decode(p.MetadataSchema.JSON())) {
			t.Errorf("all=true %s: metadata_schema %v", p.Name, info["metadata_schema"])
		}
		// the route check reaches the same unit's schema: a property of
		// the published document given a value of another type fails
		// with the plugin's name (or its first refusal, a missing required one)
		props, _ := want.(map[string]any)["properties"].(map[string]any)
		prop, bad := "", "true"
		for k, v := range props {
			if typ, _ := v.(map[string]any)["type"].(string); typ != "" {
				prop = k
				if typ == "boolean" {
					bad = `"x"`
				}
				break
			}
		}
		if prop == "" {
			t.Errorf("%s: no typed property in the published schema", p.Name)
			continue
		}
		msg := e.must(400, "POST", "/apisix/admin/schema/validate/stream_routes",
			`{"server_port":9100,"upstream_id":"u","plugins":{"`+p.Name+`":{"`+prop+`":`+bad+`}}}`).json(t)["error_msg"]
		if s, _ := msg.(string); !strings.Contains(s, "stream plugin ["+p.Name+"]") {
			t.Errorf("%s: route check says %v", p.Name, msg)
		}
	}
}
