package model

import (
	"encoding/json"
	"testing"

	"github.com/caddy-apisix/stream/internal/lua"
)

func TestParseCIDROrIP(t *testing.T) {
	cases := []struct {
		in   string
		want string // the prefix, "" when refused
	}{
		{"127.0.0.1", "127.0.0.1/32"}, {"10.1.0.0/8", "10.0.0.0/8"}, {"1.2.3.4/32", "1.2.3.4/32"}, {"1.2.3.4/33", ""},
		{"::1", "::1/128"}, {"[::1]", "::1/128"}, {"fe80::/10", "fe80::/10"}, {"::1/128", "::1/128"}, {"::1/129", ""},
		{":/8", ""}, {"01.2.3.4", ""}, {"fe80::1%eth0", ""}, {"1.2.3.4/x", ""}, {"1.2.3.4/", ""},
		{"1.2.3.4/ 8", "1.0.0.0/8"}, {"::ffff:1.2.3.4", "::ffff:1.2.3.4/128"}, {"", ""}, {"host", ""},
		// the mask is read with tonumber, as validate_cidr_or_ip and
		// resty.ipmatcher both read it
		{"::1/064", "::/64"}, {"2001:db8::1/0x20", "2001:db8::/32"}, {`10.0.0.1/8\n`, ""}, {"10.0.0.1/8\n", "10.0.0.0/8"},
		{"1.2.3.4/8.5", ""}, {"1.2.3.4/-1", ""}, {"1.2.3.4/0", "0.0.0.0/0"},
	}
	for _, c := range cases {
		p, err := ParseCIDROrIP(c.in)
		got := ""
		if err == nil {
			got = p.String()
		}
		if got != c.want {
			t.Errorf("ParseCIDROrIP(%q) = %q (%v), want %q", c.in, got, err, c.want)
		}
	}
}

func TestParseNodeKey(t *testing.T) {
	cases := []struct {
		in, host string
		port     float64
		ok       bool
	}{
		{"127.0.0.1:80", "127.0.0.1", 80, true}, {"127.0.0.1", "127.0.0.1", 0, false}, {"a:", "a:", 0, false},
		{"[::1]:443", "[::1]", 443, true}, {"[::1]", "[::1]", 0, false}, {"[::1]x:1", "[::1]x:1", 0, false},
		{"h:abc", "h", 0, false}, {"h:0x10", "h", 16, true}, {"", "", 0, false}, {"h: 80 ", "h", 80, true},
		{"2001:db8::1", "2001:db8::1", 0, false}, {"2001:db8::99999", "2001:db8::99999", 0, false},
		{"a.b:c:99", "a.b:c", 99, true},
	}
	for _, c := range cases {
		host, port, ok := ParseNodeKey(c.in)
		if host != c.host || ok != c.ok || port != c.port {
			t.Errorf("ParseNodeKey(%q) = %q,%v,%v want %q,%v,%v", c.in, host, port, ok, c.host, c.port, c.ok)
		}
	}
}

