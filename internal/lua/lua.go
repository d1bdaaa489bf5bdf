// Package lua reproduces the parts of Lua (LuaJIT) and lua-cjson whose
// behaviour APISIX's answers show: tonumber, tostring, type(), "%q", and
// cjson's decoder errors and scalar encoding. Admin API checks, the
// jsonschema engine (model) and the standalone files all use it, so that a
// value is read the same way wherever it is read.
//
// Values are what encoding/json produces with UseNumber: map[string]any,
// []any, string, json.Number, bool and nil (JSON null, which cjson decodes
// to the cjson.null light userdata).
package lua

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ToNumber is Lua's tonumber on a string: decimal or "0x" hex, surrounding
// spaces allowed, no "inf"/"nan" words, no "_" separators.
func ToNumber(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	body := s
	neg := false
	if body[0] == '-' || body[0] == '+' {
		neg = body[0] == '-'
		body = body[1:]
	}
	if strings.HasPrefix(body, "0x") || strings.HasPrefix(body, "0X") {
		n, err := strconv.ParseUint(body[2:], 16, 64)
		if err != nil {
			return 0, false
		}
		f := float64(n)
		if neg {
			f = -f
		}
		return f, true
	}
	for _, c := range body {
		// ParseFloat also takes "inf", "nan", "1_000" and hex floats.
		if !('0' <= c && c <= '9') && c != '.' && c != 'e' && c != 'E' && c != '+' && c != '-' {
			return 0, false
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, false
	}
	return f, true
}

// Number converts a decoded JSON number to the double Lua holds (a number
// beyond the double range is ±inf, as cjson decodes it).
func Number(v any) (float64, bool) {
	switch n := v.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil && !math.IsInf(f, 0) {
			return 0, false
		}
		return f, true
	case float64:
		return n, true
	case int:
		return float64(n), true
	}
	return 0, false
}

// FormatNumber is Lua's tostring of a number (LuaJIT: "%.14g", so 1.0 is
// "1"; "inf", "-inf", "nan").
func FormatNumber(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	return strconv.FormatFloat(f, 'g', 14, 64)
}

// ToString is Lua's tostring for the JSON scalars an id can be: APISIX
// compares ids as tostring(conf.id) ~= tostring(id). A number too large
// for a double keeps its JSON text. Tables and null have no usable string
// form (ok=false).
func ToString(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil || math.IsInf(f, 0) {
			return string(v), true
		}
		return FormatNumber(f), true
	case bool:
		return strconv.FormatBool(v), true
	}
	return "", false
}

// Type is Lua's type() of a decoded JSON value, as APISIX's texts name
// types: "userdata" for JSON null (cjson.null). A value that is absent
// altogether (Lua nil, such as a request with no body) is "nil", which
// callers that know it is absent write themselves.
func Type(v any) string {
	switch v.(type) {
	case map[string]any, []any:
		return "table"
	case string:
		return "string"
	case json.Number, float64, int:
		return "number"
	case bool:
		return "boolean"
	}
	return "userdata"
}

// Quote is string.format("%q", s) as LuaJIT writes it.
func Quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\' || c == '\n':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			b.WriteByte('\\')
			next := byte(0)
			if i+1 < len(s) {
				next = s[i+1]
			}
			if next >= '0' && next <= '9' {
				fmt.Fprintf(&b, "%03d", c)
			} else {
				fmt.Fprintf(&b, "%d", c)
			}
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
