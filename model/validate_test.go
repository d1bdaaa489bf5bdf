package model

import (
	"encoding/json"
	"strings"
	"testing"
)

// refs used by the tests: upstream "1"/"u1" exist, ssl "c1" is a client
// cert, "s1" a server cert; there are no services.
var testRefs = Refs{
	UpstreamExists: func(id string) bool { return id == "1" || id == "u1" },
	SSLType: func(id string) (string, bool) {
		switch id {
		case "c1":
			return "client", true
		case "s1":
			return "server", true
		}
		return "", false
	},
}

const hostPatQ = `"^\\*$|^\\*?[0-9a-zA-Z-._\\[\\]:]+$"`

func TestCheckStreamRoute(t *testing.T) {
	long := strings.Repeat("x", 300)
	cases := []struct {
		name, body, want string
	}{
		{"minimal", `{}`, ""},
		{"full", `{"id":"r-1","name":"n","desc":"d","labels":{"env":"prod"},"remote_addr":"127.0.0.1",
			"server_addr":"::1","server_port":9100,"sni":"*.test.com","tls_passthrough":true,
			"upstream":{"nodes":{"127.0.0.1:1995":1},"type":"roundrobin"},"plugins":{"limit-conn":{"conn":1,"burst":0,"default_conn_delay":0.1,"key":"remote_addr"}}}`, ""},
		{"integer id", `{"id":5}`, ""},
		{"snis", `{"snis":["a.test.com","*"]}`, ""},
		{"cidr v4", `{"remote_addr":"10.0.0.0/8"}`, ""},
		{"cidr v6", `{"server_addr":"fe80::/10"}`, ""},
		{"additional", `{"foo":1}`, "invalid configuration: additional properties forbidden, found foo"},
		{"port max", `{"server_port":70000}`, `invalid configuration: property "server_port" validation failed: expected 70000 to be at most 65535`},
		{"port min", `{"server_port":0}`, `invalid configuration: property "server_port" validation failed: expected 0 to be at least 1`},
		{"port string", `{"server_port":"80"}`, `invalid configuration: property "server_port" validation failed: wrong type: expected integer, got string`},
		{"port float", `{"server_port":1.5}`, `invalid configuration: property "server_port" validation failed: wrong type: expected integer, got number`},
		{"port null", `{"server_port":null}`, `invalid configuration: property "server_port" validation failed: wrong type: expected integer, got userdata`},
		{"remote_addr bad", `{"remote_addr":"abc"}`, `invalid configuration: property "remote_addr" validation failed: object matches none of the required`},
		{"remote_addr type", `{"remote_addr":1}`, `invalid configuration: property "remote_addr" validation failed: wrong type: expected string, got number`},
		{"server_addr cidr 33", `{"server_addr":"1.2.3.4/33"}`, `invalid configuration: property "server_addr" validation failed: object matches none of the required`},
		{"id pattern", `{"id":"*invalid"}`, `invalid configuration: property "id" validation failed: object matches none of the required`},
		{"id zero", `{"id":0}`, `invalid configuration: property "id" validation failed: object matches none of the required`},
		{"id long", `{"id":"` + strings.Repeat("a", 65) + `"}`, `invalid configuration: property "id" validation failed: object matches none of the required`},
		{"name empty", `{"name":""}`, `invalid configuration: property "name" validation failed: string too short, expected at least 1, got 0`},
		{"name long", `{"name":"` + strings.Repeat("n", 257) + `"}`, `invalid configuration: property "name" validation failed: string too long, expected at most 256, got 257`},
		{"desc long", `{"desc":"` + long + `"}`, `invalid configuration: property "desc" validation failed: string too long, expected at most 256, got 300`},
		{"desc utf8", `{"desc":"` + strings.Repeat("é", 257) + `"}`, `invalid configuration: property "desc" validation failed: string too long, expected at most 256, got 257`},
		{"labels space", `{"labels":{"k":"a b"}}`, `invalid configuration: property "labels" validation failed: failed to validate k (matching ".*"): failed to match pattern "^\\S+$" with "a b"`},
		{"labels type", `{"labels":{"k":1}}`, `invalid configuration: property "labels" validation failed: failed to validate k (matching ".*"): wrong type: expected string, got number`},
		{"labels array", `{"labels":["a"]}`, `invalid configuration: property "labels" validation failed: wrong type: expected object, got table`},
		{"sni pattern", `{"sni":"a b"}`, `invalid configuration: property "sni" validation failed: failed to match pattern ` + hostPatQ + ` with "a b"`},
		{"sni quote", `{"sni":"a\"b\n"}`, `invalid configuration: property "sni" validation failed: failed to match pattern ` + hostPatQ + ` with "a\"b\` + "\n" + `"`},
		{"snis empty", `{"snis":[]}`, `invalid configuration: property "snis" validation failed: expect array to have at least 1 items`},
		{"snis item", `{"snis":["ok.com","b d"]}`, `invalid configuration: property "snis" validation failed: failed to validate item 2: failed to match pattern ` + hostPatQ + ` with "b d"`},
		{"sni and snis", `{"sni":"a.com","snis":["b.com"]}`, "invalid configuration: value wasn't supposed to match schema"},
		{"tls_passthrough type", `{"tls_passthrough":"yes"}`, `invalid configuration: property "tls_passthrough" validation failed: wrong type: expected boolean, got string`},
		{"upstream nodes", `{"upstream":{"nodes":"x","type":"roundrobin"}}`, `invalid configuration: property "upstream" validation failed: property "nodes" validation failed: object matches none of the required`},
		{"upstream node weight", `{"upstream":{"nodes":[{"host":"127.0.0.1","port":80}]}}`, `invalid configuration: property "upstream" validation failed: property "nodes" validation failed: object matches none of the required`},
		{"upstream empty", `{"upstream":{}}`, `invalid configuration: property "upstream" validation failed: value should match only one schema, but matches none`},
		{"upstream extra", `{"upstream":{"nodes":{},"foo":1}}`, `invalid configuration: property "upstream" validation failed: additional properties forbidden, found foo`},
		// docs/apisix/admin-api.md#inline-upstreams-are-only-schema-checked: the inline upstream skips check_upstream_conf.
		{"inline chash no key", `{"upstream":{"nodes":{"127.0.0.1:1":1},"type":"chash"}}`, ""},
		{"inline unknown type", `{"upstream":{"nodes":{"127.0.0.1:1":1},"type":"magic"}}`, ""},
		{"inline bare v6", `{"upstream":{"nodes":[{"host":"::1","port":80,"weight":1}]}}`, ""},
		{"inline port key", `{"upstream":{"nodes":{"127.0.0.1:70000":1}}}`, ""},
		{"upstream_id int", `{"upstream_id":1}`, ""},
		{"upstream_id missing", `{"upstream_id":2}`, "failed to fetch upstream info by upstream id [2], response code: 404"},
		{"upstream_id missing str", `{"upstream_id":"nope"}`, "failed to fetch upstream info by upstream id [nope], response code: 404"},
		{"upstream_id bad", `{"upstream_id":"a b"}`, `invalid configuration: property "upstream_id" validation failed: object matches none of the required`},
		{"service_id", `{"upstream_id":"u1","service_id":"s1"}`, "failed to fetch service info by service id [s1], response code: 404"},
		{"plugins type", `{"plugins":[1]}`, `invalid configuration: property "plugins" validation failed: wrong type: expected object, got table`},
		{"unknown plugin", `{"plugins":{"kafka-logger":{}}}`, "unknown plugin [kafka-logger]"},
		{"plugin conf number", `{"plugins":{"ip-restriction":1}}`, "invalid plugin conf 1 for plugin [ip-restriction]"},
		{"plugin conf string", `{"plugins":{"ip-restriction":"a/b"}}`, `invalid plugin conf "a\/b" for plugin [ip-restriction]`},
		{"plugin conf null", `{"plugins":{"limit-conn":null}}`, "invalid plugin conf null for plugin [limit-conn]"},
		{"ip-restriction none", `{"plugins":{"ip-restriction":{}}}`, "failed to check the configuration of stream plugin [ip-restriction]: value should match only one schema, but matches none"},
		{"ip-restriction both", `{"plugins":{"ip-restriction":{"whitelist":["1.1.1.1"],"blacklist":["2.2.2.2"]}}}`, "failed to check the configuration of stream plugin [ip-restriction]: value should match only one schema, but matches both schemas 1 and 2"},
		{"ip-restriction item", `{"plugins":{"ip-restriction":{"whitelist":["1.2.3.4/33"]}}}`, `failed to check the configuration of stream plugin [ip-restriction]: property "whitelist" validation failed: failed to validate item 1: object matches none of the required`},
		{"ip-restriction empty list", `{"plugins":{"ip-restriction":{"blacklist":[]}}}`, `failed to check the configuration of stream plugin [ip-restriction]: property "blacklist" validation failed: expect array to have at least 1 items`},
		{"ip-restriction semantic", `{"plugins":{"ip-restriction":{"blacklist":["127.0.0.1",":/8"]}}}`, "failed to check the configuration of stream plugin [ip-restriction]: invalid ip address: :/8"},
		{"ip-restriction code", `{"plugins":{"ip-restriction":{"whitelist":["::1/128"],"response_code":405}}}`, `failed to check the configuration of stream plugin [ip-restriction]: property "response_code" validation failed: expected 405 to be at most 404`},
		{"ip-restriction message", `{"plugins":{"ip-restriction":{"whitelist":["::1"],"message":""}}}`, `failed to check the configuration of stream plugin [ip-restriction]: property "message" validation failed: string too short, expected at least 1, got 0`},
		{"ip-restriction ok", `{"plugins":{"ip-restriction":{"whitelist":["127.0.0.0/24","::1"],"message":"no","response_code":404}}}`, ""},
		{"limit-conn missing", `{"plugins":{"limit-conn":{"burst":0,"default_conn_delay":1,"key":"remote_addr"}}}`, `failed to check the configuration of stream plugin [limit-conn]: property "conn" is required`},
		{"limit-conn conn 0", `{"plugins":{"limit-conn":{"conn":0,"burst":0,"default_conn_delay":1,"key":"remote_addr"}}}`, `failed to check the configuration of stream plugin [limit-conn]: property "conn" validation failed: expected 0 to be greater than 0`},
		{"limit-conn burst", `{"plugins":{"limit-conn":{"conn":1,"burst":-1,"default_conn_delay":1,"key":"remote_addr"}}}`, `failed to check the configuration of stream plugin [limit-conn]: property "burst" validation failed: expected -1 to be at least 0`},
		{"limit-conn delay", `{"plugins":{"limit-conn":{"conn":1,"burst":0,"default_conn_delay":"1","key":"remote_addr"}}}`, `failed to check the configuration of stream plugin [limit-conn]: property "default_conn_delay" validation failed: wrong type: expected number, got string`},
		{"limit-conn delay 0", `{"plugins":{"limit-conn":{"conn":1,"burst":0,"default_conn_delay":0,"key":"remote_addr"}}}`, `failed to check the configuration of stream plugin [limit-conn]: property "default_conn_delay" validation failed: expected 0 to be greater than 0`},
		{"limit-conn key_type", `{"plugins":{"limit-conn":{"conn":1,"burst":0,"default_conn_delay":1,"key":"remote_addr","key_type":"x"}}}`, `failed to check the configuration of stream plugin [limit-conn]: property "key_type" validation failed: matches none of the enum values`},
		{"limit-conn only_use", `{"plugins":{"limit-conn":{"conn":1,"burst":0,"default_conn_delay":1,"key":"remote_addr","only_use_default_delay":1}}}`, `failed to check the configuration of stream plugin [limit-conn]: property "only_use_default_delay" validation failed: wrong type: expected boolean, got number`},
		{"limit-conn key", `{"plugins":{"limit-conn":{"conn":1,"burst":0,"default_conn_delay":1,"key":1}}}`, `failed to check the configuration of stream plugin [limit-conn]: property "key" validation failed: wrong type: expected string, got number`},
		{"limit-conn array", `{"plugins":{"limit-conn":[1]}}`, `failed to check the configuration of stream plugin [limit-conn]: wrong type: expected object, got table`},
		{"plugin disabled", `{"plugins":{"limit-conn":{"_meta":{"disable":true}}}}`, ""},
		{"plugin not disabled", `{"plugins":{"limit-conn":{"_meta":{"disable":false},"conn":1,"burst":0,"default_conn_delay":1}}}`, `failed to check the configuration of stream plugin [limit-conn]: property "key" is required`},
		{"meta type", `{"plugins":{"ip-restriction":{"whitelist":["::1"],"_meta":{"priority":"x"}}}}`, `failed to check the configuration of stream plugin [ip-restriction]: property "_meta" validation failed: property "priority" validation failed: wrong type: expected integer, got string`},
		{"meta truthy disable", `{"plugins":{"ip-restriction":{"_meta":{"disable":"yes"}}}}`, ""},
		// ngx.re's "$" matches before a final newline, and tonumber
		// skips spaces, so APISIX accepts these.
		{"sni trailing newline", `{"sni":"a.com\n"}`, ""},
		{"cidr trailing newline", `{"remote_addr":"10.0.0.0/8\n"}`, ""},
		{"ip trailing newline", `{"remote_addr":"10.0.0.1\n"}`, `invalid configuration: property "remote_addr" validation failed: object matches none of the required`},
		{"remote_addr semantic", `{"remote_addr":":/8"}`, "invalid remote_addr: :/8"},
		{"server_addr semantic", `{"server_addr":"::1/129"}`, "invalid server_addr: ::1/129"},
		{"protocol unknown", `{"protocol":{"name":"redis"}}`, "unknown protocol [redis]"},
		{"protocol no name", `{"protocol":{}}`, `invalid configuration: property "protocol" validation failed: property "name" is required`},
		{"protocol logger", `{"protocol":{"name":"x","logger":[{"name":"syslog"}]}}`, `invalid configuration: property "protocol" validation failed: property "logger" validation failed: failed to validate item 1: property "conf" is required when "name" is set`},
		{"order plugins before addr", `{"remote_addr":":/8","plugins":{"x":{}}}`, "unknown plugin [x]"},
		{"order upstream before service", `{"upstream_id":7,"service_id":7}`, "failed to fetch upstream info by upstream id [7], response code: 404"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantErr(t, CheckStreamRoute(decode(t, c.body), testRefs), c.want)
		})
	}
}

