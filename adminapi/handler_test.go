package adminapi

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

const (
	adminKey  = "edd1c9f034335f136f87ad84b625c8f1"
	viewerKey = "4054f7cf07e344346cd3f287985e76a2"
)

func keyedCfg(stream bool) *Config {
	return &Config{StreamEnabled: stream, Keys: []Key{
		{Name: "admin", Key: adminKey, Role: "admin"},
		{Name: "viewer", Key: viewerKey, Role: "viewer"},
	}}
}

func TestRoutingAuthAndErrors(t *testing.T) {
	big := `{"desc":"` + strings.Repeat("a", MaxBodySize) + `"}`
	ak := "X-API-KEY: " + adminKey
	tests := []struct {
		name         string
		stream       bool
		method, path string
		body         string
		hdr          []string
		status       int
		want         string // exact body; "" skips the check
	}{
		{"head root needs no key", true, "HEAD", "/apisix/admin", "", nil, 200, ""},
		{"get root", true, "GET", "/apisix/admin", "", []string{ak}, 404, ""},
		{"unrouted method", true, "OPTIONS", "/apisix/admin/upstreams", "", []string{ak}, 404, ""},
		{"head on a resource", true, "HEAD", "/apisix/admin/upstreams", "", []string{ak}, 404, ""},
		{"missing key", true, "GET", "/apisix/admin/upstreams", "", nil, 401,
			`{"error_msg":"failed to check token","description":"missing apikey"}` + "\n"},
		{"wrong key", true, "GET", "/apisix/admin/upstreams", "", []string{"X-API-KEY: nope"}, 401,
			`{"error_msg":"failed to check token","description":"wrong apikey"}` + "\n"},
		{"empty query key is wrong, not missing", true, "GET", "/apisix/admin/upstreams?api_key=", "", nil, 401,
			`{"error_msg":"failed to check token","description":"wrong apikey"}` + "\n"},
		{"query key first", true, "GET", "/apisix/admin/upstreams?api_key=bad", "", []string{ak}, 401,
			`{"error_msg":"failed to check token","description":"wrong apikey"}` + "\n"},
		{"query key", true, "GET", "/apisix/admin/upstreams?api_key=" + adminKey, "", nil, 200,
			`{"list":[],"total":0}` + "\n"},
		{"header key", true, "GET", "/apisix/admin/upstreams", "", []string{ak}, 200, ""},
		{"cookie key", true, "GET", "/apisix/admin/upstreams", "", []string{"Cookie: x_api_key=" + adminKey}, 200, ""},
		{"viewer may read", true, "GET", "/apisix/admin/upstreams", "", []string{"X-API-KEY: " + viewerKey}, 200, ""},
		{"viewer may not write", true, "PUT", "/apisix/admin/upstreams/1", upstreamBody,
			[]string{"X-API-KEY: " + viewerKey}, 401,
			`{"error_msg":"failed to check token","description":"invalid method for role viewer"}` + "\n"},
		{"viewer may not validate", true, "POST", "/apisix/admin/schema/validate/upstreams", upstreamBody,
			[]string{"X-API-KEY: " + viewerKey}, 401, ""},
		{"stream disabled: key first", false, "GET", "/apisix/admin/stream_routes", "", nil, 401, ""},
		{"stream disabled: get", false, "GET", "/apisix/admin/stream_routes", "", []string{ak}, 400,
			`{"error_msg":"stream mode is disabled, can not add stream routes"}` + "\n"},
		{"stream disabled: put", false, "PUT", "/apisix/admin/stream_routes/1", "{}", []string{ak}, 400,
			`{"error_msg":"stream mode is disabled, can not add stream routes"}` + "\n"},
		{"stream disabled: upstreams still work", false, "GET", "/apisix/admin/upstreams", "", []string{ak}, 200, ""},
		{"unknown resource", true, "GET", "/apisix/admin/foo", "", []string{ak}, 404,
			`{"error_msg":"Unsupported resource type: foo"}` + "\n"},
		{"http-only list", true, "GET", "/apisix/admin/routes", "", []string{ak}, 200, `{"list":[],"total":0}` + "\n"},
		{"http-only list needs a key", true, "GET", "/apisix/admin/consumers", "", nil, 401, ""},
		{"http-only get one", true, "GET", "/apisix/admin/global_rules/1", "", []string{ak}, 404, `{"message":"Key not found"}` + "\n"},
		{"http-only write", true, "PUT", "/apisix/admin/routes/1", "{}", []string{ak}, 400,
			`{"error_msg":"this gateway serves stream routes only: routes are not supported"}` + "\n"},
		{"http-only delete", true, "DELETE", "/apisix/admin/secrets/vault/1", "", []string{ak}, 400,
			`{"error_msg":"this gateway serves stream routes only: secrets are not supported"}` + "\n"},
		{"configs not in this mode", true, "GET", "/apisix/admin/configs", "", []string{ak}, 404, ""},
		{"head configs not in this mode", true, "HEAD", "/apisix/admin/configs", "", []string{ak}, 404, ""},
		{"validate in every mode", true, "POST", "/apisix/admin/configs/validate",
			`{"routes":[],"stream_routes":[{"id":"a","server_port":9100}]}`, []string{ak}, 200, "{}\n"},
		{"validate errors", true, "POST", "/apisix/admin/configs/validate",
			`{"stream_routes":[{"id":"a"},{"id":"b","server_port":"x"}],"routes":[{"id":1}]}`, []string{ak}, 400,
			`{"error_msg":"Configuration validation failed","errors":[` +
				`{"resource_type":"stream_routes","resource_id":"b","index":1,"error":"invalid configuration: property \"server_port\" validation failed: wrong type: expected integer, got string"},` +
				`{"resource_type":"routes","resource_id":1,"index":0,"error":"this gateway serves stream routes only: routes are not supported"}]}` + "\n"},
		{"validate empty", true, "POST", "/apisix/admin/configs/validate", "", []string{ak}, 400,
			`{"error_msg":"invalid request body: empty request body"}` + "\n"},
		{"empty resource", true, "GET", "/apisix/admin/", "", []string{ak}, 404,
			`{"error_msg":"Unsupported resource type: "}` + "\n"},
		{"plugins: method", true, "PUT", "/apisix/admin/plugins/limit-conn", "{}", []string{ak}, 404,
			`{"error_msg":"not found"}` + "\n"},
		{"patch stream route", true, "PATCH", "/apisix/admin/stream_routes/1", "{}", []string{ak}, 405,
			"{\"error_msg\":\"not supported `PATCH` method for stream route\"}\n"},
		{"invalid json", true, "PUT", "/apisix/admin/upstreams/1", "{abc", []string{ak}, 400,
			`{"error_msg":"invalid request body: Expected object key string but found invalid token at character 2","req_body":"{abc"}` + "\n"},
		{"invalid json before 405", true, "PATCH", "/apisix/admin/stream_routes/1", "x", []string{ak}, 400,
			`{"error_msg":"invalid request body: Expected value but found invalid token at character 1","req_body":"x"}` + "\n"},
		{"invalid json on get", true, "GET", "/apisix/admin/upstreams", "[", []string{ak}, 400, ""},
		{"body too large", true, "PUT", "/apisix/admin/upstreams/1", big, []string{ak}, 400,
			`{"error_msg":"invalid request body: request size 1572875 is greater than the maximum size 1572864 allowed"}` + "\n"},
		{"ttl not a number", true, "PUT", "/apisix/admin/upstreams/1?ttl=abc", upstreamBody, []string{ak}, 400,
			`{"error_msg":"invalid argument ttl: should be a number"}` + "\n"},
		{"ttl number", true, "PUT", "/apisix/admin/upstreams/1?ttl=10", upstreamBody, []string{ak}, 201, ""},
		{"ttl checked after body", true, "PUT", "/apisix/admin/upstreams/1?ttl=abc", "{", []string{ak}, 400, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, keyedCfg(tc.stream))
			r := e.do(tc.method, tc.path, tc.body, tc.hdr...)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d; body %q", r.status, tc.status, r.body)
			}
			if tc.want != "" && r.body != tc.want {
				t.Fatalf("body\n got %q\nwant %q", r.body, tc.want)
			}
			if r.header.Get("Server") != ServerHeader || r.header.Get("X-API-VERSION") != "v3" {
				t.Fatalf("headers %v", r.header)
			}
			if strings.HasPrefix(r.body, "{") {
				if ct := r.header.Get("Content-Type"); ct != "application/json" {
					t.Fatalf("Content-Type %q", ct)
				}
				if !strings.HasSuffix(r.body, "}\n") {
					t.Fatalf("JSON body without final newline: %q", r.body)
				}
			}
		})
	}
}

