package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
)

// Schema is a JSON schema given as JSON text (a plugin's schema, as APISIX
// publishes it at /apisix/admin/plugins/<name>), compiled for this
// package's validator: one definition serves validation, with api7
// jsonschema's error texts, and the Admin API.
type Schema struct {
	doc json.RawMessage
	s   *schema
}

// CompileSchema compiles doc. Properties are checked in the order doc
// lists them. It supports the keywords APISIX's stream schemas use.
func CompileSchema(doc string) (*Schema, error) {
	dec := json.NewDecoder(bytes.NewReader([]byte(doc)))
	dec.UseNumber()
	v, err := decodeOrdered(dec)
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("schema: trailing data")
	}
	s, err := compileNode(v)
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(doc)); err != nil {
		return nil, err
	}
	return &Schema{doc: compact.Bytes(), s: s}, nil
}

// MustCompileSchema is CompileSchema for schemas built into the program.
func MustCompileSchema(doc string) *Schema {
	s, err := CompileSchema(doc)
	if err != nil {
		panic(err)
	}
	return s
}

// JSON is the schema document.
func (s *Schema) JSON() json.RawMessage { return s.doc }

// Validate checks v (decoded with UseNumber) and inserts the schema's
// defaults into it, as api7 jsonschema does. The error is an *Error with
// the library's text.
func (s *Schema) Validate(v any) error {
	if ok, msg := s.s.validate(v); !ok {
		return &Error{Msg: msg}
	}
	return nil
}

// withMeta is s with APISIX's injected `_meta` property
// (schema_def.lua plugin_injected_schema), as plugin confs are checked.
func (s *Schema) withMeta() *Schema {
	c := *s.s
	if !c.hasProp("_meta") {
		c.props = append(append([]prop(nil), c.props...), prop{"_meta", metaDef})
	}
	return &Schema{doc: s.doc, s: &c}
}

// ordered is a JSON object with its keys in document order.
type ordered struct {
	keys []string
	vals map[string]any
}

func decodeOrdered(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			o := &ordered{vals: map[string]any{}}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				v, err := decodeOrdered(dec)
				if err != nil {
					return nil, err
				}
				if _, dup := o.vals[k]; !dup {
					o.keys = append(o.keys, k)
				}
				o.vals[k] = v
			}
			_, err := dec.Token()
			return o, err
		case '[':
			var a []any
			for dec.More() {
				v, err := decodeOrdered(dec)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			_, err := dec.Token()
			return a, err
		}
	}
	return tok, nil
}

// plain turns an ordered value back into what encoding/json gives, for
// defaults and enums.
func plain(v any) any {
	switch t := v.(type) {
	case *ordered:
		m := make(map[string]any, len(t.keys))
		for _, k := range t.keys {
			m[k] = plain(t.vals[k])
		}
		return m
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = plain(x)
		}
		return out
	}
	return v
}

