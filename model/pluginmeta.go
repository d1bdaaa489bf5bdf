package model

// unitlessPlugins are APISIX's stream plugins that have no unit in this
// build yet, with their metadata_schema, so plugin_metadata/<name> is
// accepted for them as APISIX accepts it. A registered plugin unit's
// MetadataSchema takes precedence.
var unitlessPlugins = map[string]*schema{
	"traffic-split": emptyMetadataSchema,
	// apisix/plugins/prometheus.lua metadata_schema; the labels each
	// metric may drop are not checked one by one here.
	"prometheus": {typ: "object", props: []prop{
		{"disabled_labels", &schema{typ: "object"}},
	}},
}

// emptyMetadataSchema is the metadata_schema APISIX injects for a plugin
// without one: an object with no declared properties
// (apisix/admin/plugin_metadata.lua inject_metadata_schema).
var emptyMetadataSchema = &schema{typ: "object"}

// CheckPluginMetadata is the checker of apisix/admin/plugin_metadata.lua,
// run on a present body. APISIX accepts the name of any plugin module,
// HTTP (apisix/plugins/<name>.lua) or stream; this gateway knows the stream
// plugins, so another name gives "invalid plugin name". Then conf must
// pass the plugin's metadata_schema: the unit's MetadataSchema, else the
// injected empty one. As apisix/admin/resource.lua does, the check runs on
// a copy: conf is stored as sent, without the schema defaults. Errors are
// *Error.
func CheckPluginMetadata(name string, conf any) error {
	conf = cloneDefault(conf)
	s := emptyMetadataSchema
	if p, ok := streamPlugins[name]; ok {
		if p.MetadataSchema != nil {
			s = p.MetadataSchema.s
		}
	} else if s, ok = unitlessPlugins[name]; !ok {
		return &Error{Msg: "invalid plugin name"}
	}
	if ok, msg := s.validate(conf); !ok {
		return &Error{Msg: "invalid configuration: " + msg}
	}
	return nil
}
