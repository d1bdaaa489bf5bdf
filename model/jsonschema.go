package model

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/caddy-apisix/stream/internal/lua"
)

// This file is a small JSON-schema validator that reproduces the behaviour
// and the error texts of api7/jsonschema (lib/jsonschema.lua), the library
// APISIX validates its objects with. Only the keywords APISIX's stream
// schemas use are implemented.
//
// Values are what encoding/json produces with UseNumber: map[string]any,
// []any, string, json.Number, bool and nil. Lua sees them through cjson, so:
//   - every number is a double ("number"); "integer" means fmod(x, 1) == 0;
//   - objects and arrays are both "table"; an empty object and an empty
//     array are the same empty table, which passes as object and as array;
//   - JSON null is cjson.null, a lightuserdata, so its type is "userdata".
//
// Lua walks schema properties and object keys with pairs(), whose order is
// not knowable from outside. Here properties are checked in the order the
// schema declares them and object keys in sorted order, so the first error
// reported is deterministic.

// schema is one JSON-schema node. Zero fields mean "keyword absent".
type schema struct {
	typ        string   // single "type"
	types      []string // "type" given as a list
	props      []prop   // "properties", in check order
	required   []string
	deps       []dep // "dependencies"
	patProps   []patProp
	noAddProps bool // "additionalProperties": false
	maxProps   int  // "maxProperties" (0: absent)
	items      *schema
	minItems   int // 0: absent
	maxItems   int // 0: absent
	unique     bool
	minLen     int // 0: absent
	maxLen     int // 0: absent
	pattern    *luaRe
	minimum    *float64
	exclMin    *float64
	maximum    *float64
	enum       []any
	allOf      []*schema
	anyOf      []*schema
	oneOf      []*schema
	ifS        *schema
	thenS      *schema
	elseS      *schema
	not        *schema
	format     string // "ipv4" or "ipv6"
	def        any    // "default", inserted into the parent object when absent
}

// prop is one entry of "properties".
type prop struct {
	name string
	s    *schema
}

// dep is one entry of "dependencies": a list of names or a schema.
type dep struct {
	name  string
	names []string
	s     *schema
}

// patProp is one entry of "patternProperties".
type patProp struct {
	re *luaRe
	s  *schema
}

// luaRe is a pattern as ngx.re.find (PCRE, no "D" flag) applies it, with
// its source kept for error texts.
type luaRe struct {
	src string
	re  *regexp.Regexp
}

// pat compiles a PCRE pattern for RE2. PCRE's "$" also matches before a
// final newline, so every unescaped "$" outside a character class
// becomes "\n?$". (Every "$" in APISIX's stream patterns ends its branch,
// where the two forms agree.)
func pat(src string) *luaRe {
	var b strings.Builder
	inClass := false
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case c == '\\' && i+1 < len(src):
			b.WriteByte(c)
			i++
			b.WriteByte(src[i])
			continue
		case c == '[' && !inClass:
			inClass = true
		case c == ']' && inClass:
			inClass = false
		case c == '$' && !inClass:
			b.WriteString(`\n?$`)
			continue
		}
		b.WriteByte(c)
	}
	return &luaRe{src: src, re: regexp.MustCompile(b.String())}
}

// match is ngx.re.find(s, src) ~= nil.
func (r *luaRe) match(s string) bool { return r.re.MatchString(s) }

// num returns a pointer for the numeric keywords.
func num(f float64) *float64 { return &f }

// tableKind mirrors validatorlib.tablekind: 0 object, 1 empty, 2 array.
func tableKind(v any) int {
	switch t := v.(type) {
	case map[string]any:
		if len(t) == 0 {
			return 1
		}
		return 0
	case []any:
		if len(t) == 0 {
			return 1
		}
		return 2
	}
	return -1
}

