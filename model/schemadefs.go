package model

// The APISIX schemas of the stream subsystem (apisix/schema_def.lua as of
// 3.18 plus the post-snapshot stream-route fields of docs/apisix/stream-routes.md#several-snis).
// Properties are listed in the order they are checked.

// hostDefPat is APISIX's host_def pattern (route sni, ssl sni, node host).
const hostDefPat = `^\*$|^\*?[0-9a-zA-Z-._\[\]:]+$`

// hashVarsPat is upstream_hash_vars_schema's pattern (chash key, hash_on vars).
const hashVarsPat = `^((uri|server_name|server_addr|request_uri|remote_port|remote_addr|query_string|host|hostname|mqtt_client_id)|arg_[0-9a-zA-z_-]+)$`

// hashHeaderPat is upstream_hash_header_schema's pattern (hash_on header/cookie).
const hashHeaderPat = `^[a-zA-Z0-9-_]+$`

// objectProps is props after the metadata every object schema starts with:
// id, name, desc, labels, create_time, update_time.
func objectProps(props []prop) []prop {
	return append([]prop{
		{"id", idSchema},
		{"name", ruleNameDef},
		{"desc", descDef},
		{"labels", labelsDef},
		{"create_time", timestampDef},
		{"update_time", timestampDef},
	}, props...)
}

