package model

// metadataPlugins are the plugin names /apisix/admin/plugin_metadata/<name>
// accepts, with their metadata_schema. APISIX accepts any plugin module,
// HTTP (apisix/plugins/<name>.lua, looked up first) or stream
// (apisix/stream/plugins/<name>.lua); this gateway knows the stream plugins
// only. A plugin without a metadata_schema gets APISIX's injected one, an
// object with no declared properties (apisix/admin/plugin_metadata.lua).
var metadataPlugins = map[string]*schema{
	"ip-restriction": emptyMetadataSchema,
	"limit-conn":     emptyMetadataSchema,
	"mqtt-proxy":     emptyMetadataSchema,
	"traffic-split":  emptyMetadataSchema,
	// apisix/plugins/prometheus.lua metadata_schema; the labels each
	// metric may drop are not checked one by one here.
	"prometheus": {typ: "object", props: []prop{
		{"disabled_labels", &schema{typ: "object"}},
	}},
	// apisix/plugins/syslog.lua metadata_schema (the HTTP module is found
	// first), wrapped by batch-processor-manager.lua wrap_metadata_schema.
	"syslog": {typ: "object", props: []prop{
		{"log_format_extra", &schema{typ: "object"}},
		{"log_format", &schema{typ: "object"}},
		{"max_pending_entries", &schema{typ: "integer", minimum: num(1), def: jsonNum(8192)}},
	}},
}

var emptyMetadataSchema = &schema{typ: "object"}

// CheckPluginMetadata is the checker of apisix/admin/plugin_metadata.lua,
// run on a present body: "invalid plugin name" for a name that is no
// plugin, then the plugin's metadata_schema. Schema defaults are inserted
// into conf. Errors are *Error.
func CheckPluginMetadata(name string, conf any) error {
	s, ok := metadataPlugins[name]
	if !ok {
		return &Error{Msg: "invalid plugin name"}
	}
	if ok, msg := s.validate(conf); !ok {
		return &Error{Msg: "invalid configuration: " + msg}
	}
	return nil
}

// Metadata is a plugin's stored metadata: the object as PUT, with "id"
// set to the plugin name. The data path reads it from a registry view,
// under kind PluginMetadata and the plugin's name, with ParseMetadata.
type Metadata map[string]any

// ParseMetadata decodes a stored plugin_metadata value.
func ParseMetadata(b []byte) (Metadata, error) {
	obj, err := DecodeObject(b)
	if err != nil {
		return nil, err
	}
	return Metadata(obj), nil
}

// LogFormat is the metadata's log_format object (syslog), nil when unset.
func (m Metadata) LogFormat() map[string]any {
	lf, _ := m["log_format"].(map[string]any)
	return lf
}