// sortedKeys returns the keys of m in a stable order (see file comment).
func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// typeOK reports whether v is of the JSON-schema type t, the Lua way.
func typeOK(t string, v any) bool {
	switch t {
	case "object":
		k := tableKind(v)
		return k == 0 || k == 1
	case "array":
		return tableKind(v) >= 1
	case "integer":
		f, ok := lua.Number(v)
		return ok && math.Mod(f, 1) == 0
	case "string":
		_, ok := v.(string)
		return ok
	case "number":
		_, ok := lua.Number(v)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	}
	return false
}

// validate checks v against s. It may insert defaults into objects, as the
// Lua library does. The returned string is the library's error text.
func (s *schema) validate(v any) (bool, string) {
	if s.typ != "" && !typeOK(s.typ, v) {
		return false, "wrong type: expected " + s.typ + ", got " + lua.Type(v)
	}
	if len(s.types) > 0 {
		ok := false
		for _, t := range s.types {
			if typeOK(t, v) {
				ok = true
				break
			}
		}
		if !ok {
			return false, "wrong type: expected one of " + strings.Join(s.types, ", ") + ", got " + lua.Type(v)
		}
	}
	if obj, isObj := v.(map[string]any); isObj || (tableKind(v) == 1) {
		if ok, msg := s.validateObject(obj); !ok {
			return false, msg
		}
	}
	if tableKind(v) >= 1 {
		arr, _ := v.([]any)
		if ok, msg := s.validateArray(arr); !ok {
			return false, msg
		}
	}
	if str, ok := v.(string); ok {
		if s.minLen > 0 {
			if c := utf8.RuneCountInString(str); c < s.minLen {
				return false, fmt.Sprintf("string too short, expected at least %d, got %d", s.minLen, c)
			}
		}
		if s.maxLen > 0 {
			if c := utf8.RuneCountInString(str); c > s.maxLen {
				return false, fmt.Sprintf("string too long, expected at most %d, got %d", s.maxLen, c)
			}
		}
		if s.pattern != nil && !s.pattern.match(str) {
			return false, "failed to match pattern " + lua.Quote(s.pattern.src) + " with " + lua.Quote(str)
		}
	}
	if f, ok := lua.Number(v); ok {
		if s.minimum != nil && f < *s.minimum {
			return false, "expected " + lua.FormatNumber(f) + " to be at least " + lua.FormatNumber(*s.minimum)
		}
		if s.exclMin != nil && f <= *s.exclMin {
			return false, "expected " + lua.FormatNumber(f) + " to be greater than " + lua.FormatNumber(*s.exclMin)
		}
		if s.maximum != nil && f > *s.maximum {
			return false, "expected " + lua.FormatNumber(f) + " to be at most " + lua.FormatNumber(*s.maximum)
		}
	}
	if s.enum != nil {
		ok := false
		for _, e := range s.enum {
			if luaEqual(v, e) {
				ok = true
				break
			}
		}
		if !ok {
			return false, "matches none of the enum values"
		}
	}
	for i, sub := range s.allOf {
		if ok, msg := sub.validate(v); !ok {
			return false, fmt.Sprintf("allOf %d failed: %s", i+1, msg)
		}
	}
	if len(s.anyOf) > 0 {
		matched := false
		var reqs []string
		for _, sub := range s.anyOf {
			if len(sub.required) > 0 {
				b, _ := json.Marshal(sub.required)
				reqs = append(reqs, string(b))
			}
		}
		for _, sub := range s.anyOf {
			if ok, _ := sub.validate(v); ok {
				matched = true
				break
			}
		}
		if !matched {
			msg := "object matches none of the required"
			if len(reqs) > 0 {
				msg += ": " + strings.Join(reqs, " or ")
			}
			return false, msg
		}
	}
	if len(s.oneOf) > 0 {
		matched := 0
		for i, sub := range s.oneOf {
			if ok, _ := sub.validate(v); ok {
				if matched > 0 {
					return false, fmt.Sprintf("value should match only one schema, but matches both schemas %d and %d", matched, i+1)
				}
				matched = i + 1
			}
		}
		if matched == 0 {
			return false, "value should match only one schema, but matches none"
		}
	}
	if s.ifS != nil {
		matched, _ := s.ifS.validate(v)
		if matched && s.thenS != nil {
			if ok, _ := s.thenS.validate(v); !ok {
				return false, "then clause did not match"
			}
		}
		if !matched && s.elseS != nil {
			if ok, _ := s.elseS.validate(v); !ok {
				return false, "else clause did not match"
			}
		}
	}
	if s.not != nil {
		if ok, _ := s.not.validate(v); ok {
			return false, "value wasn't supposed to match schema"
		}
	}
	if str, ok := v.(string); ok {
		switch s.format {
		case "ipv4":
			if _, ok := parseIPv4(str); !ok {
				return false, "expect valid ipv4 address but got: " + str
			}
		case "ipv6":
			if _, ok := parseIPv6(str); !ok {
				return false, "expect valid ipv6 address but got: " + str
			}
		}
	}
	return true, ""
}