var (
	idSchema = &schema{anyOf: []*schema{
		{typ: "string", minLen: 1, maxLen: 64, pattern: pat(`^[a-zA-Z0-9-_.]+$`)},
		{typ: "integer", minimum: num(1)},
	}}

	hostDef = &schema{typ: "string", pattern: pat(hostDefPat)}

	ipDef = []*schema{
		{typ: "string", format: "ipv4"},
		{typ: "string", pattern: pat(`^([0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])\.([0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])\.([0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])\.([0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])/([12]?[0-9]|3[0-2])$`)},
		{typ: "string", format: "ipv6"},
		{typ: "string", pattern: pat(`^([a-fA-F0-9]{0,4}:){1,8}(:[a-fA-F0-9]{0,4}){0,8}([a-fA-F0-9]{0,4})?/[0-9]{1,3}$`)},
	}

	timestampDef = &schema{typ: "integer"}

	labelsDef = &schema{typ: "object", patProps: []patProp{{
		re: pat(".*"),
		s:  &schema{typ: "string", pattern: pat(`^\S+$`), maxLen: 256, minLen: 1},
	}}}

	ruleNameDef = &schema{typ: "string", minLen: 1, maxLen: 256}
	descDef     = &schema{typ: "string", maxLen: 256}

	certificateDef = &schema{typ: "string", minLen: 128, maxLen: 64 * 1024}
	privateKeyDef  = &schema{typ: "string", minLen: 64, maxLen: 64 * 1024}

	// secretURIDef is a $secret:// or $env:// reference, resolved at use.
	secretURIDef = &schema{typ: "string", pattern: pat(`^\$(secret|env|ENV)://`)}
	sslCertDef   = &schema{oneOf: []*schema{certificateDef, secretURIDef}}
	sslKeyDef    = &schema{oneOf: []*schema{privateKeyDef, secretURIDef}}

	httpStatuses = func(def []any) *schema {
		return &schema{typ: "array", minItems: 1, unique: true, def: def,
			items: &schema{typ: "integer", minimum: num(200), maximum: num(599)}}
	}
	counter = func(def int) *schema {
		return &schema{typ: "integer", minimum: num(1), maximum: num(254), def: jsonNum(def)}
	}

	healthChecker = &schema{
		typ: "object",
		props: []prop{
			{"active", &schema{typ: "object", props: []prop{
				{"type", &schema{typ: "string", enum: []any{"http", "https", "tcp"}, def: "http"}},
				{"timeout", &schema{typ: "number", def: jsonNum(1)}},
				{"concurrency", &schema{typ: "integer", def: jsonNum(10)}},
				{"host", hostDef},
				{"port", &schema{typ: "integer", minimum: num(1), maximum: num(65535)}},
				{"http_path", &schema{typ: "string", def: "/"}},
				{"https_verify_certificate", &schema{typ: "boolean", def: true}},
				{"healthy", &schema{typ: "object", props: []prop{
					{"interval", &schema{typ: "integer", minimum: num(1), def: jsonNum(1)}},
					{"http_statuses", httpStatuses(numList(200, 302))},
					{"successes", counter(2)},
				}}},
				{"unhealthy", &schema{typ: "object", props: []prop{
					{"interval", &schema{typ: "integer", minimum: num(1), def: jsonNum(1)}},
					{"http_statuses", httpStatuses(numList(429, 404, 500, 501, 502, 503, 504, 505))},
					{"http_failures", counter(5)},
					{"tcp_failures", counter(2)},
					{"timeouts", counter(3)},
				}}},
				{"req_headers", &schema{typ: "array", minItems: 1, items: &schema{typ: "string", unique: true}}},
			}}},
			{"passive", &schema{typ: "object", props: []prop{
				{"type", &schema{typ: "string", enum: []any{"http", "https", "tcp"}, def: "http"}},
				{"healthy", &schema{typ: "object", props: []prop{
					{"http_statuses", httpStatuses(numList(200, 201, 202, 203, 204, 205, 206, 207,
						208, 226, 300, 301, 302, 303, 304, 305, 306, 307, 308))},
					{"successes", counter(5)},
				}}},
				{"unhealthy", &schema{typ: "object", props: []prop{
					{"http_statuses", httpStatuses(numList(429, 500, 503))},
					{"tcp_failures", counter(2)},
					{"timeouts", counter(7)},
					{"http_failures", counter(5)},
				}}},
			}}},
		},
		noAddProps: true,
		anyOf: []*schema{
			{required: []string{"active"}},
			{required: []string{"active", "passive"}},
		},
	}

	nodesSchema = &schema{anyOf: []*schema{
		{typ: "object", patProps: []patProp{{
			re: pat(".*"),
			s:  &schema{typ: "integer", minimum: num(0)},
		}}},
		{typ: "array", items: &schema{
			typ: "object",
			props: []prop{
				{"host", hostDef},
				{"port", &schema{typ: "integer", minimum: num(1), maximum: num(65535)}},
				{"weight", &schema{typ: "integer", minimum: num(0)}},
				{"priority", &schema{typ: "integer", def: jsonNum(0)}},
				{"metadata", &schema{typ: "object"}},
			},
			required: []string{"host", "weight"},
		}},
	}}

	// upstreamSchema is _M.upstream (docs/apisix/upstreams.md#fields).
	upstreamSchema = &schema{
		typ: "object",
		props: objectProps([]prop{
			{"nodes", nodesSchema},
			{"service_name", &schema{typ: "string", minLen: 1, maxLen: 256}},
			{"discovery_type", &schema{typ: "string"}},
			{"discovery_args", &schema{typ: "object", props: []prop{
				{"namespace_id", &schema{typ: "string"}},
				{"group_name", &schema{typ: "string"}},
			}}},
			{"type", &schema{typ: "string", def: "roundrobin"}},
			{"hash_on", &schema{typ: "string", def: "vars",
				enum: []any{"vars", "header", "cookie", "consumer", "vars_combinations"}}},
			{"key", &schema{typ: "string"}},
			{"retries", &schema{typ: "integer", minimum: num(0)}},
			{"retry_timeout", &schema{typ: "number", minimum: num(0)}},
			{"timeout", &schema{typ: "object",
				props: []prop{
					{"connect", &schema{typ: "number", exclMin: num(0)}},
					{"send", &schema{typ: "number", exclMin: num(0)}},
					{"read", &schema{typ: "number", exclMin: num(0)}},
				},
				required: []string{"connect", "send", "read"},
			}},
			{"scheme", &schema{def: "http",
				enum: []any{"grpc", "grpcs", "http", "https", "tcp", "tls", "udp", "kafka"}}},
			{"tls", &schema{typ: "object",
				props: []prop{
					{"client_cert_id", idSchema},
					{"client_cert", certificateDef},
					{"client_key", privateKeyDef},
					{"verify", &schema{typ: "boolean", def: false}},
				},
				deps: []dep{
					{name: "client_cert", s: &schema{
						required: []string{"client_key"},
						not:      &schema{required: []string{"client_cert_id"}},
					}},
					{name: "client_key", s: &schema{
						required: []string{"client_cert"},
						not:      &schema{required: []string{"client_cert_id"}},
					}},
					{name: "client_cert_id", s: &schema{
						not: &schema{required: []string{"client_cert", "client_key"}},
					}},
				},
			}},
			{"checks", healthChecker},
			{"pass_host", &schema{typ: "string", enum: []any{"pass", "node", "rewrite"}, def: "pass"}},
			{"upstream_host", hostDef},
			{"keepalive_pool", &schema{typ: "object", props: []prop{
				{"size", &schema{typ: "integer", minimum: num(1), def: jsonNum(320)}},
				{"idle_timeout", &schema{typ: "number", minimum: num(0), def: jsonNum(60)}},
				{"requests", &schema{typ: "integer", minimum: num(1), def: jsonNum(1000)}},
			}}},
		}),
		oneOf: []*schema{
			{required: []string{"nodes"}},
			{required: []string{"service_name", "discovery_type"}},
		},
		noAddProps: true,
	}

	// protocolSchema is the xRPC `protocol` object of a stream route.
	protocolSchema = &schema{
		typ: "object",
		props: []prop{
			{"name", &schema{typ: "string"}},
			{"superior_id", idSchema},
			{"conf", &schema{typ: "object"}},
			{"logger", &schema{typ: "array", items: &schema{
				props: []prop{
					{"name", &schema{typ: "string"}},
					{"filter", &schema{typ: "array"}},
					{"conf", &schema{typ: "object"}},
				},
				deps: []dep{{name: "name", names: []string{"conf"}}},
			}}},
		},
		required: []string{"name"},
	}

	// streamRouteSchema is _M.stream_route (docs/apisix/stream-routes.md#schema, docs/apisix/stream-routes.md#several-snis).
	streamRouteSchema = &schema{
		typ: "object",
		props: objectProps([]prop{
			{"remote_addr", &schema{typ: "string", anyOf: ipDef}},
			{"server_addr", &schema{typ: "string", anyOf: ipDef}},
			{"server_port", &schema{typ: "integer", minimum: num(1), maximum: num(65535)}},
			{"sni", hostDef},
			{"snis", &schema{typ: "array", minItems: 1, items: hostDef}},
			{"tls_passthrough", &schema{typ: "boolean"}},
			{"upstream", upstreamSchema},
			{"upstream_id", idSchema},
			{"service_id", idSchema},
			{"plugins", &schema{typ: "object"}},
			{"protocol", protocolSchema},
		}),
		noAddProps: true,
		not:        &schema{required: []string{"sni", "snis"}},
	}

	// sslSchema is _M.ssl (docs/apisix/tls.md#ssl-object-schema).
	sslSchema = &schema{
		typ: "object",
		props: []prop{
			{"id", idSchema},
			{"desc", descDef},
			{"labels", labelsDef},
			{"type", &schema{typ: "string", enum: []any{"server", "client"}, def: "server"}},
			{"cert", sslCertDef},
			{"key", sslKeyDef},
			{"sni", hostDef},
			{"snis", &schema{typ: "array", minItems: 1, items: hostDef}},
			{"certs", &schema{typ: "array", items: sslCertDef}},
			{"keys", &schema{typ: "array", items: sslKeyDef}},
			{"client", &schema{typ: "object",
				props: []prop{
					{"ca", certificateDef},
					{"depth", &schema{typ: "integer", minimum: num(0), def: jsonNum(1)}},
					{"skip_mtls_uri_regex", &schema{typ: "array", minItems: 1, unique: true,
						items: &schema{typ: "string"}}},
				},
				required: []string{"ca"},
			}},
			{"status", &schema{typ: "integer", enum: []any{jsonNum(1), jsonNum(0)}, def: jsonNum(1)}},
			{"ssl_protocols", &schema{typ: "array", maxItems: 3, unique: true,
				items: &schema{enum: []any{"TLSv1.1", "TLSv1.2", "TLSv1.3"}}}},
			{"validity_start", timestampDef},
			{"validity_end", timestampDef},
			{"create_time", timestampDef},
			{"update_time", timestampDef},
		},
		ifS: &schema{props: []prop{{"type", &schema{enum: []any{"server"}}}}},
		thenS: &schema{oneOf: []*schema{
			{required: []string{"sni", "key", "cert"}},
			{required: []string{"snis", "key", "cert"}},
		}},
		elseS:      &schema{required: []string{"key", "cert"}},
		noAddProps: true,
	}

	// hashKeySchemas check an upstream's chash key by hash_on.
	hashKeySchemas = map[string]*schema{
		"vars":              {typ: "string", pattern: pat(hashVarsPat)},
		"header":            {typ: "string", pattern: pat(hashHeaderPat)},
		"cookie":            {typ: "string", pattern: pat(hashHeaderPat)},
		"vars_combinations": {typ: "string"},
	}
)