func TestCheckStreamRouteNilRefs(t *testing.T) {
	wantErr(t, CheckStreamRoute(decode(t, `{"upstream_id":"1"}`), Refs{}),
		"failed to fetch upstream info by upstream id [1], response code: 404")
	wantErr(t, CheckStreamRoute(decode(t, `{"service_id":3}`), Refs{}),
		"failed to fetch service info by service id [3], response code: 404")
}

// TestDefaultsInserted checks the schema defaults APISIX stores
// (t/admin/stream-routes.t TEST 11-13).
func TestDefaultsInserted(t *testing.T) {
	obj := decode(t, `{"remote_addr":"127.0.0.1","upstream":{"nodes":{"127.0.0.1:8080":1},"type":"roundrobin"},
		"plugins":{"ip-restriction":{"whitelist":["127.0.0.1"]}}}`)
	wantErr(t, CheckStreamRoute(obj, testRefs), "")
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"plugins":{"ip-restriction":{"message":"Your IP address is not allowed","response_code":403,"whitelist":["127.0.0.1"]}},` +
		`"remote_addr":"127.0.0.1","upstream":{"hash_on":"vars","nodes":{"127.0.0.1:8080":1},"pass_host":"pass","scheme":"http","type":"roundrobin"}}`
	if string(b) != want {
		t.Fatalf("stored\n got %s\nwant %s", b, want)
	}
}

func TestCheckUpstream(t *testing.T) {
	testCerts(t)
	keyPat := `"^((uri|server_name|server_addr|request_uri|remote_port|remote_addr|query_string|host|hostname|mqtt_client_id)|arg_[0-9a-zA-z_-]+)$"`
	garbage := js(strings.Repeat("A", 200))
	badPEM := js("-----BEGIN PRIVATE KEY-----\n" + strings.Repeat("C", 100) + "\n-----END PRIVATE KEY-----\n")
	cases := []struct {
		name, body, want string
	}{
		{"object nodes", `{"nodes":{"127.0.0.1:1995":1,"[::1]:80":0},"type":"roundrobin"}`, ""},
		{"array nodes", `{"nodes":[{"host":"[::1]","port":80,"weight":1,"priority":-1,"metadata":{}}]}`, ""},
		{"discovery", `{"service_name":"svc","discovery_type":"dns"}`, ""},
		{"everything", `{"id":"u","name":"n","desc":"d","labels":{"a":"b"},"nodes":{"a.test:80":1},"type":"least_conn",
			"retries":0,"retry_timeout":0,"timeout":{"connect":1,"send":2.5,"read":3},"scheme":"tls",
			"checks":{"active":{"type":"tcp","healthy":{"interval":1,"successes":1},"unhealthy":{"tcp_failures":1,"timeouts":1}},"passive":{"type":"tcp"}},
			"pass_host":"node","keepalive_pool":{"size":1}}`, ""},
		{"type free", `{"nodes":{},"type":"anything"}`, ""},
		{"neither", `{"type":"roundrobin"}`, "invalid configuration: value should match only one schema, but matches none"},
		{"both", `{"nodes":{},"service_name":"a","discovery_type":"dns"}`, "invalid configuration: value should match only one schema, but matches both schemas 1 and 2"},
		{"not object", `{"nodes":{},"labels":"x"}`, `invalid configuration: property "labels" validation failed: wrong type: expected object, got string`},
		{"type number", `{"nodes":{},"type":1}`, `invalid configuration: property "type" validation failed: wrong type: expected string, got number`},
		{"node weight negative", `{"nodes":{"127.0.0.1:80":-1}}`, `invalid configuration: property "nodes" validation failed: object matches none of the required`},
		{"node port big", `{"nodes":[{"host":"127.0.0.1","port":65536,"weight":1}]}`, `invalid configuration: property "nodes" validation failed: object matches none of the required`},
		{"hash_on enum", `{"nodes":{},"hash_on":"x"}`, `invalid configuration: property "hash_on" validation failed: matches none of the enum values`},
		{"scheme enum", `{"nodes":{},"scheme":"ftp"}`, `invalid configuration: property "scheme" validation failed: matches none of the enum values`},
		{"pass_host enum", `{"nodes":{},"pass_host":"x"}`, `invalid configuration: property "pass_host" validation failed: matches none of the enum values`},
		{"retries", `{"nodes":{},"retries":-1}`, `invalid configuration: property "retries" validation failed: expected -1 to be at least 0`},
		{"retries float", `{"nodes":{},"retries":1.5}`, `invalid configuration: property "retries" validation failed: wrong type: expected integer, got number`},
		{"retry_timeout", `{"nodes":{},"retry_timeout":-0.5}`, `invalid configuration: property "retry_timeout" validation failed: expected -0.5 to be at least 0`},
		{"timeout missing", `{"nodes":{},"timeout":{"connect":1,"send":1}}`, `invalid configuration: property "timeout" validation failed: property "read" is required`},
		{"timeout zero", `{"nodes":{},"timeout":{"connect":0,"send":1,"read":1}}`, `invalid configuration: property "timeout" validation failed: property "connect" validation failed: expected 0 to be greater than 0`},
		{"checks empty", `{"nodes":{},"checks":{}}`, `invalid configuration: property "checks" validation failed: object matches none of the required: ["active"] or ["active","passive"]`},
		{"checks passive only", `{"nodes":{},"checks":{"passive":{"type":"tcp"}}}`, `invalid configuration: property "checks" validation failed: object matches none of the required: ["active"] or ["active","passive"]`},
		{"checks extra", `{"nodes":{},"checks":{"active":{},"x":1}}`, `invalid configuration: property "checks" validation failed: additional properties forbidden, found x`},
		{"checks type", `{"nodes":{},"checks":{"active":{"type":"udp"}}}`, `invalid configuration: property "checks" validation failed: property "active" validation failed: property "type" validation failed: matches none of the enum values`},
		{"checks successes", `{"nodes":{},"checks":{"active":{"healthy":{"successes":255}}}}`, `invalid configuration: property "checks" validation failed: property "active" validation failed: property "healthy" validation failed: property "successes" validation failed: expected 255 to be at most 254`},
		{"checks statuses unique", `{"nodes":{},"checks":{"active":{"healthy":{"http_statuses":[200,200]}}}}`, `invalid configuration: property "checks" validation failed: property "active" validation failed: property "healthy" validation failed: property "http_statuses" validation failed: expected unique items but items 1 and 2 are equal`},
		{"tls cert without key", `{"nodes":{},"tls":{"client_cert":` + js(rsaPair.cert) + `}}`, `invalid configuration: property "tls" validation failed: failed to validate dependent schema for "client_cert": property "client_key" is required`},
		{"tls key without cert", `{"nodes":{},"tls":{"client_key":` + js(rsaPair.key) + `}}`, `invalid configuration: property "tls" validation failed: failed to validate dependent schema for "client_key": property "client_cert" is required`},
		{"tls cert and id", `{"nodes":{},"tls":{"client_cert_id":"c1","client_cert":` + js(rsaPair.cert) + `,"client_key":` + js(rsaPair.key) + `}}`, `invalid configuration: property "tls" validation failed: failed to validate dependent schema for "client_cert_id": value wasn't supposed to match schema`},
		{"tls cert short", `{"nodes":{},"tls":{"client_cert":"abc","client_key":` + js(rsaPair.key) + `}}`, `invalid configuration: property "tls" validation failed: property "client_cert" validation failed: string too short, expected at least 128, got 3`},
		{"tls verify", `{"nodes":{},"tls":{"verify":"yes"}}`, `invalid configuration: property "tls" validation failed: property "verify" validation failed: wrong type: expected boolean, got string`},
		{"bare v6 host", `{"nodes":[{"host":"::1","port":80,"weight":1}]}`, "invalid configuration: IPv6 address must be enclosed with '[' and ']'"},
		{"port too big", `{"nodes":{"127.0.0.1:70000":1}}`, "invalid port 70000"},
		{"port zero", `{"nodes":{"[::1]:0":1}}`, "invalid port 0"},
		{"no port ok", `{"nodes":{"127.0.0.1":1,"host:":1}}`, ""},
		{"client_cert_id missing", `{"nodes":{},"tls":{"client_cert_id":9}}`, "failed to fetch ssl info by ssl id [9], response code: 404"},
		{"client_cert_id server", `{"nodes":{},"tls":{"client_cert_id":"s1"}}`, "failed to fetch ssl info by ssl id [s1], wrong ssl type"},
		{"client_cert_id ok", `{"nodes":{},"scheme":"tls","tls":{"client_cert_id":"c1"}}`, ""},
		{"rewrite no host", `{"nodes":{},"pass_host":"rewrite"}`, "`upstream_host` can't be empty when `pass_host` is `rewrite`"},
		{"client cert garbage", `{"nodes":{},"tls":{"client_cert":` + garbage + `,"client_key":` + js(rsaPair.key) + `}}`, errParseCert},
		{"client key garbage", `{"nodes":{},"tls":{"client_cert":` + js(rsaPair.cert) + `,"client_key":` + badPEM + `}}`, errParseKey},
		{"client key not pem", `{"nodes":{},"tls":{"client_cert":` + js(rsaPair.cert) + `,"client_key":` + garbage + `}}`, errDecrypt},
		{"client key mismatch", `{"nodes":{},"tls":{"client_cert":` + js(rsaPair.cert) + `,"client_key":` + js(ecPair.key) + `}}`, errKeyMismatch},
		{"client cert ok", `{"nodes":{},"scheme":"tls","tls":{"client_cert":` + js(ecPair.cert) + `,"client_key":` + js(ecPair.key) + `}}`, ""},
		{"chash no key", `{"nodes":{},"type":"chash"}`, "missing key"},
		{"chash consumer", `{"nodes":{},"type":"chash","hash_on":"consumer"}`, ""},
		{"chash vars ok", `{"nodes":{},"type":"chash","key":"remote_addr"}`, ""},
		{"chash vars arg", `{"nodes":{},"type":"chash","key":"arg_id"}`, ""},
		{"chash vars bad", `{"nodes":{},"type":"chash","key":"args_invalid"}`, `invalid configuration: failed to match pattern ` + keyPat + ` with "args_invalid"`},
		{"chash header bad", `{"nodes":{},"type":"chash","hash_on":"header","key":"a b"}`, `invalid configuration: failed to match pattern "^[a-zA-Z0-9-_]+$" with "a b"`},
		{"chash combinations", `{"nodes":{},"type":"chash","hash_on":"vars_combinations","key":"$remote_addr$server_port"}`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantErr(t, CheckUpstream(decode(t, c.body), testRefs), c.want)
		})
	}
}