func TestAllowAdmin(t *testing.T) {
	tests := []struct {
		name   string
		allow  []netip.Prefix
		status int
	}{
		{"default allows loopback", nil, 200},
		{"listed", []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, 200},
		{"not listed", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, 403},
		{"v6 only", []netip.Prefix{netip.MustParsePrefix("::1/128")}, 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, &Config{StreamEnabled: true, AllowAdmin: tc.allow})
			e.must(tc.status, "GET", "/apisix/admin/upstreams", "")
			// allow_admin applies before everything, HEAD included.
			head := e.do("HEAD", "/apisix/admin", "")
			if want := map[bool]int{true: 200, false: 403}[tc.status == 200]; head.status != want {
				t.Fatalf("HEAD: %d, want %d", head.status, want)
			}
		})
	}
}

func TestNoConfigFailsClosed(t *testing.T) {
	e := newEnv(t, nil)
	r := e.must(http.StatusServiceUnavailable, "GET", "/apisix/admin/upstreams", "")
	if r.body != `{"error_msg":"apisix app is not running"}`+"\n" {
		t.Fatalf("body %q", r.body)
	}
}

func TestCheckTokenEmptyConfiguredKeyNeverMatches(t *testing.T) {
	e := newEnv(t, &Config{StreamEnabled: true, Keys: []Key{{Name: "a", Key: "", Role: "admin"}}})
	r := e.must(401, "GET", "/apisix/admin/upstreams?api_key=", "")
	if !strings.Contains(r.body, "wrong apikey") {
		t.Fatalf("body %q", r.body)
	}
}
