//go:build linux

package pluginse2e

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestPluginsAdmin: mqtt-proxy and syslog in the Admin API as APISIX
// shows them: the stream plugin list in priority order, their schemas,
// and bad confs refused with APISIX's texts.
func TestPluginsAdmin(t *testing.T) {
	g := startGateway(t, 1)
	st, body := g.do(t, "GET", "/apisix/admin/plugins/list?subsystem=stream", "")
	var names []string
	if err := json.Unmarshal([]byte(body), &names); st != http.StatusOK || err != nil {
		t.Fatalf("plugins/list: %d %s", st, body)
	}
	pos := map[string]int{}
	for i, n := range names {
		pos[n] = i
	}
	// priorities: limit-conn 1003 > mqtt-proxy 1000 > syslog 401
	if _, ok := pos["mqtt-proxy"]; !ok || pos["limit-conn"] > pos["mqtt-proxy"] || pos["mqtt-proxy"] > pos["syslog"] {
		t.Errorf("plugins/list %v: want limit-conn, mqtt-proxy, syslog in that order", names)
	}

	for name, wantRequired := range map[string]string{"mqtt-proxy": `["protocol_level"]`, "syslog": `["host","port"]`} {
		st, body := g.do(t, "GET", "/apisix/admin/plugins/"+name+"?subsystem=stream", "")
		var schema struct {
			Type     string          `json:"type"`
			Required json.RawMessage `json:"required"`
		}
		if err := json.Unmarshal([]byte(body), &schema); st != http.StatusOK || err != nil || schema.Type != "object" || string(schema.Required) != wantRequired {
			t.Errorf("schema of %s: %d %s", name, st, body)
		}
	}

	for _, tt := range []struct{ plugins, msg string }{
		{`{"mqtt-proxy":{}}`, `failed to check the configuration of stream plugin [mqtt-proxy]: property "protocol_level" is required`},
		{`{"mqtt-proxy":{"protocol_level":"4"}}`, `failed to check the configuration of stream plugin [mqtt-proxy]: property "protocol_level" validation failed: wrong type: expected integer, got string`},
		{`{"syslog":{"host":"127.0.0.1"}}`, `failed to check the configuration of stream plugin [syslog]: property "port" is required`},
		{`{"syslog":{"host":"127.0.0.1","port":514,"sock_type":"unix"}}`, `failed to check the configuration of stream plugin [syslog]: property "sock_type" validation failed: matches none of the enum values`},
	} {
		st, body := g.do(t, "PUT", "/apisix/admin/stream_routes/bad", `{"plugins":`+tt.plugins+`,"upstream":{"nodes":{"127.0.0.1:1883":1}}}`)
		var e struct {
			ErrorMsg string `json:"error_msg"`
		}
		if err := json.Unmarshal([]byte(body), &e); st != http.StatusBadRequest || err != nil || e.ErrorMsg != tt.msg {
			t.Errorf("PUT with %s: %d %s\nwant 400 %q", tt.plugins, st, body, tt.msg)
		}
	}
	// a disabled conf is not checked
	g.must(t, "PUT", "/apisix/admin/stream_routes/off", `{"plugins":{"mqtt-proxy":{"_meta":{"disable":true}}},"upstream":{"nodes":{"127.0.0.1:1883":1}}}`)
}
