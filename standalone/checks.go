package standalone

import "github.com/caddy-apisix/stream/model"

// checkers are the Admin API body checks per kind (model's), with
// references resolved by the caller.
var checkers = map[model.Kind]func(map[string]any, model.Refs) error{
	model.StreamRoutes:   model.CheckStreamRoute,
	model.Upstreams:      model.CheckUpstream,
	model.SSLs:           func(obj map[string]any, _ model.Refs) error { return model.CheckSSL(obj) },
	model.Services:       model.CheckService,
	model.PluginMetadata: checkPluginMetadata,
}

// checkPluginMetadata checks a plugin_metadata item, whose id is the
// plugin name (apisix/admin/plugin_metadata.lua check_conf).
func checkPluginMetadata(obj map[string]any, _ model.Refs) error {
	name := model.IDString(obj["id"])
	if name == "" {
		return &model.Error{Msg: "missing plugin name"}
	}
	return model.CheckPluginMetadata(name, obj)
}
