package model

// mqttProxySchema is apisix/stream/plugins/mqtt-proxy.lua's schema:
// protocol_level is required, protocol_name defaults to "MQTT" (optional
// since APISIX 3.15).
var mqttProxySchema = &schema{
	typ: "object",
	props: []prop{
		{"protocol_name", &schema{typ: "string", def: "MQTT"}},
		{"protocol_level", &schema{typ: "integer"}},
		{"_meta", metaDef},
	},
	required: []string{"protocol_level"},
}

// checkMQTTProxy is mqtt-proxy's check_schema.
func checkMQTTProxy(conf any) error {
	if ok, msg := mqttProxySchema.validate(conf); !ok {
		return &Error{Msg: msg}
	}
	return nil
}
