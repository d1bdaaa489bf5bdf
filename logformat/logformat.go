// Package logformat builds a logger plugin's entry from its log_format,
// as apisix/utils/log-util.lua does: every string value that starts with
// "$" is replaced by the variable of that name, other values are kept,
// nested objects are built the same way down to a depth of 5.
package logformat

import (
	"sort"
	"strconv"
)

// maxDepth is log-util.lua's MAX_LOG_FORMAT_DEPTH: an object nested
// deeper than this is logged as an empty object.
const maxDepth = 5

// Format is a compiled log_format. The zero Format builds empty entries.
type Format struct {
	fields []field
	array  bool // built from a JSON array: the entry is an array too
}

type field struct {
	key     string
	isVar   bool // the value is the variable varName
	varName string
	literal any     // the value as given, when neither a variable nor nested
	nested  *Format // an object or array value
}

// Compile compiles format, a log_format as decoded from JSON: a
// map[string]any whose values are strings, numbers, booleans, nil, nested
// maps and arrays.
func Compile(format map[string]any) *Format {
	return compileMap(format, 1)
}

func compileMap(m map[string]any, depth int) *Format {
	f := &Format{fields: make([]field, 0, len(m))}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f.fields = append(f.fields, compileValue(k, m[k], depth))
	}
	return f
}

func compileValue(key string, v any, depth int) field {
	switch t := v.(type) {
	case map[string]any:
		if depth >= maxDepth {
			return field{key: key, nested: &Format{}}
		}
		return field{key: key, nested: compileMap(t, depth+1)}
	case []any:
		if depth >= maxDepth {
			return field{key: key, nested: &Format{}}
		}
		a := &Format{array: true, fields: make([]field, len(t))}
		for i, e := range t {
			a.fields[i] = compileValue(strconv.Itoa(i), e, depth+1)
		}
		return field{key: key, nested: a}
	case string:
		if len(t) > 0 && t[0] == '$' {
			return field{key: key, isVar: true, varName: t[1:]}
		}
	}
	return field{key: key, literal: v}
}

// Lookup returns a variable's value; ok is false when it has none, and
// the key is then left out of the entry (a nil in Lua). Within an array
// the missing value is a JSON null.
type Lookup func(name string) (value string, ok bool)

// Build builds one entry: a map[string]any ready for JSON encoding.
func (f *Format) Build(lookup Lookup) map[string]any {
	entry := make(map[string]any, len(f.fields)+2)
	for _, fl := range f.fields {
		if v, ok := fl.value(lookup); ok {
			entry[fl.key] = v
		}
	}
	return entry
}

func (fl field) value(lookup Lookup) (any, bool) {
	switch {
	case fl.isVar:
		if v, ok := lookup(fl.varName); ok {
			return v, true
		}
		return nil, false
	case fl.nested != nil && fl.nested.array:
		arr := make([]any, len(fl.nested.fields))
		for i, e := range fl.nested.fields {
			arr[i], _ = e.value(lookup)
		}
		return arr, true
	case fl.nested != nil:
		return fl.nested.Build(lookup), true
	}
	return fl.literal, true
}
