package lua

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestCJSONErrors(t *testing.T) {
	tests := []struct{ in, msg string }{
		{"x", "Expected value but found invalid token at character 1"},
		{"{abc", "Expected object key string but found invalid token at character 2"},
		{`{"a" 1}`, "Expected colon but found T_NUMBER at character 6"},
		{`{"a":1 "b"}`, "Expected comma or object end but found T_STRING at character 8"},
		{`[1 2]`, "Expected comma or array end but found T_NUMBER at character 4"},
		{`{}x`, "Expected the end but found invalid token at character 3"},
		{`{} {}`, "Expected the end but found T_OBJ_BEGIN at character 4"},
		{`{"a":}`, "Expected value but found T_OBJ_END at character 6"},
		{`{"a":1,}`, "Expected object key string but found T_OBJ_END at character 8"},
		{`{"a`, "Expected object key string but found unexpected end of string at character 4"},
		{`"\x"`, "Expected value but found invalid escape code at character 2"},
		{`"\ud800"`, "Expected value but found invalid unicode escape code at character 2"},
		{`"\udc00"`, "Expected value but found invalid unicode escape code at character 2"},
		{`"\u12"`, "Expected value but found invalid unicode escape code at character 2"},
		{`01`, "Expected value but found invalid number at character 1"},
		{`[-]`, "Expected value but found invalid number at character 2"},
		{`{"a":tru}`, "Expected value but found invalid token at character 6"},
		{"   ", "Expected value but found T_END at character 4"},
		{"{\x00}", "Expected object key string but found T_END at character 2"},
		{"\f{}", "Expected value but found invalid token at character 1"},
		{strings.Repeat("[", 1001), "Found too many nested data structures (1001) at character 1001"},
	}
	for _, tc := range tests {
		if _, msg := checkJSON([]byte(tc.in)); msg != tc.msg {
			t.Errorf("%q:\n got %q\nwant %q", tc.in, msg, tc.msg)
		}
	}
}

func TestCJSONAccepts(t *testing.T) {
	tests := []struct {
		in   string
		want any
	}{
		{`{"a":[1,-2.5e3,true,false,null,"\u00e9\ud83d\ude00\/"]}`,
			map[string]any{"a": []any{json.Number("1"), json.Number("-2.5e3"), true, false, nil, "é😀/"}}},
		{"{\"a\":\"x\ty\"}", map[string]any{"a": "x\ty"}}, // cjson keeps raw control characters
		{"{}\x00trailing", map[string]any{}},              // cjson stops at NUL
		{" \n\"s\"\r\n", "s"},
		{strings.Repeat("[", 1000) + strings.Repeat("]", 1000), nil},
	}
	for _, tc := range tests {
		v, msg := Decode([]byte(tc.in))
		if msg != "" {
			t.Fatalf("%q: %s", tc.in, msg)
		}
		if tc.want != nil && !reflect.DeepEqual(v, tc.want) {
			t.Fatalf("%q: got %#v", tc.in, v)
		}
	}
}

func TestLuaConversions(t *testing.T) {
	strs := []struct {
		in   any
		want string
		ok   bool
	}{
		{"abc", "abc", true}, {json.Number("1"), "1", true}, {json.Number("1.0"), "1", true},
		{json.Number("1e2"), "100", true}, {json.Number("1.5"), "1.5", true},
		{json.Number("12345678901234567"), "1.2345678901235e+16", true},
		{true, "true", true}, {nil, "", false}, {map[string]any{}, "", false},
	}
	for _, tc := range strs {
		if got, ok := ToString(tc.in); got != tc.want || ok != tc.ok {
			t.Errorf("ToString(%#v) = %q %v", tc.in, got, ok)
		}
	}
	nums := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"10", 10, true}, {" 10 ", 10, true}, {"0x10", 16, true}, {"-1.5", -1.5, true}, {"1e2", 100, true},
		{"", 0, false}, {"abc", 0, false}, {"inf", 0, false}, {"nan", 0, false}, {"1_0", 0, false}, {"0x", 0, false},
	}
	for _, tc := range nums {
		if got, ok := ToNumber(tc.in); got != tc.want || ok != tc.ok {
			t.Errorf("ToNumber(%q) = %v %v", tc.in, got, ok)
		}
	}
}

// FuzzCJSONCheck: the scanner never panics, whatever it accepts
// encoding/json decodes, and strict JSON is accepted except where cjson
// itself refuses it (lone surrogates, nesting beyond 1000).
func FuzzCJSONCheck(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,2,{"b":null}]}`, `"\u00e9"`, `[1 2]`, "{\"a\":\"\t\"}", `-0.5e+3`, "{\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		clean, msg := checkJSON(data)
		if msg == "" {
			var v any
			if err := json.Unmarshal(clean, &v); err != nil {
				t.Fatalf("accepted %q but encoding/json says %v", data, err)
			}
			return
		}
		if json.Valid(data) && !strings.Contains(msg, "unicode escape") && !strings.Contains(msg, "nested") {
			t.Fatalf("rejected valid JSON %q: %s", data, msg)
		}
	})
}

func TestEncodeScalar(t *testing.T) {
	tests := []struct {
		in   any
		want string
	}{
		{nil, "null"}, {true, "true"}, {"a/b\"\t\x01", `"a\/b\"\t\u0001"`}, {json.Number("1.0"), "1"},
		{json.Number("1e20"), "1e+20"}, {[]any{json.Number("1")}, "[1]"},
	}
	for _, tc := range tests {
		if got := EncodeScalar(tc.in); got != tc.want {
			t.Errorf("EncodeScalar(%#v) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
