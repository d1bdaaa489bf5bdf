package lua

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
		if got := Quote(c.in); got != c.want {
			t.Errorf("Quote(%q) = %s, want %s", c.in, got, c.want)
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
		if got := FormatNumber(c.in); got != c.want {
			t.Errorf("FormatNumber(%v) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestType(t *testing.T) {
	for _, c := range []struct {
		in   any
		want string
	}{
		{map[string]any{}, "table"}, {[]any{}, "table"}, {"s", "string"}, {json.Number("1"), "number"},
		{false, "boolean"}, {nil, "userdata"},
	} {
		if got := Type(c.in); got != c.want {
			t.Errorf("Type(%#v) = %s, want %s", c.in, got, c.want)
		}
	}
}