func compileNode(v any) (*schema, error) {
	o, ok := v.(*ordered)
	if !ok {
		return nil, fmt.Errorf("a schema must be an object, got %T", v)
	}
	s := &schema{}
	num := func(k string) (*float64, error) {
		n, ok := o.vals[k].(json.Number)
		if !ok {
			return nil, fmt.Errorf("%s must be a number", k)
		}
		f, err := n.Float64()
		return &f, err
	}
	integer := func(k string) (int, error) {
		f, err := num(k)
		if err != nil {
			return 0, err
		}
		return int(*f), nil
	}
	list := func(k string) ([]*schema, error) {
		a, ok := o.vals[k].([]any)
		if !ok {
			return nil, fmt.Errorf("%s must be an array", k)
		}
		out := make([]*schema, len(a))
		for i, x := range a {
			c, err := compileNode(x)
			if err != nil {
				return nil, fmt.Errorf("%s[%d]: %w", k, i, err)
			}
			out[i] = c
		}
		return out, nil
	}
	strs := func(k string) ([]string, error) {
		a, ok := o.vals[k].([]any)
		if !ok {
			return nil, fmt.Errorf("%s must be an array", k)
		}
		out := make([]string, len(a))
		for i, x := range a {
			if out[i], ok = x.(string); !ok {
				return nil, fmt.Errorf("%s[%d] must be a string", k, i)
			}
		}
		return out, nil
	}
	var err error
	for _, k := range o.keys {
		val := o.vals[k]
		switch k {
		case "type":
			switch t := val.(type) {
			case string:
				s.typ = t
			default:
				s.types, err = strs(k)
			}
		case "properties":
			p, ok := val.(*ordered)
			if !ok {
				return nil, fmt.Errorf("properties must be an object")
			}
			for _, name := range p.keys {
				c, err := compileNode(p.vals[name])
				if err != nil {
					return nil, fmt.Errorf("properties.%s: %w", name, err)
				}
				s.props = append(s.props, prop{name, c})
			}
		case "patternProperties":
			p, ok := val.(*ordered)
			if !ok {
				return nil, fmt.Errorf("patternProperties must be an object")
			}
			for _, re := range p.keys {
				c, err := compileNode(p.vals[re])
				if err != nil {
					return nil, fmt.Errorf("patternProperties.%s: %w", re, err)
				}
				s.patProps = append(s.patProps, patProp{pat(re), c})
			}
		case "dependencies":
			p, ok := val.(*ordered)
			if !ok {
				return nil, fmt.Errorf("dependencies must be an object")
			}
			for _, name := range p.keys {
				d := dep{name: name}
				if arr, isArr := p.vals[name].([]any); isArr {
					for _, x := range arr {
						str, _ := x.(string)
						d.names = append(d.names, str)
					}
				} else if d.s, err = compileNode(p.vals[name]); err != nil {
					return nil, fmt.Errorf("dependencies.%s: %w", name, err)
				}
				s.deps = append(s.deps, d)
			}
		case "required":
			s.required, err = strs(k)
		case "additionalProperties":
			b, isBool := val.(bool)
			if !isBool {
				return nil, fmt.Errorf("additionalProperties: only false/true is supported")
			}
			s.noAddProps = !b
		case "maxProperties":
			s.maxProps, err = integer(k)
		case "items":
			s.items, err = compileNode(val)
		case "minItems":
			s.minItems, err = integer(k)
		case "maxItems":
			s.maxItems, err = integer(k)
		case "uniqueItems":
			s.unique, _ = val.(bool)
		case "minLength":
			s.minLen, err = integer(k)
		case "maxLength":
			s.maxLen, err = integer(k)
		case "pattern":
			str, ok := val.(string)
			if !ok {
				return nil, fmt.Errorf("pattern must be a string")
			}
			s.pattern = pat(str)
		case "minimum":
			s.minimum, err = num(k)
		case "exclusiveMinimum":
			s.exclMin, err = num(k)
		case "maximum":
			s.maximum, err = num(k)
		case "enum":
			a, ok := val.([]any)
			if !ok {
				return nil, fmt.Errorf("enum must be an array")
			}
			for _, x := range a {
				s.enum = append(s.enum, plain(x))
			}
		case "allOf":
			s.allOf, err = list(k)
		case "anyOf":
			s.anyOf, err = list(k)
		case "oneOf":
			s.oneOf, err = list(k)
		case "not":
			s.not, err = compileNode(val)
		case "if":
			s.ifS, err = compileNode(val)
		case "then":
			s.thenS, err = compileNode(val)
		case "else":
			s.elseS, err = compileNode(val)
		case "format":
			s.format, _ = val.(string)
		case "default":
			s.def = plain(val)
		case "description", "title", "$comment", "encrypt_fields":
		default:
			return nil, fmt.Errorf("unsupported keyword %q", k)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
	}
	return s, nil
}

// StreamPlugin is what validation and the Admin API know of a stream
// plugin; the plugin package registers one per plugin unit.
type StreamPlugin struct {
	Name string
	// Priority is APISIX's: higher runs first.
	Priority int
	// Schema validates confs (with `_meta` injected) and is what
	// /apisix/admin/plugins/<name> answers.
	Schema *Schema
	// MetadataSchema, when set, validates plugin_metadata/<name>.
	MetadataSchema *Schema
	// Check, when set, runs after the schema passed, on the conf with
	// defaults inserted, for what a schema cannot say. Its error text is
	// the plugin's own (without the "failed to check ..." prefix).
	Check func(conf map[string]any) error

	validating *Schema
}

var streamPlugins = map[string]*StreamPlugin{}

// RegisterStreamPlugin adds a stream plugin; it panics on a duplicate
// name. Call it from an init function.
func RegisterStreamPlugin(p StreamPlugin) {
	if _, dup := streamPlugins[p.Name]; dup {
		panic("stream plugin registered twice: " + p.Name)
	}
	if p.Schema == nil {
		panic("stream plugin without a schema: " + p.Name)
	}
	p.validating = p.Schema.withMeta()
	streamPlugins[p.Name] = &p
	KnownStreamPlugins[p.Name] = p.Priority
}

// LookupStreamPlugin returns the registered plugin name.
func LookupStreamPlugin(name string) (*StreamPlugin, bool) {
	p, ok := streamPlugins[name]
	return p, ok
}

// StreamPluginList is every registered plugin, highest priority first.
func StreamPluginList() []*StreamPlugin {
	out := make([]*StreamPlugin, 0, len(streamPlugins))
	for _, p := range streamPlugins {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Priority != out[j].Priority {
			return out[i].Priority > out[j].Priority
		}
		return out[i].Name < out[j].Name
	})
	return out
}