// hasObjectKeywords is the library's condition for running object checks.
func (s *schema) hasObjectKeywords() bool {
	return len(s.props) > 0 || s.noAddProps || len(s.patProps) > 0 ||
		s.maxProps > 0 || len(s.deps) > 0 || s.required != nil
}

// validateObject runs the object keywords on obj (nil for an empty array,
// which Lua cannot tell from an empty object).
func (s *schema) validateObject(obj map[string]any) (bool, string) {
	if !s.hasObjectKeywords() {
		return true, ""
	}
	required := map[string]bool{}
	for _, r := range s.required {
		required[r] = true
	}
	depOf := map[string]dep{}
	for _, d := range s.deps {
		depOf[d.name] = d
	}
	for _, p := range s.props {
		val, present := obj[p.name]
		if present {
			if ok, msg := p.s.validate(val); !ok {
				return false, "property " + lua.Quote(p.name) + " validation failed: " + msg
			}
			if d, ok := depOf[p.name]; ok {
				if ok, msg := d.check(obj); !ok {
					return false, msg
				}
			}
		} else if required[p.name] {
			return false, "property " + lua.Quote(p.name) + " is required"
		}
		delete(required, p.name)
		if !present && p.s.def != nil && obj != nil {
			obj[p.name] = cloneDefault(p.s.def)
		}
	}
	for _, r := range s.required {
		if !required[r] {
			continue
		}
		if _, ok := obj[r]; !ok {
			return false, "property " + lua.Quote(r) + " is required"
		}
	}
	for _, d := range s.deps {
		if s.hasProp(d.name) {
			continue
		}
		if _, ok := obj[d.name]; ok {
			if ok, msg := d.check(obj); !ok {
				return false, msg
			}
		}
	}
	if s.noAddProps || len(s.patProps) > 0 {
		for _, k := range sortedKeys(obj) {
			matched := false
			for _, pp := range s.patProps {
				if pp.re.match(k) {
					if ok, msg := pp.s.validate(obj[k]); !ok {
						return false, "failed to validate " + k + " (matching " + lua.Quote(pp.re.src) + "): " + msg
					}
					matched = true
				}
			}
			if s.noAddProps && !matched && !s.hasProp(k) {
				return false, "additional properties forbidden, found " + k
			}
		}
	}
	if s.maxProps > 0 && len(obj) > s.maxProps {
		return false, fmt.Sprintf("expect object to have at most %d properties", s.maxProps)
	}
	if s.required != nil && len(s.required) == 0 && len(obj) != 0 {
		return false, "the input data should be an empty table"
	}
	return true, ""
}

