package plugin

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-apisix/stream/model"
)

func decodeJSON(t *testing.T, s string) map[string]any {
	t.Helper()
	m, err := model.DecodeObject([]byte(s))
	if err != nil {
		t.Fatalf("bad test JSON %q: %v", s, err)
	}
	return m
}

// The confs of mqtt-proxy and syslog on a stream route, with APISIX's
// error texts, and the defaults the check inserts.
func TestProtocolPluginConfs(t *testing.T) {
	const pre = "failed to check the configuration of stream plugin "
	tests := []struct {
		plugin, conf, err, want string
	}{
		{"mqtt-proxy", `{}`, pre + `[mqtt-proxy]: property "protocol_level" is required`, ""},
		{"mqtt-proxy", `{"protocol_level": 4}`, "", `{"protocol_level":4,"protocol_name":"MQTT"}`},
		{"mqtt-proxy", `{"protocol_name": "MQIsdp", "protocol_level": 3}`, "", `{"protocol_level":3,"protocol_name":"MQIsdp"}`},
		{"mqtt-proxy", `{"protocol_level": 4.5}`, pre + `[mqtt-proxy]: property "protocol_level" validation failed: wrong type: expected integer, got number`, ""},
		{"mqtt-proxy", `{"protocol_level": "5"}`, pre + `[mqtt-proxy]: property "protocol_level" validation failed: wrong type: expected integer, got string`, ""},
		{"mqtt-proxy", `{"protocol_name": 1, "protocol_level": 5}`, pre + `[mqtt-proxy]: property "protocol_name" validation failed: wrong type: expected string, got number`, ""},
		{"mqtt-proxy", `{"_meta": {"disable": true}}`, "", ""},

		{"syslog", `{"port": 514}`, pre + `[syslog]: property "host" is required`, ""},
		{"syslog", `{"host": "127.0.0.1"}`, pre + `[syslog]: property "port" is required`, ""},
		{"syslog", `{"host": "127.0.0.1", "port": 514}`, "",
			`{"batch_max_size":1000,"buffer_duration":60,"drop_limit":1048576,"flush_limit":4096,"host":"127.0.0.1",` +
				`"inactive_timeout":5,"max_retry_count":0,"name":"stream sys logger","pool_size":5,"port":514,` +
				`"retry_delay":1,"sock_type":"tcp","timeout":3000,"tls":false}`},
		{"syslog", `{"host": "h", "port": 514, "sock_type": "unix"}`, pre + `[syslog]: property "sock_type" validation failed: matches none of the enum values`, ""},
		{"syslog", `{"host": "h", "port": 514, "flush_limit": 0}`, pre + `[syslog]: property "flush_limit" validation failed: expected 0 to be at least 1`, ""},
		{"syslog", `{"host": "h", "port": 514, "pool_size": 4}`, pre + `[syslog]: property "pool_size" validation failed: expected 4 to be at least 5`, ""},
		{"syslog", `{"host": "h", "port": 514, "timeout": 0}`, pre + `[syslog]: property "timeout" validation failed: expected 0 to be at least 1`, ""},
		{"syslog", `{"host": "h", "port": 514, "log_format": "$remote_addr"}`, pre + `[syslog]: property "log_format" validation failed: wrong type: expected object, got string`, ""},
		{"syslog", `{"host": "h", "port": 514, "tls": "yes"}`, pre + `[syslog]: property "tls" validation failed: wrong type: expected boolean, got string`, ""},
		{"syslog", `{"host": "h", "port": 514, "batch_max_size": 0}`, pre + `[syslog]: property "batch_max_size" validation failed: expected 0 to be at least 1`, ""},
		{"syslog", `{"host": "h", "port": 514, "inactive_timeout": 0}`, pre + `[syslog]: property "inactive_timeout" validation failed: expected 0 to be at least 1`, ""},
		{"syslog", `{"host": "h", "port": 514, "buffer_duration": 0}`, pre + `[syslog]: property "buffer_duration" validation failed: expected 0 to be at least 1`, ""},
		{"syslog", `{"host": "h", "port": 514, "max_retry_count": -1}`, pre + `[syslog]: property "max_retry_count" validation failed: expected -1 to be at least 0`, ""},
		{"syslog", `{"host": "h", "port": 514, "retry_delay": -1}`, pre + `[syslog]: property "retry_delay" validation failed: expected -1 to be at least 0`, ""},
		{"syslog", `{"host": "h", "port": 514, "name": 7}`, pre + `[syslog]: property "name" validation failed: wrong type: expected string, got number`, ""},
		{"syslog", `{"host": "h", "port": 514, "sock_type": "udp", "batch_max_size": 1, "flush_limit": 1, "name": "n",
			"log_format": {"client": "$remote_addr", "nested": {"p": "$remote_port"}}}`, "",
			`{"batch_max_size":1,"buffer_duration":60,"drop_limit":1048576,"flush_limit":1,"host":"h",` +
				`"inactive_timeout":5,"log_format":{"client":"$remote_addr","nested":{"p":"$remote_port"}},"max_retry_count":0,` +
				`"name":"n","pool_size":5,"port":514,"retry_delay":1,"sock_type":"udp","timeout":3000,"tls":false}`},
	}
	for _, tt := range tests {
		t.Run(tt.plugin+" "+tt.conf, func(t *testing.T) {
			conf := decodeJSON(t, tt.conf)
			route := map[string]any{"plugins": map[string]any{tt.plugin: conf},
				"upstream": map[string]any{"type": "roundrobin", "nodes": map[string]any{"127.0.0.1:1883": json.Number("1")}}}
			err := model.CheckStreamRoute(route, model.Refs{})
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || err.Error() != tt.err) {
				t.Fatalf("error %v, want %q", err, tt.err)
			}
			if tt.want == "" {
				return
			}
			if got, _ := json.Marshal(conf); string(got) != tt.want {
				t.Errorf("conf after defaults\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestSyslogMetadataSchema(t *testing.T) {
	u, _ := Lookup("syslog")
	if u.MetadataSchema == "" {
		t.Fatal("no metadata schema")
	}
	s := model.MustCompileSchema(u.MetadataSchema)
	for _, tt := range []struct{ in, err string }{
		{`{"log_format": {"client_ip": "$remote_addr"}}`, ""},
		{`{"log_format": 1}`, `property "log_format" validation failed: wrong type: expected object, got number`},
		{`{"max_pending_entries": 0}`, `property "max_pending_entries" validation failed: expected 0 to be at least 1`},
	} {
		err := s.Validate(decodeJSON(t, tt.in))
		if tt.err == "" && err != nil || tt.err != "" && (err == nil || err.Error() != tt.err) {
			t.Errorf("%s: error %v, want %q", tt.in, err, tt.err)
		}
	}
}

// pipeClient is the server side of a connection whose client writes b
// in pieces of n bytes, then closes.
func pipeClient(t *testing.T, b []byte, n int) net.Conn {
	t.Helper()
	server, client := net.Pipe()
	t.Cleanup(func() { server.Close() })
	go func() {
		defer client.Close()
		for len(b) > 0 {
			k := min(n, len(b))
			if _, err := client.Write(b[:k]); err != nil {
				return
			}
			b = b[k:]
		}
	}()
	return server
}

func TestMQTTProxyPreread(t *testing.T) {
	v311 := []byte("\x10\x0f\x00\x04\x4d\x51\x54\x54\x04\x02\x00\x3c\x00\x03\x66\x6f\x6f")
	v5 := []byte("\x10\x1b\x00\x04\x4d\x51\x54\x54\x05\x02\x00\x3c\x05\x11\x00\x00\x0e\x10\x00\x09clint-111")
	v5Empty := []byte("\x10\x0d\x00\x04\x4d\x51\x54\x54\x05\x02\x00\x3c\x00\x00\x00")
	tests := []struct {
		name, conf string
		in         []byte
		id         string // "" none set
		refused    bool
	}{
		{"3.1.1", `{"protocol_level": 4}`, v311, "foo", false},
		{"3.1.1 in single bytes with a PUBLISH after", `{"protocol_level": 4}`, append(append([]byte{}, v311...), 0x30, 0x03, 0, 1, 't'), "foo", false},
		{"5 with properties", `{"protocol_level": 5}`, v5, "clint-111", false},
		{"5 empty client id", `{"protocol_level": 5}`, v5Empty, "", false},
		{"level mismatch", `{"protocol_level": 5}`, v311, "", true},
		{"name mismatch", `{"protocol_name": "MQIsdp", "protocol_level": 4}`, v311, "", true},
		{"mmm", `{"protocol_level": 4}`, []byte("mmm"), "", true},
		{"HTTP", `{"protocol_level": 4}`, []byte("GET / HTTP/1.1\r\n\r\n"), "", true},
	}
	u, _ := Lookup("mqtt-proxy")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inst, err := u.New(json.RawMessage(tt.conf), &Env{RouteID: "1"})
			if err != nil {
				t.Fatal(err)
			}
			s := &Session{}
			chunk := 4096
			if strings.Contains(tt.name, "single bytes") {
				chunk = 1
			}
			s.BindClient(pipeClient(t, tt.in, chunk), nil)
			err = inst.(Prereader).Preread(s)
			if tt.refused {
				var exit *Exit
				if !errors.As(err, &exit) || exit.Code != 503 {
					t.Fatalf("Preread = %v, want a 503 close", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Preread: %v", err)
			}
			if got := s.Get("mqtt_client_id"); got != tt.id {
				t.Errorf("mqtt_client_id %q, want %q", got, tt.id)
			}
			if !bytes.HasPrefix(tt.in, s.Captured()) || len(s.Captured()) < len(v5Empty) {
				t.Errorf("captured %x is not the client's first bytes %x", s.Captured(), tt.in)
			}
		})
	}
}

// The syslog unit: no log_format anywhere → APISIX's error and nothing
// sent; the conf's log_format, else the metadata's, with the log-phase
// variables and route_id / service_id.
func TestSyslogLog(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	port := pc.LocalAddr().(*net.UDPAddr).Port
	core, logs := observer.New(zapcore.DebugLevel)
	u, _ := Lookup("syslog")
	sh := NewShared()
	newInst := func(extra string) LogPhaser {
		conf := `{"host": "127.0.0.1", "port": ` + itoa(port) + `, "sock_type": "udp", "batch_max_size": 1, "flush_limit": 1` + extra + `}`
		inst, err := u.New(json.RawMessage(conf), &Env{RouteID: "r1", Logger: zap.New(core), Shared: sh})
		if err != nil {
			t.Fatal(err)
		}
		return inst.(LogPhaser)
	}
	s := &Session{}
	s.Remote = netip.MustParseAddrPort("127.0.0.1:40001")
	s.Local = netip.MustParseAddrPort("127.0.0.1:1883")
	s.RouteID, s.Protocol = "r1", "TCP"
	s.Put("mqtt_client_id", "dev-7")
	e := &Entry{Start: time.Now(), Duration: 1500 * time.Millisecond, Status: 200, Upstream: "127.0.0.1:1884", BytesReceived: 31, BytesSent: 4}

	newInst("").Log(s, e)
	if n := logs.FilterMessage("syslog's log_format is not set").Len(); n != 1 {
		t.Fatalf("%d 'log_format is not set' errors, want 1", n)
	}

	read := func() map[string]any {
		t.Helper()
		buf := make([]byte, 65536)
		_ = pc.SetReadDeadline(time.Now().Add(20 * time.Second))
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		msg := string(buf[:n])
		i := strings.Index(msg, " - - {")
		if !strings.HasPrefix(msg, "<46>1 ") || i < 0 {
			t.Fatalf("datagram %q", msg)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(msg[i+5:]), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	newInst(`, "log_format": {"client": "$remote_addr", "port": "$remote_port", "id": "$mqtt_client_id", "st": "$status",
		"up": "$upstream_addr", "in": "$bytes_received", "out": "$bytes_sent", "t": "$session_time", "none": "$nope", "app": "gw"}`).Log(s, e)
	got := read()
	want := map[string]any{"client": "127.0.0.1", "port": "40001", "id": "dev-7", "st": "200", "up": "127.0.0.1:1884",
		"in": "31", "out": "4", "t": "1.500", "app": "gw", "route_id": "r1"}
	if !equalJSON(got, want) {
		t.Errorf("entry %v, want %v", got, want)
	}

	sh.SetMetadata(map[string]json.RawMessage{"syslog": json.RawMessage(`{"log_format": {"client_ip": "$remote_addr"}}`)})
	s.ServiceID = "svc"
	newInst(`, "name": "from metadata"`).Log(s, e)
	if got, want := read(), map[string]any{"client_ip": "127.0.0.1", "route_id": "r1", "service_id": "svc"}; !equalJSON(got, want) {
		t.Errorf("entry %v, want %v", got, want)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func equalJSON(a, b map[string]any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
