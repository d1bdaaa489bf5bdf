package model

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// KnownStreamPlugins is the set of stream plugins this build knows, by name,
// with their APISIX priority (higher runs first).
var KnownStreamPlugins = map[string]int{
	"ip-restriction": 3000,
	"limit-conn":     1003,
}

var (
	// metaDef is the `_meta` property APISIX injects into every plugin
	// schema (schema_def.lua plugin_injected_schema).
	metaDef = &schema{typ: "object", props: []prop{
		{"disable", &schema{typ: "boolean"}},
		{"error_response", &schema{oneOf: []*schema{{typ: "string"}, {typ: "object"}}}},
		{"priority", &schema{typ: "integer"}},
		{"filter", &schema{typ: "array"}},
	}}

	// ipRestrictionSchema is apisix/plugins/ip-restriction/init.lua's schema.
	ipRestrictionSchema = &schema{
		typ: "object",
		props: []prop{
			{"message", &schema{typ: "string", minLen: 1, maxLen: 1024, def: "Your IP address is not allowed"}},
			{"response_code", &schema{typ: "integer", minimum: num(403), maximum: num(404), def: jsonNum(403)}},
			{"whitelist", &schema{typ: "array", minItems: 1, items: &schema{anyOf: ipDef}}},
			{"blacklist", &schema{typ: "array", minItems: 1, items: &schema{anyOf: ipDef}}},
			{"_meta", metaDef},
		},
		oneOf: []*schema{
			{required: []string{"whitelist"}},
			{required: []string{"blacklist"}},
		},
	}

	// limitConnSchema is apisix/plugins/limit-conn's schema as the stream
	// plugin uses it.
	limitConnSchema = &schema{
		typ: "object",
		props: []prop{
			{"conn", &schema{typ: "integer", exclMin: num(0)}},
			{"burst", &schema{typ: "integer", minimum: num(0)}},
			{"default_conn_delay", &schema{typ: "number", exclMin: num(0)}},
			{"only_use_default_delay", &schema{typ: "boolean", def: false}},
			{"key", &schema{typ: "string"}},
			{"key_type", &schema{typ: "string", enum: []any{"var", "var_combination"}, def: "var"}},
			{"rejected_code", &schema{typ: "integer", minimum: num(200), maximum: num(599), def: jsonNum(503)}},
			{"rejected_msg", &schema{typ: "string", minLen: 1}},
			{"allow_degradation", &schema{typ: "boolean", def: false}},
			{"_meta", metaDef},
		},
		required: []string{"conn", "burst", "default_conn_delay", "key"},
	}
)

// CheckPluginConf validates the conf of the known stream plugin name, the
// way the plugin's check_schema does, inserting schema defaults into conf.
// The *Error's Msg is the plugin's own text (for example "value should
// match only one schema, but matches none"), without the "failed to check
// the configuration of stream plugin [x]: " prefix CheckStreamRoute adds.
// An unknown name gives "unknown plugin [name]".
func CheckPluginConf(name string, conf any) error {
	switch name {
	case "ip-restriction":
		if ok, msg := ipRestrictionSchema.validate(conf); !ok {
			return &Error{Msg: msg}
		}
		m, _ := conf.(map[string]any)
		// The regexes let some bad IPv6 forms through, so the plugin
		// parses every entry again.
		for _, list := range []string{"whitelist", "blacklist"} {
			arr, _ := m[list].([]any)
			for _, item := range arr {
				s, _ := item.(string)
				if !validCIDROrIP(s) {
					return &Error{Msg: "invalid ip address: " + s}
				}
			}
		}
		return nil
	case "limit-conn":
		if ok, msg := limitConnSchema.validate(conf); !ok {
			return &Error{Msg: msg}
		}
		return nil
	case "mqtt-proxy":
		return checkMQTTProxy(conf)
	case "syslog":
		return checkSyslog(conf)
	}
	return &Error{Msg: "unknown plugin [" + name + "]"}
}

// checkStreamPlugins is apisix/plugin.lua stream_check_schema. Lua walks the
// plugins with pairs(); names are taken in sorted order here.
func checkStreamPlugins(plugins map[string]any) error {
	names := make([]string, 0, len(plugins))
	for n := range plugins {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		conf := plugins[name]
		m, isTable := conf.(map[string]any)
		if !isTable {
			if _, isArr := conf.([]any); !isArr {
				return &Error{Msg: "invalid plugin conf " + cjsonEncode(conf) + " for plugin [" + name + "]"}
			}
		}
		if _, ok := KnownStreamPlugins[name]; !ok {
			return &Error{Msg: "unknown plugin [" + name + "]"}
		}
		if disabled(m) {
			continue
		}
		if err := CheckPluginConf(name, conf); err != nil {
			return &Error{Msg: "failed to check the configuration of stream plugin [" + name + "]: " + err.Error()}
		}
	}
	return nil
}

// disabled reports a truthy `_meta.disable` (Lua truthiness: anything but
// a missing value and false).
func disabled(conf map[string]any) bool {
	meta, ok := conf["_meta"].(map[string]any)
	if !ok {
		return false
	}
	v, ok := meta["disable"]
	if !ok {
		return false
	}
	b, isBool := v.(bool)
	return !isBool || b
}

// cjsonEncode encodes a scalar as lua-cjson does (numbers with %.14g,
// "/" escaped). Tables never reach it.
func cjsonEncode(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case bool:
		if t {
			return "true"
		}
		return "false"
	case string:
		var b strings.Builder
		b.WriteByte('"')
		for _, r := range t {
			switch r {
			case '"':
				b.WriteString(`\"`)
			case '\\':
				b.WriteString(`\\`)
			case '/':
				b.WriteString(`\/`)
			case '\b':
				b.WriteString(`\b`)
			case '\f':
				b.WriteString(`\f`)
			case '\n':
				b.WriteString(`\n`)
			case '\r':
				b.WriteString(`\r`)
			case '\t':
				b.WriteString(`\t`)
			default:
				if r < 0x20 || r == 0x7f {
					fmt.Fprintf(&b, `\u%04x`, r)
				} else {
					b.WriteRune(r)
				}
			}
		}
		b.WriteByte('"')
		return b.String()
	}
	if f, ok := toFloat(v); ok {
		return luaNum(f)
	}
	b, _ := json.Marshal(v)
	return string(b)
}