// check applies one dependency of a present property.
func (d dep) check(obj map[string]any) (bool, string) {
	if d.s == nil {
		for _, n := range d.names {
			if _, ok := obj[n]; !ok {
				return false, "property " + lua.Quote(n) + " is required when " + lua.Quote(d.name) + " is set"
			}
		}
		return true, ""
	}
	if ok, msg := d.s.validate(obj); !ok {
		return false, "failed to validate dependent schema for " + lua.Quote(d.name) + ": " + msg
	}
	return true, ""
}

// hasProp reports whether name is declared in properties.
func (s *schema) hasProp(name string) bool {
	for _, p := range s.props {
		if p.name == name {
			return true
		}
	}
	return false
}

// validateArray runs the array keywords on arr (nil for an empty object).
func (s *schema) validateArray(arr []any) (bool, string) {
	if s.items == nil && s.minItems == 0 && s.maxItems == 0 && !s.unique {
		return true, ""
	}
	if s.minItems > 0 && len(arr) < s.minItems {
		return false, fmt.Sprintf("expect array to have at least %d items", s.minItems)
	}
	if s.maxItems > 0 && len(arr) > s.maxItems {
		return false, fmt.Sprintf("expect array to have at most %d items", s.maxItems)
	}
	if s.items != nil {
		for i, it := range arr {
			if ok, msg := s.items.validate(it); !ok {
				return false, fmt.Sprintf("failed to validate item %d: %s", i+1, msg)
			}
		}
	}
	if s.unique {
		if i, j, dup := firstDuplicate(arr); dup {
			return false, fmt.Sprintf("expected unique items but items %d and %d are equal", i, j)
		}
	}
	return true, ""
}

// firstDuplicate mirrors unique_item_in_array: scalars first, in order
// (the first repeat and the index of its earlier copy), then tables pairwise.
// Indexes are 1-based.
func firstDuplicate(arr []any) (int, int, bool) {
	var tables []int
	for j, v := range arr {
		if tableKind(v) >= 0 {
			tables = append(tables, j)
			continue
		}
		for i := 0; i < j; i++ {
			if tableKind(arr[i]) < 0 && luaEqual(arr[i], v) {
				return i + 1, j + 1, true
			}
		}
	}
	for a := 0; a < len(tables); a++ {
		for b := a + 1; b < len(tables); b++ {
			if luaEqual(arr[tables[a]], arr[tables[b]]) {
				return tables[a] + 1, tables[b] + 1, true
			}
		}
	}
	return 0, 0, false
}

// luaEqual is the library's deepeq on decoded JSON values.
func luaEqual(a, b any) bool {
	if fa, ok := lua.Number(a); ok {
		fb, ok := lua.Number(b)
		return ok && fa == fb
	}
	switch x := a.(type) {
	case string:
		y, ok := b.(string)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case nil:
		return b == nil
	case map[string]any, []any:
		if tableKind(a) != tableKind(b) && !(tableKind(a) == 1 && tableKind(b) == 1) {
			return false
		}
		if tableKind(a) == 1 {
			return tableKind(b) == 1
		}
		if xm, ok := a.(map[string]any); ok {
			ym, ok := b.(map[string]any)
			if !ok || len(xm) != len(ym) {
				return false
			}
			for k, v := range xm {
				w, ok := ym[k]
				if !ok || !luaEqual(v, w) {
					return false
				}
			}
			return true
		}
		xa := a.([]any)
		ya, ok := b.([]any)
		if !ok || len(xa) != len(ya) {
			return false
		}
		for i := range xa {
			if !luaEqual(xa[i], ya[i]) {
				return false
			}
		}
		return true
	}
	return false
}

// DeepCopy copies a decoded JSON value (maps and slices, recursively).
func DeepCopy(v any) any { return cloneDefault(v) }

// cloneDefault copies a default so inserted values never alias the schema.
func cloneDefault(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, x := range t {
			m[k] = cloneDefault(x)
		}
		return m
	case []any:
		a := make([]any, len(t))
		for i, x := range t {
			a[i] = cloneDefault(x)
		}
		return a
	}
	return v
}
