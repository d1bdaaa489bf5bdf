package logformat

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestBuild(t *testing.T) {
	vars := map[string]string{"remote_addr": "127.0.0.1", "remote_port": "40000", "server_port": "9100", "mqtt_client_id": "c1"}
	lookup := func(n string) (string, bool) { v, ok := vars[n]; return v, ok }
	tests := []struct {
		name, format, want string
	}{
		{"variables", `{"client_ip": "$remote_addr", "port": "$server_port"}`, `{"client_ip":"127.0.0.1","port":"9100"}`},
		{"literals kept", `{"app": "gw", "n": 1, "b": true, "z": null, "dollar": "a$remote_addr"}`, `{"app":"gw","b":true,"dollar":"a$remote_addr","n":1,"z":null}`},
		{"missing variable left out", `{"id": "$mqtt_client_id", "nope": "$no_such_var"}`, `{"id":"c1"}`},
		{"bare dollar is the variable named empty", `{"d": "$"}`, `{}`},
		{"nested", `{"client": {"addr": "$remote_addr", "port": "$remote_port"}, "srv": {"port": "$server_port"}}`,
			`{"client":{"addr":"127.0.0.1","port":"40000"},"srv":{"port":"9100"}}`},
		{"array", `{"a": ["$remote_addr", "$nope", "x"]}`, `{"a":["127.0.0.1",null,"x"]}`},
		{"depth limit 5", `{"l2": {"l3": {"l4": {"l5": {"l6": {"x": "$remote_addr"}, "v": "$remote_port"}}}}}`,
			`{"l2":{"l3":{"l4":{"l5":{"l6":{},"v":"40000"}}}}}`},
		{"empty", `{}`, `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dec := json.NewDecoder(strings.NewReader(tt.format))
			dec.UseNumber()
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				t.Fatal(err)
			}
			got, err := json.Marshal(Compile(m).Build(lookup))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}
