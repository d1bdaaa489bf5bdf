//go:build linux

package integration

import (
	"strings"
	"testing"
)

// TestConfigErrors checks that caddy validate refuses bad configs with a
// message that names the entry, in APISIX's words where APISIX has them.
func TestConfigErrors(t *testing.T) {
	apisix := func(app map[string]any) map[string]any {
		return map[string]any{"apps": map[string]any{"apisix": app}}
	}
	tcp := func(entries ...any) map[string]any {
		return apisix(map[string]any{"stream_proxy": map[string]any{"tcp": entries}})
	}
	withLayer4 := func(l4listen string, sp map[string]any) map[string]any {
		return map[string]any{"apps": map[string]any{
			"layer4": map[string]any{"servers": map[string]any{"s": map[string]any{"listen": []string{l4listen}, "routes": []any{}}}},
			"apisix": map[string]any{"stream_proxy": sp},
		}}
	}
	tests := []struct {
		name string
		cfg  map[string]any
		want []string // substrings of the output, in order of importance
	}{
		{"port out of range", tcp(70000),
			[]string{"invalid stream_proxy.tcp entry: port out of range (1-65535): 70000"}},
		{"port out of range in a string", apisix(map[string]any{"stream_proxy": map[string]any{"udp": []any{"127.0.0.1:0"}}}),
			[]string{"invalid stream_proxy.udp entry: port out of range (1-65535): 0"}},
		{"malformed port", tcp("127.0.0.1:abc"),
			[]string{"invalid stream_proxy.tcp entry: invalid port format: 127.0.0.1:abc"}},
		{"unbracketed IPv6", tcp("::1:9100"),
			[]string{"invalid stream_proxy.tcp entry", "::1:9100", "bracketed"}},
		{"malformed IP", tcp("300.1.1.1:9100"),
			[]string{"invalid stream_proxy.tcp entry", "300.1.1.1:9100"}},
		{"reversed range", tcp("2005-2000"),
			[]string{"invalid stream_proxy.tcp entry: invalid port range (start > end): 2005-2000"}},
		{"wrong type", tcp(true),
			[]string{"invalid port value type: boolean"}},
		{"unknown option", tcp(map[string]any{"addr": 9100, "bogus": true}),
			[]string{`unknown field "bogus"`}},
		{"same address twice", tcp("127.0.0.1:9100", 9101, "127.0.0.1:9100"),
			[]string{"invalid stream_proxy.tcp entry", "127.0.0.1:9100 listed twice"}},
		{"same address twice through a range", tcp("127.0.0.1:9100-9102", "127.0.0.1:9101"),
			[]string{"invalid stream_proxy.tcp entry", "127.0.0.1:9101 listed twice"}},
		{"address of a layer4 server", withLayer4("127.0.0.1:9100", map[string]any{"tcp": []any{"127.0.0.1:9100"}}),
			[]string{"invalid stream_proxy.tcp entry", "127.0.0.1:9100", `already used by layer4 server "s"`}},
		{"bare port of a layer4 server", withLayer4("127.0.0.1:9100", map[string]any{"tcp": []any{9100}}),
			[]string{"invalid stream_proxy.tcp entry", `already used by layer4 server "s"`}},
		{"udp address of a layer4 server", withLayer4("udp/127.0.0.1:9200", map[string]any{"udp": []any{"127.0.0.1:9200"}}),
			[]string{"invalid stream_proxy.udp entry", "127.0.0.1:9200", `already used by layer4 server "s"`}},
		{"invalid static stream route", apisix(map[string]any{"stream_proxy": map[string]any{"tcp": []any{9100}},
			"stream_routes": []any{map[string]any{"id": "r1", "remote_addr": "not-an-ip"}}}),
			[]string{"stream_routes[0] (id r1)", `invalid configuration: property "remote_addr" validation failed`}},
		{"static stream route with an unknown field", apisix(map[string]any{"stream_proxy": map[string]any{"tcp": []any{9100}},
			"stream_routes": []any{map[string]any{"id": "r1", "hosts": []string{"x"}}}}),
			[]string{"stream_routes[0] (id r1)", "invalid configuration: additional properties forbidden, found hosts"}},
		{"static stream route with a missing upstream", apisix(map[string]any{"stream_proxy": map[string]any{"tcp": []any{9100}},
			"stream_routes": []any{map[string]any{"id": "r1", "upstream_id": "nope"}}}),
			[]string{"stream_routes[0] (id r1)", "failed to fetch upstream info by upstream id [nope], response code: 404"}},
		{"invalid static upstream", apisix(map[string]any{"stream_proxy": map[string]any{"tcp": []any{9100}},
			"upstreams": []any{map[string]any{"id": "u1", "nodes": map[string]int{"127.0.0.1:1": -1}}}}),
			[]string{"upstreams[0] (id u1)", `invalid configuration: property "nodes" validation failed`}},
		{"static chash upstream without key", apisix(map[string]any{"stream_proxy": map[string]any{"tcp": []any{9100}},
			"upstreams": []any{map[string]any{"id": "u1", "type": "chash", "nodes": map[string]int{"127.0.0.1:1": 1}}}}),
			[]string{"upstreams[0] (id u1)", "missing key"}},
		{"static service with a missing upstream", apisix(map[string]any{"stream_proxy": map[string]any{"tcp": []any{9100}},
			"services": []any{map[string]any{"id": "s1", "upstream_id": "nope"}}}),
			[]string{"services[0] (id s1)", "failed to fetch upstream info by upstream id [nope], response code: 404"}},
		{"static stream route with a missing service", apisix(map[string]any{"stream_proxy": map[string]any{"tcp": []any{9100}},
			"stream_routes": []any{map[string]any{"id": "r1", "service_id": "nope"}}}),
			[]string{"stream_routes[0] (id r1)", "failed to fetch service info by service id [nope], response code: 404"}},
		{"static object without id", apisix(map[string]any{"stream_proxy": map[string]any{"tcp": []any{9100}},
			"upstreams": []any{map[string]any{"nodes": map[string]int{"127.0.0.1:1": 1}}}}),
			[]string{"upstreams[0]", "missing upstream id"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeJSON(t, t.TempDir(), "bad.json", tc.cfg)
			out, err := runCaddy(t, "validate", "--config", path)
			if err == nil {
				t.Fatalf("caddy validate accepted the config; output:\n%s", out)
			}
			for _, w := range tc.want {
				if !containsLogged(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestConfigValid checks that the configs that must work do validate:
// the shipped examples, and listeners that overlap only legitimately.
func TestConfigValid(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"examples/caddy.json", []string{"--config", moduleRoot + "/examples/caddy.json"}},
		{"examples/Caddyfile", []string{"--config", moduleRoot + "/examples/Caddyfile", "--adapter", "caddyfile"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runCaddy(t, append([]string{"validate"}, tc.args...)...)
			if err != nil {
				t.Fatalf("caddy validate: %v\n%s", err, out)
			}
		})
	}
}

// TestRunRefusesBadConfig checks that caddy run exits with the message
// when the config is invalid, instead of serving half of it.
func TestRunRefusesBadConfig(t *testing.T) {
	cfg := map[string]any{
		"admin": map[string]any{"listen": hostPort("127.0.0.1", freePort(t))},
		"apps":  map[string]any{"apisix": map[string]any{"stream_proxy": map[string]any{"tcp": []any{70000}}}},
	}
	path := writeJSON(t, t.TempDir(), "bad.json", cfg)
	out, err := runCaddy(t, "run", "--config", path)
	if err == nil {
		t.Fatalf("caddy run exited 0 with an invalid config:\n%s", out)
	}
	if !strings.Contains(out, "invalid stream_proxy.tcp entry: port out of range (1-65535): 70000") {
		t.Fatalf("caddy run output lacks the reason:\n%s", out)
	}
}