func TestParse(t *testing.T) {
	obj := decode(t, `{"id":1,"server_port":9100,"snis":["a.com"],"tls_passthrough":true,"upstream_id":"u1",
		"upstream":{"nodes":{"[::1]:80":2,"127.0.0.1:81":1},"retries":1,"timeout":{"connect":1,"send":2,"read":3}}}`)
	wantErr(t, CheckStreamRoute(obj, testRefs), "")
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseStreamRoute(b)
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != "1" || r.ServerPort != 9100 || !r.TLSPassthrough || r.UpstreamID != "u1" || len(r.SNIs) != 1 {
		t.Fatalf("route %+v", r)
	}
	u := r.Upstream
	if u.Type != "roundrobin" || u.Scheme != "http" || *u.Retries != 1 || u.Timeout.Read != 3 || len(u.Nodes) != 2 ||
		u.Nodes[0].Addr() != "127.0.0.1:81" || u.Nodes[1].Addr() != "[::1]:80" {
		t.Fatalf("upstream %+v", u)
	}
	if _, err := ParseUpstream([]byte(`{"nodes":[{"host":"a","port":1,"weight":1}]}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseUpstream([]byte(`{"nodes":{}} x`)); err == nil {
		t.Fatal("trailing data accepted")
	}
	s, err := ParseSSL([]byte(`{"type":"client","cert":"c","key":"k","status":0}`))
	if err != nil {
		t.Fatal(err)
	}
	if !s.IsClient() || s.Enabled() {
		t.Fatalf("ssl %+v", s)
	}
	if _, err := ParseSSL([]byte(`[`)); err == nil {
		t.Fatal("bad JSON accepted")
	}
}

// TestParseIntegralNumbers: 80.0 and 1e2 are APISIX integers and must fit
// the int fields of the typed forms.
func TestParseIntegralNumbers(t *testing.T) {
	obj := decode(t, `{"server_port":80.0,"upstream":{"nodes":[{"host":"a","port":1e2,"weight":1.0}],"retries":2E0}}`)
	wantErr(t, CheckStreamRoute(obj, testRefs), "")
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseStreamRoute(b)
	if err != nil {
		t.Fatal(err)
	}
	if r.ServerPort != 80 || r.Upstream.Nodes[0].Port != 100 || r.Upstream.Nodes[0].Weight != 1 || *r.Upstream.Retries != 2 {
		t.Fatalf("route %+v upstream %+v", r, r.Upstream)
	}
}
