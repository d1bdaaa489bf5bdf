package model

import (
	"encoding/json"
	"maps"
)

// Service is an APISIX service as stream routes use it (apisix/schema_def.lua
// _M.service). Only Plugins, Upstream and UpstreamID matter to the stream
// subsystem; Hosts, Script and EnableWebsocket are HTTP fields, accepted
// and stored as APISIX does but never read here.
type Service struct {
	ID              ID                         `json:"id,omitempty"`
	Name            string                     `json:"name,omitempty"`
	Desc            string                     `json:"desc,omitempty"`
	Labels          map[string]string          `json:"labels,omitempty"`
	Plugins         map[string]json.RawMessage `json:"plugins,omitempty"`
	Upstream        *Upstream                  `json:"upstream,omitempty"`
	UpstreamID      ID                         `json:"upstream_id,omitempty"`
	Script          string                     `json:"script,omitempty"`
	EnableWebsocket bool                       `json:"enable_websocket,omitempty"`
	Hosts           []string                   `json:"hosts,omitempty"`
	CreateTime      int64                      `json:"create_time,omitempty"`
	UpdateTime      int64                      `json:"update_time,omitempty"`
}

// serviceSchema is _M.service of apisix/schema_def.lua.
var serviceSchema = &schema{
	typ: "object",
	props: objectProps([]prop{
		{"plugins", &schema{typ: "object"}},
		{"upstream", upstreamSchema},
		{"upstream_id", idSchema},
		{"script", &schema{typ: "string", minLen: 10, maxLen: 102400}},
		{"enable_websocket", &schema{typ: "boolean"}},
		{"hosts", &schema{typ: "array", items: hostDef, minItems: 1, unique: true}},
	}),
	noAddProps: true,
}

// streamOnlyPlugins are the stream plugins with no HTTP namesake. A
// service's plugins are checked against APISIX's HTTP plugin table
// (apisix/admin/services.lua calls apisix/admin/plugins.lua check_schema),
// so they are unknown there.
var streamOnlyPlugins = map[string]bool{"mqtt-proxy": true}

// CheckService validates a service body after the admin layer's id and
// create_time checks, in the order of apisix/admin/services.lua check_conf:
// schema, the inline upstream's full check_upstream_conf, upstream_id,
// plugins (with the HTTP texts of apisix/plugin.lua
// check_single_plugin_schema). A script is only schema-checked: there is no
// Lua here, and stream never runs it. Errors are *Error.
func CheckService(obj map[string]any, refs Refs) error {
	if ok, msg := serviceSchema.validate(obj); !ok {
		return &Error{Msg: "invalid configuration: " + msg}
	}
	if up, ok := obj["upstream"].(map[string]any); ok {
		if err := CheckUpstream(up, refs); err != nil {
			return err
		}
	}
	if err := checkUpstreamID(obj, refs); err != nil {
		return err
	}
	if plugins, ok := obj["plugins"].(map[string]any); ok {
		return httpPlugins.check(plugins, refs.SkipUnknownPlugins)
	}
	return nil
}

// httpPlugins is the table services are checked against (apisix/plugin.lua
// check_schema over the HTTP plugins, with its texts): the stream plugins
// known here minus the stream-only ones.
var httpPlugins = pluginTable{
	known: func(name string) bool {
		_, ok := KnownStreamPlugins[name]
		return ok && !streamOnlyPlugins[name]
	},
	failed: func(name string) string { return "failed to check the configuration of plugin " + name + " err: " },
}

// ParseService decodes a validated service body.
func ParseService(b []byte) (*Service, error) {
	var s Service
	if err := decodeStrict(b, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// EffectiveRoute is the stream route a session runs with once its service
// is merged in (apisix/init.lua stream_preread_phase and apisix/plugin.lua
// merge_service_stream_route):
//   - a route without service_id, or with its own upstream_id, is used as
//     it is: the service is ignored entirely, plugins included;
//   - otherwise the service's plugins are added where the route has no
//     plugin of that name (the route wins), and the upstream is the
//     route's inline one, else the service's inline one, else the
//     service's upstream_id.
//
// svc is the service named by r.ServiceID, nil when it does not exist;
// then ok is false and the session must be closed ("failed to fetch
// service configuration by id"). Neither r nor svc is modified: a merged
// route is a copy (its ServiceID kept, for the service_id variable) that
// shares the unchanged parts of both, so it must not be modified either.
func EffectiveRoute(r *StreamRoute, svc *Service) (eff *StreamRoute, ok bool) {
	if r.ServiceID == "" || r.UpstreamID != "" {
		return r, true
	}
	if svc == nil {
		return nil, false
	}
	m := *r
	switch {
	case len(svc.Plugins) == 0:
	case len(r.Plugins) == 0:
		m.Plugins = svc.Plugins // shared: merged routes are read-only
	default:
		m.Plugins = make(map[string]json.RawMessage, len(r.Plugins)+len(svc.Plugins))
		maps.Copy(m.Plugins, svc.Plugins)
		maps.Copy(m.Plugins, r.Plugins)
	}
	if m.Upstream == nil {
		m.Upstream = svc.Upstream
		if m.Upstream == nil {
			m.UpstreamID = svc.UpstreamID
		}
	}
	return &m, true
}
