package model

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestProtocolPluginConfs: mqtt-proxy's and syslog's schemas, their
// APISIX error texts and the defaults they insert.
func TestProtocolPluginConfs(t *testing.T) {
	tests := []struct {
		plugin string
		conf   string
		err    string
		want   string // the conf after defaults, "" to skip
	}{
		{"mqtt-proxy", `{}`, `property "protocol_level" is required`, ""},
		{"mqtt-proxy", `{"protocol_level": 4}`, "", `{"protocol_level":4,"protocol_name":"MQTT"}`},
		{"mqtt-proxy", `{"protocol_name": "MQIsdp", "protocol_level": 3}`, "", `{"protocol_level":3,"protocol_name":"MQIsdp"}`},
		{"mqtt-proxy", `{"protocol_level": 4.5}`, `property "protocol_level" validation failed: wrong type: expected integer, got number`, ""},
		{"mqtt-proxy", `{"protocol_level": "5"}`, `property "protocol_level" validation failed: wrong type: expected integer, got string`, ""},
		{"mqtt-proxy", `{"protocol_name": 1, "protocol_level": 5}`, `property "protocol_name" validation failed: wrong type: expected string, got number`, ""},
		{"mqtt-proxy", `{"protocol_level": 5, "_meta": {"disable": "x"}}`, `property "_meta" validation failed: property "disable" validation failed: wrong type: expected boolean, got string`, ""},

		{"syslog", `{"port": 514}`, `property "host" is required`, ""},
		{"syslog", `{"host": "127.0.0.1"}`, `property "port" is required`, ""},
		{"syslog", `{"host": "127.0.0.1", "port": 514}`, "",
			`{"batch_max_size":1000,"buffer_duration":60,"drop_limit":1048576,"flush_limit":4096,"host":"127.0.0.1",` +
				`"inactive_timeout":5,"max_retry_count":0,"name":"stream sys logger","pool_size":5,"port":514,` +
				`"retry_delay":1,"sock_type":"tcp","timeout":3000,"tls":false}`},
		{"syslog", `{"host": "h", "port": 514, "sock_type": "unix"}`, `property "sock_type" validation failed: matches none of the enum values`, ""},
		{"syslog", `{"host": "h", "port": 514, "flush_limit": 0}`, `property "flush_limit" validation failed: expected 0 to be at least 1`, ""},
		{"syslog", `{"host": "h", "port": 514, "pool_size": 4}`, `property "pool_size" validation failed: expected 4 to be at least 5`, ""},
		{"syslog", `{"host": "h", "port": 514, "timeout": 0}`, `property "timeout" validation failed: expected 0 to be at least 1`, ""},
		{"syslog", `{"host": "h", "port": 514, "log_format": "$remote_addr"}`, `property "log_format" validation failed: wrong type: expected object, got string`, ""},
		{"syslog", `{"host": "h", "port": 514, "tls": "yes"}`, `property "tls" validation failed: wrong type: expected boolean, got string`, ""},
		{"syslog", `{"host": "h", "port": 514, "batch_max_size": 0}`, `property "batch_max_size" validation failed: expected 0 to be at least 1`, ""},
		{"syslog", `{"host": "h", "port": 514, "inactive_timeout": 0}`, `property "inactive_timeout" validation failed: expected 0 to be at least 1`, ""},
		{"syslog", `{"host": "h", "port": 514, "buffer_duration": 0}`, `property "buffer_duration" validation failed: expected 0 to be at least 1`, ""},
		{"syslog", `{"host": "h", "port": 514, "max_retry_count": -1}`, `property "max_retry_count" validation failed: expected -1 to be at least 0`, ""},
		{"syslog", `{"host": "h", "port": 514, "retry_delay": -1}`, `property "retry_delay" validation failed: expected -1 to be at least 0`, ""},
		{"syslog", `{"host": "h", "port": 514, "name": 7}`, `property "name" validation failed: wrong type: expected string, got number`, ""},
		{"syslog", `{"host": "h", "port": 514, "sock_type": "udp", "batch_max_size": 1, "flush_limit": 1, "name": "n",
			"log_format": {"client": "$remote_addr", "nested": {"p": "$remote_port"}}}`, "",
			`{"batch_max_size":1,"buffer_duration":60,"drop_limit":1048576,"flush_limit":1,"host":"h",` +
				`"inactive_timeout":5,"log_format":{"client":"$remote_addr","nested":{"p":"$remote_port"}},"max_retry_count":0,` +
				`"name":"n","pool_size":5,"port":514,"retry_delay":1,"sock_type":"udp","timeout":3000,"tls":false}`},
	}
	for _, tt := range tests {
		t.Run(tt.plugin+" "+tt.conf, func(t *testing.T) {
			conf := decode(t, tt.conf)
			wantErr(t, CheckPluginConf(tt.plugin, conf), tt.err)
			if tt.want == "" {
				return
			}
			if got, _ := json.Marshal(conf); string(got) != tt.want {
				t.Errorf("conf after defaults\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestSyslogMetadata(t *testing.T) {
	m := decode(t, `{"log_format": {"client_ip": "$remote_addr"}}`)
	wantErr(t, CheckSyslogMetadata(m), "")
	if want := decode(t, `{"log_format": {"client_ip": "$remote_addr"}, "max_pending_entries": 8192}`); !reflect.DeepEqual(m, want) {
		t.Errorf("metadata after defaults %v, want %v", m, want)
	}
	wantErr(t, CheckSyslogMetadata(decode(t, `{"log_format": []}`)), "")
	wantErr(t, CheckSyslogMetadata(decode(t, `{"log_format": 1}`)), `property "log_format" validation failed: wrong type: expected object, got number`)
	wantErr(t, CheckSyslogMetadata(decode(t, `{"max_pending_entries": 0}`)), `property "max_pending_entries" validation failed: expected 0 to be at least 1`)
}
