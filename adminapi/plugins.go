package adminapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddy-apisix/stream/model"

	"github.com/caddy-apisix/stream/internal/lua"
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
	list := model.StreamPluginList()
	names := make([]string, len(list))
	for i, p := range list {
		names[i] = p.Name
	}
	return reply{status: http.StatusOK, body: names}, nil
}

// pluginInfo is one entry of GET /apisix/admin/plugins?all=true
// (apisix/admin/plugins.lua get_plugins_list with all: the plugin's
// schema, metadata schema and priority, by name).
type pluginInfo struct {
	Schema         json.RawMessage `json:"schema"`
	MetadataSchema json.RawMessage `json:"metadata_schema,omitempty"`
	Priority       int             `json:"priority"`
	Version        float64         `json:"version"`
}

// pluginSchema answers GET /apisix/admin/plugins/<name>?subsystem=stream
// with the plugin's JSON schema, and GET /apisix/admin/plugins?all=true
// with every plugin of the subsystem.
func pluginSchema(name string, query url.Values) (reply, error) {
	sub := "http"
	if v, ok := query["subsystem"]; ok {
		sub = v[0]
	}
	if sub != "http" && sub != "stream" {
		return reply{}, errMsg(http.StatusBadRequest, "unsupported subsystem: "+sub)
	}
	if name == "" {
		if _, all := query["all"]; all {
			out := map[string]pluginInfo{}
			if sub == "stream" {
				for _, p := range model.StreamPluginList() {
					info := pluginInfo{Schema: p.Schema.JSON(), Priority: p.Priority, Version: 0.1}
					if p.MetadataSchema != nil {
						info.MetadataSchema = p.MetadataSchema.JSON()
					}
					out[p.Name] = info
				}
			}
			return reply{status: http.StatusOK, body: out}, nil
		}
	}
	p, known := model.LookupStreamPlugin(name)
	if !known || sub != "stream" {
		return reply{}, errMsg(http.StatusNotFound, "plugin not found in subsystem "+sub)
	}
	return reply{status: http.StatusOK, body: p.Schema.JSON()}, nil
}

// schemaValidate answers POST /apisix/admin/schema/validate/<resource>:
// the body is checked as an object of that kind would be, with every
// reference taken to exist; 200 with no body when it passes.
func schemaValidate(r *http.Request, res string) (reply, error) {
	kind, ok := objectKinds[res]
	if !ok || kind == model.PluginMetadata {
		// plugin_metadata has no resource schema in APISIX
		return reply{}, errMsg(http.StatusNotFound, "Unsupported resource type: "+res)
	}
	body, hasBody, aerr := readBody(r)
	if aerr != nil {
		return reply{}, aerr
	}
	obj, isObj := body.(map[string]any)
	if !hasBody {
		// no body: jsonschema checks Lua nil
		return reply{}, errMsg(http.StatusBadRequest, "wrong type: expected object, got nil")
	}
	if !isObj {
		return reply{}, errMsg(http.StatusBadRequest, "wrong type: expected object, got "+lua.Type(body))
	}
	err := model.Check(kind, obj, model.RefsExist())
	if err != nil {
		// APISIX reports the bare jsonschema message here.
		return reply{}, errMsg(http.StatusBadRequest, strings.TrimPrefix(err.Error(), "invalid configuration: "))
	}
	return reply{status: http.StatusOK}, nil
}
