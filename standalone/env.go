package standalone

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"

	"github.com/caddy-apisix/stream/internal/lua"
)

// varPattern is apisix/cli/file.lua var_sub's Lua pattern
// "%$%{%{%s*([%w_]+[%:%=]?.-)%s*%}%}": a name, optionally ":=default", up
// to the first "}}". [\s\S] because Lua's "." also matches newlines.
var varPattern = regexp.MustCompile(`\$\{\{\s*([0-9A-Za-z_]+[:=]?[\s\S]*?)\s*\}\}`)

// substitute replaces every ${{VAR}} and ${{VAR:=default}} in s. used
// reports whether a variable was replaced; an unset variable without a
// default is APISIX's error.
func substitute(s string, lookup func(string) (string, bool)) (out string, used bool, err error) {
	if !strings.Contains(s, "${{") {
		return s, false, nil
	}
	out = varPattern.ReplaceAllStringFunc(s, func(m string) string {
		inner := varPattern.FindStringSubmatch(m)[1]
		name, def, hasDef := strings.Cut(inner, ":=")
		if hasDef {
			def = strings.TrimSpace(def)
		}
		if v, ok := lookup(name); ok {
			used = true
			return v
		}
		if hasDef {
			used = true
			return def
		}
		if err == nil {
			err = &envError{name: name}
		}
		return ""
	})
	return out, used, err
}

type envError struct{ name string }

func (e *envError) Error() string {
	return "failed to handle configuration: can't find environment variable " + e.name
}

// substituteText is resolve_conf_var_in_text: the YAML text is substituted
// before parsing, so YAML quoting decides the types.
func substituteText(text string, lookup func(string) (string, bool)) (string, error) {
	out, _, err := substitute(text, lookup)
	return out, err
}

// substituteValues is resolve_conf_var on a decoded JSON document: every
// string value and key is substituted, and a value that used a variable
// becomes a number or a boolean when it reads as one.
func substituteValues(v any, lookup func(string) (string, bool)) error {
	switch t := v.(type) {
	case map[string]any:
		renamed := map[string]string{}
		for k, val := range t {
			nv, err := substituteValue(val, lookup)
			if err != nil {
				return err
			}
			t[k] = nv
			nk, _, err := substitute(k, lookup)
			if err != nil {
				return err
			}
			if nk != k {
				renamed[k] = nk
			}
		}
		for k, nk := range renamed {
			t[nk] = t[k]
			delete(t, k)
		}
	case []any:
		for i, val := range t {
			nv, err := substituteValue(val, lookup)
			if err != nil {
				return err
			}
			t[i] = nv
		}
	}
	return nil
}

// substituteValue is val substituted: a string as substitute and
// typedValue make it, an object or array in place.
func substituteValue(val any, lookup func(string) (string, bool)) (any, error) {
	s, ok := val.(string)
	if !ok {
		return val, substituteValues(val, lookup)
	}
	nv, used, err := substitute(s, lookup)
	if err != nil {
		return nil, err
	}
	return typedValue(nv, used), nil
}

// typedValue is resolve_conf_var's tonumber / "true" / "false" step.
func typedValue(s string, used bool) any {
	if !used {
		return s
	}
	if f, ok := lua.ToNumber(s); ok {
		return json.Number(strconv.FormatFloat(f, 'g', -1, 64))
	}
	switch s {
	case "true":
		return true
	case "false":
		return false
	}
	return s
}
