package model

// batchProcessorProps are the properties the batch processor manager adds
// to a logger plugin's schema (apisix/utils/batch-processor.lua schema,
// wrapped by apisix/utils/batch-processor-manager.lua wrap_schema with
// name's default set to the manager's name).
func batchProcessorProps(name string) []prop {
	return []prop{
		{"name", &schema{typ: "string", def: name}},
		{"max_retry_count", &schema{typ: "integer", minimum: num(0), def: jsonNum(0)}},
		{"retry_delay", &schema{typ: "integer", minimum: num(0), def: jsonNum(1)}},
		{"buffer_duration", &schema{typ: "integer", minimum: num(1), def: jsonNum(60)}},
		{"inactive_timeout", &schema{typ: "integer", minimum: num(1), def: jsonNum(5)}},
		{"batch_max_size", &schema{typ: "integer", minimum: num(1), def: jsonNum(1000)}},
	}
}

var (
	// syslogSchema is apisix/stream/plugins/syslog.lua's schema with the
	// batch processor's properties.
	syslogSchema = &schema{
		typ: "object",
		props: append([]prop{
			{"host", &schema{typ: "string"}},
			{"port", &schema{typ: "integer"}},
			{"flush_limit", &schema{typ: "integer", minimum: num(1), def: jsonNum(4096)}},
			{"drop_limit", &schema{typ: "integer", def: jsonNum(1048576)}},
			{"timeout", &schema{typ: "integer", minimum: num(1), def: jsonNum(3000)}},
			{"log_format", &schema{typ: "object"}},
			{"sock_type", &schema{typ: "string", enum: []any{"tcp", "udp"}, def: "tcp"}},
			{"pool_size", &schema{typ: "integer", minimum: num(5), def: jsonNum(5)}},
			{"tls", &schema{typ: "boolean", def: false}},
		}, append(batchProcessorProps("stream sys logger"), prop{"_meta", metaDef})...),
		required: []string{"host", "port"},
	}

	// syslogMetadataSchema is the stream syslog plugin's metadata schema
	// (plugin_metadata/syslog): log_format, and max_pending_entries as
	// batch-processor-manager.lua wrap_metadata_schema adds it.
	syslogMetadataSchema = &schema{
		typ: "object",
		props: []prop{
			{"log_format", &schema{typ: "object"}},
			{"max_pending_entries", &schema{typ: "integer", minimum: num(1), def: jsonNum(8192)}},
		},
	}
)

// checkSyslog is the stream syslog plugin's check_schema for a plugin conf.
func checkSyslog(conf any) error {
	if ok, msg := syslogSchema.validate(conf); !ok {
		return &Error{Msg: msg}
	}
	return nil
}

// CheckSyslogMetadata is the stream syslog plugin's check_schema for its
// plugin_metadata (core.schema.TYPE_METADATA), inserting defaults.
func CheckSyslogMetadata(conf any) error {
	if ok, msg := syslogMetadataSchema.validate(conf); !ok {
		return &Error{Msg: msg}
	}
	return nil
}
