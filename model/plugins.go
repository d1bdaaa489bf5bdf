package model

import (
	"sort"

	"github.com/caddy-apisix/stream/internal/lua"
)

// KnownStreamPlugins is the set of stream plugins this build knows, by name,
// with their APISIX priority (higher runs first). RegisterStreamPlugin
// fills it; read it only after init.
var KnownStreamPlugins = map[string]int{}

// metaDef is the `_meta` property APISIX injects into every plugin
// schema (schema_def.lua plugin_injected_schema).
var metaDef = &schema{typ: "object", props: []prop{
	{"disable", &schema{typ: "boolean"}},
	{"error_response", &schema{oneOf: []*schema{{typ: "string"}, {typ: "object"}}}},
	{"priority", &schema{typ: "integer"}},
	{"filter", &schema{typ: "array"}},
}}

// CheckPluginConf validates the conf of the registered stream plugin
// name, the way the plugin's check_schema does, inserting schema defaults
// into conf. The *Error's Msg is the plugin's own text (for example "value
// should match only one schema, but matches none"), without the "failed to
// check the configuration of stream plugin [x]: " prefix CheckStreamRoute
// adds. An unknown name gives "unknown plugin [name]".
func CheckPluginConf(name string, conf any) error {
	p, ok := streamPlugins[name]
	if !ok {
		return &Error{Msg: "unknown plugin [" + name + "]"}
	}
	if err := p.validating.Validate(conf); err != nil {
		return err
	}
	if p.Check != nil {
		m, _ := conf.(map[string]any)
		if err := p.Check(m); err != nil {
			if e, ok := err.(*Error); ok {
				return e
			}
			return &Error{Msg: err.Error()}
		}
	}
	return nil
}

// pluginTable is a set of plugins as apisix/plugin.lua checks a plugins
// object against it: stream_check_schema against the stream plugins,
// check_schema against the HTTP ones.
type pluginTable struct {
	// known reports whether the table has the plugin.
	known func(name string) bool
	// failed is the text before a plugin's own schema error.
	failed func(name string) string
}

// streamRoutePlugins is the table stream routes are checked against.
var streamRoutePlugins = pluginTable{
	known:  func(name string) bool { _, ok := KnownStreamPlugins[name]; return ok },
	failed: func(name string) string { return "failed to check the configuration of stream plugin [" + name + "]: " },
}

// check validates each conf of plugins. A conf with a truthy _meta.disable
// is accepted unchecked, and with skipUnknown so is a plugin the table
// does not have. Lua walks the plugins with pairs(); names are taken in
// sorted order here.
func (pt pluginTable) check(plugins map[string]any, skipUnknown bool) error {
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
				return &Error{Msg: "invalid plugin conf " + lua.EncodeScalar(conf) + " for plugin [" + name + "]"}
			}
		}
		if !pt.known(name) {
			if skipUnknown {
				continue
			}
			return &Error{Msg: "unknown plugin [" + name + "]"}
		}
		if disabled(m) {
			continue
		}
		if err := CheckPluginConf(name, conf); err != nil {
			return &Error{Msg: pt.failed(name) + err.Error()}
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
