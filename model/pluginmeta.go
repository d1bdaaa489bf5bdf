package model

// emptyMetadataSchema is the metadata_schema APISIX injects for a plugin
// without one: an object with no declared properties
// (apisix/admin/plugin_metadata.lua inject_metadata_schema).
var emptyMetadataSchema = &schema{typ: "object"}

// CheckPluginMetadata is the checker of apisix/admin/plugin_metadata.lua,
// run on a present body. APISIX accepts the name of any plugin module,
// HTTP (apisix/plugins/<name>.lua) or stream; this gateway knows the stream
// plugins, so another name gives "invalid plugin name". Then conf must
// pass the plugin's metadata_schema: the unit's MetadataSchema (the
// document GET /apisix/admin/plugins?subsystem=stream&all=true publishes),
// else the injected empty one. As apisix/admin/resource.lua does, the
// check runs on a copy: conf is stored as sent, without the schema
// defaults. Errors are *Error.
func CheckPluginMetadata(name string, conf any) error {
	p, ok := streamPlugins[name]
	if !ok {
		return &Error{Msg: "invalid plugin name"}
	}
	conf = cloneDefault(conf)
	s := emptyMetadataSchema
	if p.MetadataSchema != nil {
		s = p.MetadataSchema.s
	}
	if ok, msg := s.validate(conf); !ok {
		return &Error{Msg: "invalid configuration: " + msg}
	}
	return nil
}
