package model

import (
	"encoding/json"
	"math"
	"testing"
)

func TestLuaQuote(t *testing.T) {
	cases := []struct{ in, want string }{
		{`abc`, `"abc"`},
		{`a"b`, `"a\"b"`},
		{`a\b`, `"a\\b"`},
		{"a\nb", "\"a\\\nb\""},
		{"a\rb", `"a\13b"`},
		{"a\r1", `"a\0131"`},
		{"\x00", `"\0"`},
		{"\x7f", `"\127"`},
		{"é", `"é"`},
	}
	for _, c := range cases {
		if got := luaQuote(c.in); got != c.want {
			t.Errorf("luaQuote(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestLuaNum(t *testing.T) {
	cases := []struct {
		in   float64
		want string
	}{
		{70000, "70000"}, {0, "0"}, {-1, "-1"}, {0.5, "0.5"}, {1e20, "1e+20"},
		{123456789012345678, "1.2345678901235e+17"}, {1e-5, "1e-05"},
		{math.Inf(1), "inf"}, {math.Inf(-1), "-inf"}, {math.NaN(), "nan"},
	}
	for _, c := range cases {
		if got := luaNum(c.in); got != c.want {
			t.Errorf("luaNum(%v) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestValidCIDROrIP(t *testing.T) {
	cases := []struct {
		in   string
		want bool
	}{
		{"127.0.0.1", true}, {"10.0.0.0/8", true}, {"1.2.3.4/32", true}, {"1.2.3.4/33", false},
		{"::1", true}, {"[::1]", true}, {"fe80::/10", true}, {"::1/128", true}, {"::1/129", false},
		{":/8", false}, {"01.2.3.4", false}, {"fe80::1%eth0", false}, {"1.2.3.4/x", false},
		{"1.2.3.4/ 8", true}, {"::ffff:1.2.3.4", true}, {"", false}, {"host", false},
	}
	for _, c := range cases {
		if got := validCIDROrIP(c.in); got != c.want {
			t.Errorf("validCIDROrIP(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestAddrPort(t *testing.T) {
	cases := []struct {
		in   string
		port float64
		ok   bool
	}{
		{"127.0.0.1:80", 80, true}, {"127.0.0.1", 0, false}, {"a:", 0, false}, {"[::1]:443", 443, true},
		{"[::1]", 0, false}, {"[::1]x:1", 0, false}, {"h:abc", 0, false}, {"h:0x10", 16, true}, {"", 0, false},
	}
	for _, c := range cases {
		port, ok := addrPort(c.in)
		if ok != c.ok || port != c.port {
			t.Errorf("addrPort(%q) = %v,%v want %v,%v", c.in, port, ok, c.port, c.ok)
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
