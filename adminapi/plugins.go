package adminapi

import (
	"cmp"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/caddy-apisix/stream/model"
)

// pluginsList answers GET /apisix/admin/plugins/list: the plugin names of
// the subsystem, highest priority first. This build has stream plugins
// only, so the http subsystem (the default) lists none.
func pluginsList(query url.Values) (reply, error) {
	sub := "http"
	if v, ok := query["subsystem"]; ok {
		sub = v[0]
	}
	switch sub {
	case "http":
		return reply{status: http.StatusOK, body: []string{}}, nil
	case "stream":
	default:
		return reply{}, &apiError{status: http.StatusBadRequest, body: "invalid subsystem passed"}
	}
	names := make([]string, 0, len(model.KnownStreamPlugins))
	for name := range model.KnownStreamPlugins {
		names = append(names, name)
	}
	slices.SortFunc(names, func(a, b string) int {
		if c := cmp.Compare(model.KnownStreamPlugins[b], model.KnownStreamPlugins[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return reply{status: http.StatusOK, body: names}, nil
}

// pluginSchema answers GET /apisix/admin/plugins/<name>?subsystem=stream
// with the plugin's JSON schema.
func pluginSchema(name string, query url.Values) (reply, error) {
	sub := "http"
	if v, ok := query["subsystem"]; ok {
		sub = v[0]
	}
	if sub != "http" && sub != "stream" {
		return reply{}, errMsg(http.StatusBadRequest, "unsupported subsystem: "+sub)
	}
	if query.Get("all") == "true" {
		return pluginsAll(sub), nil
	}
	if _, known := model.KnownStreamPlugins[name]; !known || sub != "stream" {
		return reply{}, errMsg(http.StatusNotFound, "plugin not found in subsystem "+sub)
	}
	doc, ok := pluginSchemas[name]
	if !ok {
		return reply{}, errMsg(http.StatusBadRequest, "not found schema")
	}
	return reply{status: http.StatusOK, body: json.RawMessage(doc)}, nil
}

// pluginInfo is one entry of GET /apisix/admin/plugins?all=true
// (apisix/plugin.lua get_all with version, priority and schema).
type pluginInfo struct {
	// Version is the plugin's version; every stream plugin is 0.1.
	Version float64 `json:"version"`
	// Priority orders the plugins, highest first.
	Priority int `json:"priority"`
	// Schema is the plugin's JSON schema.
	Schema json.RawMessage `json:"schema,omitempty"`
}

// pluginsAll answers ?all=true (deprecated in APISIX, still what its
// dashboard asks): the stream plugins by name for subsystem=stream, the
// http plugins (none here) otherwise.
func pluginsAll(sub string) reply {
	out := map[string]pluginInfo{}
	if sub == "stream" {
		for name, prio := range model.KnownStreamPlugins {
			out[name] = pluginInfo{Version: 0.1, Priority: prio, Schema: json.RawMessage(pluginSchemas[name])}
		}
	}
	return reply{status: http.StatusOK, body: out}
}

// schemaValidate answers POST /apisix/admin/schema/validate/<resource>:
// the body is checked as an object of that kind would be, with every
// reference taken to exist; 200 with no body when it passes.
func schemaValidate(r *http.Request, res string) (reply, error) {
	kind, ok := objectKinds[res]
	if !ok {
		return reply{}, errMsg(http.StatusNotFound, "Unsupported resource type: "+res)
	}
	body, hasBody, aerr := readBody(r)
	if aerr != nil {
		return reply{}, aerr
	}
	obj, isObj := body.(map[string]any)
	if !hasBody || !isObj {
		return reply{}, errMsg(http.StatusBadRequest, "wrong type: expected object, got "+luaType(body))
	}
	refs := model.Refs{
		UpstreamExists: func(string) bool { return true },
		SSLType:        func(string) (string, bool) { return "client", true },
		ServiceExists:  func(string) bool { return true },
	}
	var err error
	switch kind {
	case model.StreamRoutes:
		err = model.CheckStreamRoute(obj, refs)
	case model.Upstreams:
		err = model.CheckUpstream(obj, refs)
	default:
		err = model.CheckSSL(obj)
	}
	if err != nil {
		// APISIX reports the bare jsonschema message here.
		return reply{}, errMsg(http.StatusBadRequest, strings.TrimPrefix(err.Error(), "invalid configuration: "))
	}
	return reply{status: http.StatusOK}, nil
}

// ipDef is APISIX's core.schema.ip_def.
const ipDef = `[{"title":"IPv4","type":"string","format":"ipv4"},` +
	`{"title":"IPv4/CIDR","type":"string","pattern":"^([0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])\\.([0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])\\.([0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])\\.([0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])/([12]?[0-9]|3[0-2])$"},` +
	`{"title":"IPv6","type":"string","format":"ipv6"},` +
	`{"title":"IPv6/CIDR","type":"string","pattern":"^([a-fA-F0-9]{0,4}:){1,8}(:[a-fA-F0-9]{0,4}){0,8}([a-fA-F0-9]{0,4})?/[0-9]{1,3}$"}]`

// pluginSchemas are the stream plugins' schemas as APISIX 3.18 publishes
// them (apisix/stream/plugins/*.lua and the shared plugin modules).
var pluginSchemas = map[string]string{
	"ip-restriction": `{"type":"object","properties":{` +
		`"message":{"type":"string","minLength":1,"maxLength":1024,"default":"Your IP address is not allowed"},` +
		`"response_code":{"type":"integer","minimum":403,"maximum":404,"default":403},` +
		`"whitelist":{"type":"array","items":{"anyOf":` + ipDef + `},"minItems":1},` +
		`"blacklist":{"type":"array","items":{"anyOf":` + ipDef + `},"minItems":1}},` +
		`"oneOf":[{"required":["whitelist"]},{"required":["blacklist"]}]}`,
	"limit-conn": `{"type":"object","properties":{` +
		`"conn":{"type":"integer","exclusiveMinimum":0},` +
		`"burst":{"type":"integer","minimum":0},` +
		`"default_conn_delay":{"type":"number","exclusiveMinimum":0},` +
		`"only_use_default_delay":{"type":"boolean","default":false},` +
		`"key":{"type":"string"},` +
		`"key_type":{"type":"string","enum":["var","var_combination"],"default":"var"}},` +
		`"required":["conn","burst","default_conn_delay","key"]}`,
	"mqtt-proxy": `{"type":"object","properties":{` +
		`"protocol_name":{"type":"string","default":"MQTT"},` +
		`"protocol_level":{"type":"integer"}},` +
		`"required":["protocol_level"]}`,
	"traffic-split": `{"type":"object","properties":{"rules":{"type":"array","items":{"type":"object","properties":{` +
		`"match":{"type":"array","items":{"type":"object","properties":{"vars":{"type":"array"}}}},` +
		`"weighted_upstreams":{"type":"array","minItems":1,"maxItems":20,"items":{"type":"object","properties":{` +
		`"upstream_id":{"anyOf":[{"type":"string","minLength":1,"maxLength":64,"pattern":"^[a-zA-Z0-9-_.]+$"},{"type":"integer","minimum":1}]},` +
		`"upstream":{"type":"object"},` +
		`"weight":{"type":"integer","minimum":0,"default":1}}}}}}}}}`,
	"prometheus": `{"type":"object","properties":{"prefer_name":{"type":"boolean","default":false}}}`,
	"syslog": `{"type":"object","properties":{` +
		`"host":{"type":"string"},"port":{"type":"integer"},` +
		`"flush_limit":{"type":"integer","minimum":1,"default":4096},` +
		`"drop_limit":{"type":"integer","default":1048576},` +
		`"timeout":{"type":"integer","minimum":1,"default":3000},` +
		`"sock_type":{"type":"string","default":"tcp","enum":["tcp","udp"]},` +
		`"pool_size":{"type":"integer","minimum":5,"default":5},` +
		`"tls":{"type":"boolean","default":false},` +
		`"log_format":{"type":"object"},` +
		`"name":{"type":"string","default":"stream sys logger"},` +
		`"batch_max_size":{"type":"integer","minimum":1,"default":1000},` +
		`"inactive_timeout":{"type":"integer","minimum":1,"default":5},` +
		`"buffer_duration":{"type":"integer","minimum":1,"default":60},` +
		`"max_retry_count":{"type":"integer","minimum":0,"default":0},` +
		`"retry_delay":{"type":"integer","minimum":0,"default":1}},` +
		`"required":["host","port"]}`,
}
