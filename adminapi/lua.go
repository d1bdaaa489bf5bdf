package adminapi

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

// luaToString is Lua's tostring for the JSON scalars an id can be: APISIX
// compares ids as tostring(conf.id) ~= tostring(id), and numbers print
// with "%.14g" (so 1.0 is "1"). Tables have no usable string form.
func luaToString(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil || math.IsInf(f, 0) {
			return string(v), true
		}
		return strconv.FormatFloat(f, 'g', 14, 64), true
	case bool:
		return strconv.FormatBool(v), true
	}
	return "", false
}

// luaToNumber is Lua's tonumber on a query argument: surrounding spaces
// are ignored, "0x" hex is accepted, inf and nan are not numbers.
func luaToNumber(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	body := strings.TrimPrefix(strings.TrimPrefix(s, "-"), "+")
	if len(body) > 2 && (body[:2] == "0x" || body[:2] == "0X") {
		n, err := strconv.ParseUint(body[2:], 16, 64)
		if err != nil {
			return 0, false
		}
		f := float64(n)
		if s[0] == '-' {
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
