package adminapi

import (
	"testing"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"
)

// TestPluginMetadata: /apisix/admin/plugin_metadata/<name> as
// apisix/admin/plugin_metadata.lua serves it through resource.lua.
func TestPluginMetadata(t *testing.T) {
	const pm = "/apisix/admin/plugin_metadata"
	logFormat := `{"log_format":{"client_ip":"$remote_addr","route":"$route_id"}}`
	tests := []struct {
		name, method, path, body string
		status                   int
		want                     string // exact body
	}{
		{"put", "PUT", pm + "/syslog", logFormat, 201,
			`{"key":"/apisix/plugin_metadata/syslog","value":{"id":"syslog","log_format":{"client_ip":"$remote_addr","route":"$route_id"}}}` + "\n"},
		{"put again", "PUT", pm + "/syslog", logFormat, 200,
			`{"key":"/apisix/plugin_metadata/syslog","value":{"id":"syslog","log_format":{"client_ip":"$remote_addr","route":"$route_id"}}}` + "\n"},
		{"get", "GET", pm + "/syslog", "", 200, ""},
		{"plugin without metadata_schema", "PUT", pm + "/ip-restriction", `{"anything":1}`, 201, ""},
		{"no body", "PUT", pm + "/syslog", "", 400, errJSON("missing configurations")},
		{"create_time", "PUT", pm + "/syslog", `{"create_time":1}`, 400, errJSON("the property is forbidden:  create_time")},
		{"no name", "PUT", pm, `{}`, 400, errJSON("missing plugin name")},
		{"unknown plugin", "PUT", pm + "/no-such-plugin", `{}`, 400, errJSON("invalid plugin name")},
		{"bad log_format", "PUT", pm + "/syslog", `{"log_format":"x"}`, 400,
			errJSON(`invalid configuration: property \"log_format\" validation failed: wrong type: expected object, got string`)},
		{"bad max_pending_entries", "PUT", pm + "/syslog", `{"max_pending_entries":0}`, 400,
			errJSON(`invalid configuration: property \"max_pending_entries\" validation failed: expected 0 to be at least 1`)},
		{"not an object", "PUT", pm + "/syslog", `"x"`, 400,
			errJSON("invalid configuration: wrong type: expected object, got string")},
		{"empty array is the empty table", "PUT", pm + "/limit-conn", `[]`, 201,
			`{"key":"/apisix/plugin_metadata/limit-conn","value":{"id":"limit-conn"}}` + "\n"},
		{"array", "PUT", pm + "/limit-conn", `[1]`, 400,
			errJSON("invalid configuration: wrong type: expected object, got table")},
		{"post", "POST", pm, `{}`, 405, errJSON("not supported `POST` method for plugin_metadata")},
		{"patch", "PATCH", pm + "/syslog", `{}`, 405, errJSON("not supported `PATCH` method for plugin_metadata")},
		{"get missing", "GET", pm + "/traffic-split", "", 404, `{"message":"Key not found"}` + "\n"},
		{"delete", "DELETE", pm + "/ip-restriction", "", 200,
			`{"deleted":"1","key":"/apisix/plugin_metadata/ip-restriction"}` + "\n"},
		{"delete missing", "DELETE", pm + "/ip-restriction", "", 404, `{"message":"Key not found"}` + "\n"},
		{"delete without name", "DELETE", pm, "", 400, errJSON("missing plugin_metadata id")},
	}
	e := newEnv(t, streamCfg())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, tc.path, tc.body)
			if r.status != tc.status || (tc.want != "" && r.body != tc.want) {
				t.Fatalf("%s %s: %d %q, want %d %q", tc.method, tc.path, r.status, r.body, tc.status, tc.want)
			}
		})
	}
	// the stored value is the body as sent: the schema default of
	// max_pending_entries is not written
	var md map[string]any
	e.reg.View(func(v registry.View) { md, _ = model.DecodeObject(v.Get(model.PluginMetadata, "syslog").Value) })
	if _, ok := md["max_pending_entries"]; ok || md["log_format"] == nil {
		t.Fatalf("stored metadata %v", md)
	}
	ids, total := listIDs(t, e.must(200, "GET", pm, ""))
	if total != 2 || ids[0] != "limit-conn" || ids[1] != "syslog" {
		t.Fatalf("list %v %d", ids, total)
	}
}
