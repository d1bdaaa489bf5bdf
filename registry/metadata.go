package registry

import "github.com/caddy-apisix/stream/model"

// PluginMetadata returns the stored plugin_metadata of plugin name in v,
// nil when there is none: what a plugin reads at compile time (syslog's
// log_format, apisix/utils/log-util.lua). A value that does not decode
// counts as none.
func PluginMetadata(v View, name string) model.Metadata {
	o := v.Get(model.PluginMetadata, name)
	if o == nil {
		return nil
	}
	m, err := model.ParseMetadata(o.Value)
	if err != nil {
		return nil
	}
	return m
}