// An object-form node key is read once: what the check accepts compiles
// to the node it names.
func TestNodeKeysCheckAndParse(t *testing.T) {
	cases := []struct {
		key  string
		node Node // Weight 1
		msg  string
	}{
		{"127.0.0.1:80", Node{Host: "127.0.0.1", Port: 80}, ""},
		{"[::1]:0x50", Node{Host: "::1", Port: 80}, ""},
		{"h:abc", Node{Host: "h"}, ""}, // kept, with no port
		{"fe80::1", Node{Host: "fe80::1"}, ""},
		{"h:70000", Node{}, "invalid port 70000"},
		{"h:0", Node{}, "invalid port 0"},
	}
	for _, c := range cases {
		body := `{"nodes":{` + lua.EncodeScalar(c.key) + `:1}}`
		obj, err := DecodeObject([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckUpstream(obj, Refs{}); c.msg != "" {
			if err == nil || err.Error() != c.msg {
				t.Errorf("%s: check = %v, want %q", c.key, err, c.msg)
			}
			continue
		} else if err != nil {
			t.Errorf("%s: check = %v", c.key, err)
			continue
		}
		up, err := ParseUpstream([]byte(body))
		if err != nil {
			t.Fatalf("%s: accepted but does not parse: %v", c.key, err)
		}
		if n := up.Nodes; len(n) != 1 || n[0].Host != c.node.Host || n[0].Port != c.node.Port || n[0].Weight != 1 {
			t.Errorf("%s: nodes %+v, want %+v", c.key, up.Nodes, c.node)
		}
	}
}

// TestEmptyTable checks the Lua view of {} and []: one empty table that
// passes both as an object and as an array.
func TestEmptyTable(t *testing.T) {
	arr := &schema{typ: "array", minItems: 1}
	if ok, msg := arr.validate(map[string]any{}); ok || msg != "expect array to have at least 1 items" {
		t.Fatalf("{} as array: %v %q", ok, msg)
	}
	obj := &schema{typ: "object", required: []string{"a"}}
	if ok, msg := obj.validate([]any{}); ok || msg != `property "a" is required` {
		t.Fatalf("[] as object: %v %q", ok, msg)
	}
	if ok, msg := obj.validate([]any{json.Number("1")}); ok || msg != "wrong type: expected object, got table" {
		t.Fatalf("[1] as object: %v %q", ok, msg)
	}
	multi := &schema{types: []string{"string", "integer"}}
	if ok, msg := multi.validate(true); ok || msg != "wrong type: expected one of string, integer, got boolean" {
		t.Fatalf("multi type: %v %q", ok, msg)
	}
	all := &schema{allOf: []*schema{{typ: "string"}}}
	if ok, msg := all.validate(json.Number("1")); ok || msg != "allOf 1 failed: wrong type: expected string, got number" {
		t.Fatalf("allOf: %v %q", ok, msg)
	}
	if ok, msg := all.validate(map[string]any{"a": 1, "b": 2}); ok || msg != "allOf 1 failed: wrong type: expected string, got table" {
		t.Fatalf("allOf object: %v %q", ok, msg)
	}
	max := &schema{typ: "object", maxProps: 1}
	if ok, msg := max.validate(map[string]any{"a": 1, "b": 2}); ok || msg != "expect object to have at most 1 properties" {
		t.Fatalf("maxProperties: %v %q", ok, msg)
	}
	empty := &schema{required: []string{}}
	if ok, msg := empty.validate(map[string]any{"a": 1}); ok || msg != "the input data should be an empty table" {
		t.Fatalf("required []: %v %q", ok, msg)
	}
}

func TestLuaEqual(t *testing.T) {
	cases := []struct {
		a, b any
		want bool
	}{
		{json.Number("1"), json.Number("1.0"), true},
		{json.Number("1"), "1", false},
		{map[string]any{}, []any{}, true},
		{map[string]any{"a": json.Number("1")}, map[string]any{"a": json.Number("1")}, true},
		{map[string]any{"a": json.Number("1")}, map[string]any{"b": json.Number("1")}, false},
		{[]any{"x", true}, []any{"x", true}, true},
		{[]any{"x"}, []any{"y"}, false},
		{nil, nil, true},
		{false, nil, false},
	}
	for _, c := range cases {
		if got := luaEqual(c.a, c.b); got != c.want {
			t.Errorf("luaEqual(%v, %v) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

func TestCheckPluginConf(t *testing.T) {
	wantErr(t, CheckPluginConf("nope", map[string]any{}), "unknown plugin [nope]")
	wantErr(t, CheckPluginConf("ip-restriction", map[string]any{}), "value should match only one schema, but matches none")
	wantErr(t, CheckPluginConf("limit-conn", map[string]any{"conn": json.Number("1"), "burst": json.Number("0"),
		"default_conn_delay": json.Number("1"), "key": "remote_addr"}), "")
	for name, prio := range KnownStreamPlugins {
		if prio <= 0 {
			t.Errorf("plugin %s has priority %d", name, prio)
		}
	}
}

// TestPCREDollar: ngx.re's "$" also matches before a final newline.
func TestPCREDollar(t *testing.T) {
	r := pat(`^\S+$`)
	for in, want := range map[string]bool{"abc": true, "abc\n": true, "abc\n\n": false, "a b": false, "": false} {
		if got := r.match(in); got != want {
			t.Errorf("match(%q) = %v, want %v", in, got, want)
		}
	}
	if esc := pat(`^\$(secret|env)://`); !esc.match("$env://X") || esc.match("env://X") {
		t.Error("escaped dollar must stay literal")
	}
	if cls := pat(`^[$]+$`); !cls.match("$$") || cls.match("x") {
		t.Error("dollar in a class must stay literal")
	}
}

// TestUniqueOrder follows unique_item_in_array: scalars by first repeat,
// then tables.
func TestUniqueOrder(t *testing.T) {
	n := func(s string) any { return json.Number(s) }
	cases := []struct {
		in   []any
		want string
	}{
		{[]any{n("1"), n("2"), n("2"), n("1")}, "expected unique items but items 2 and 3 are equal"},
		{[]any{map[string]any{"a": "b"}, n("1"), map[string]any{"a": "b"}, n("1")}, "expected unique items but items 2 and 4 are equal"},
		{[]any{[]any{"x"}, []any{"y"}, []any{"x"}}, "expected unique items but items 1 and 3 are equal"},
	}
	u := &schema{typ: "array", unique: true}
	for _, c := range cases {
		if ok, msg := u.validate(c.in); ok || msg != c.want {
			t.Errorf("%v: %v %q, want %q", c.in, ok, msg, c.want)
		}
	}
}
