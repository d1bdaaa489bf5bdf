//go:build linux

package admine2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// apiCase is one Admin API request and the exact answer APISIX gives.
type apiCase struct {
	name   string
	method string
	path   string
	// key is the X-API-KEY header; "-" sends none.
	key  string
	body string
	hdr  map[string]string
	// status and body are exact; body "*" accepts any body; a body that
	// starts with "~" is a regexp.
	status   int
	wantBody string
	// ctype is the Content-Type prefix; "" means application/json.
	ctype string
}

// JSON error bodies as APISIX writes them, newline included.
func errBody(msg string) string {
	b, _ := json.Marshal(map[string]string{"error_msg": msg})
	return string(b) + "\n"
}

func tokenBody(reason string) string {
	return `{"error_msg":"failed to check token","description":"` + reason + `"}` + "\n"
}

const keyNotFound = `{"message":"Key not found"}` + "\n"

// nginxPage is the HTML nginx answers for its own 403/404.
func nginxPage(status int) string {
	line := fmt.Sprintf("%d %s", status, http.StatusText(status))
	return "<html>\r\n<head><title>" + line + "</title></head>\r\n<body>\r\n<center><h1>" +
		line + "</h1></center>\r\n<hr><center>openresty</center>\r\n</body>\r\n</html>\r\n"
}

// run sends the case to p and checks status, Content-Type and body.
func (c apiCase) run(t *testing.T, p *caddyProc) {
	t.Helper()
	key := c.key
	switch key {
	case "":
		key = adminKey
	case "-":
		key = ""
	}
	st, h, body, err := p.callH(c.method, c.path, key, c.body, c.hdr)
	if err != nil {
		t.Fatalf("%s %s: %v", c.method, c.path, err)
	}
	if st != c.status {
		t.Errorf("status %d, want %d; body %q", st, c.status, body)
	}
	switch {
	case c.wantBody == "*":
	case strings.HasPrefix(c.wantBody, "~"):
		if !regexp.MustCompile(c.wantBody[1:]).MatchString(body) {
			t.Errorf("body %q does not match %s", body, c.wantBody[1:])
		}
	case body != c.wantBody:
		t.Errorf("body\n got %q\nwant %q", body, c.wantBody)
	}
	ct := c.ctype
	if ct == "" {
		ct = "application/json"
	}
	if ct != "none" && !strings.HasPrefix(h.Get("Content-Type"), ct) {
		t.Errorf("Content-Type %q, want %q", h.Get("Content-Type"), ct)
	}
}

// apiFixture is a running Caddy with static objects, a TLS certificate
// for SSL bodies and objects set up through the API.
type apiFixture struct {
	p       *caddyProc
	certPEM string
	keyPEM  string
}

func newAPIFixture(t *testing.T) *apiFixture {
	t.Helper()
	ca := e2e.NewCA(t, "admine2e test CA")
	certPEM, keyPEM, _ := leaf(t, ca, "api.test")
	sCert, sKey, _ := leaf(t, ca, "static.test")
	app := apisixApp(map[string]any{
		"stream_proxy": map[string]any{"tcp": []any{hostPort("127.0.0.1", freePort(t))}},
		"upstreams":    []any{map[string]any{"id": "static-up", "nodes": map[string]any{"127.0.0.1:1": 1}, "type": "roundrobin"}},
		"stream_routes": []any{map[string]any{"id": "static-r", "server_port": 1,
			"upstream_id": "static-up"}},
		"ssls": []any{map[string]any{"id": "static-ssl", "cert": sCert, "key": sKey, "sni": "static.test"}},
	})
	p := newInstance(t, "", appsConfig(app)).start()
	p.must(t, http.MethodPut, "/apisix/admin/upstreams/u1",
		`{"nodes":{"127.0.0.1:1995":1},"type":"roundrobin"}`, http.StatusCreated)
	p.must(t, http.MethodPut, "/apisix/admin/stream_routes/r1",
		`{"server_port":2000,"upstream_id":"u1"}`, http.StatusCreated)
	return &apiFixture{p: p, certPEM: certPEM, keyPEM: keyPEM}
}

// TestAdminAPIErrors checks every status code and error text of
// docs/apisix/admin-api.md, docs/apisix/upstreams.md#upstream-resource-checks
// and docs/apisix/tls.md#ssl-object-schema against the real process, in the order APISIX
// checks them.
func TestAdminAPIErrors(t *testing.T) {
	f := newAPIFixture(t)
	big := `{"desc":"` + strings.Repeat("a", 1572865-len(`{"desc":""}`)) + `"}`
	exact := big[:9] + big[10:] // 1572864 bytes: read and decoded, then refused by the schema
	sslBody := func(extra string) string {
		b, _ := json.Marshal(map[string]any{"cert": f.certPEM, "key": f.keyPEM})
		return strings.TrimSuffix(string(b), "}") + extra + "}"
	}
	const route = `{"server_port":2001,"upstream":{"nodes":{"127.0.0.1:1995":1},"type":"roundrobin"}}`
	const sr = "/apisix/admin/stream_routes"
	cases := []apiCase{
		// docs/apisix/admin-api.md#authentication: authentication and roles
		{name: "missing key", method: "GET", path: sr, key: "-", status: 401, wantBody: tokenBody("missing apikey")},
		{name: "wrong key", method: "GET", path: sr, key: "nope", status: 401, wantBody: tokenBody("wrong apikey")},
		{name: "empty key is wrong, not missing", method: "GET", path: sr + "?api_key=", key: "-", status: 401, wantBody: tokenBody("wrong apikey")},
		{name: "query api_key before header", method: "GET", path: sr + "?api_key=nope", status: 401, wantBody: tokenBody("wrong apikey")},
		{name: "query api_key", method: "GET", path: sr + "?api_key=" + adminKey, key: "-", status: 200, wantBody: "*"},
		{name: "cookie x_api_key", method: "GET", path: sr, key: "-", hdr: map[string]string{"Cookie": "x_api_key=" + adminKey}, status: 200, wantBody: "*"},
		{name: "viewer GET", method: "GET", path: sr + "/r1", key: viewerKey, status: 200, wantBody: "*"},
		{name: "viewer PUT", method: "PUT", path: sr + "/v", key: viewerKey, body: route, status: 401, wantBody: tokenBody("invalid method for role viewer")},
		{name: "viewer POST", method: "POST", path: sr, key: viewerKey, body: route, status: 401, wantBody: tokenBody("invalid method for role viewer")},
		{name: "viewer DELETE", method: "DELETE", path: sr + "/r1", key: viewerKey, status: 401, wantBody: tokenBody("invalid method for role viewer")},
		{name: "viewer PATCH", method: "PATCH", path: "/apisix/admin/upstreams/u1", key: viewerKey, body: `{"desc":"x"}`, status: 401, wantBody: tokenBody("invalid method for role viewer")},
		{name: "key checked before resource", method: "GET", path: "/apisix/admin/nope", key: "-", status: 401, wantBody: tokenBody("missing apikey")},

		// docs/apisix/admin-api.md#routing
		{name: "HEAD /apisix/admin", method: "HEAD", path: "/apisix/admin", key: "-", status: 200, wantBody: "", ctype: "none"},
		{name: "OPTIONS is nginx 404", method: "OPTIONS", path: sr, status: 404, wantBody: nginxPage(404), ctype: "text/html"},
		{name: "POST /apisix/admin is nginx 404", method: "POST", path: "/apisix/admin", body: "{}", status: 404, wantBody: nginxPage(404), ctype: "text/html"},
		{name: "unknown resource", method: "GET", path: "/apisix/admin/nope", status: 404, wantBody: errBody("Unsupported resource type: nope")},
		{name: "PATCH stream route", method: "PATCH", path: sr + "/r1", body: `{"desc":"x"}`, status: 405, wantBody: errBody("not supported `PATCH` method for stream route")},
		{name: "GET missing", method: "GET", path: sr + "/missing", status: 404, wantBody: keyNotFound},
		{name: "GET missing upstream", method: "GET", path: "/apisix/admin/upstreams/missing", status: 404, wantBody: keyNotFound},
		{name: "DELETE missing", method: "DELETE", path: sr + "/missing", status: 404, wantBody: keyNotFound},
		{name: "DELETE missing ssl", method: "DELETE", path: "/apisix/admin/ssls/missing", status: 404, wantBody: keyNotFound},
		{name: "DELETE without id", method: "DELETE", path: sr, status: 400, wantBody: errBody("missing stream route id")},
		{name: "DELETE upstream without id", method: "DELETE", path: "/apisix/admin/upstreams", status: 400, wantBody: errBody("missing upstream id")},
		{name: "body over 1.5 MiB", method: "PUT", path: sr + "/big", body: big, status: 400,
			wantBody: errBody("invalid request body: request size 1572865 is greater than the maximum size 1572864 allowed")},
		{name: "body of exactly 1.5 MiB is read", method: "PUT", path: sr + "/big", body: exact, status: 400,
			wantBody: "~^\\{\"error_msg\":\"invalid configuration: property \\\\\"desc\\\\\" validation failed"},

		// docs/apisix/admin-api.md#request-order: body and ttl
		{name: "invalid JSON", method: "PUT", path: sr + "/1", body: "x", status: 400,
			wantBody: `{"error_msg":"invalid request body: Expected value but found invalid token at character 1","req_body":"x"}` + "\n"},
		{name: "invalid JSON object", method: "POST", path: sr, body: `{"a":}`, status: 400,
			wantBody: `{"error_msg":"invalid request body: Expected value but found T_OBJ_END at character 6","req_body":"{\"a\":}"}` + "\n"},
		{name: "ttl not a number", method: "PUT", path: sr + "/1?ttl=abc", body: route, status: 400, wantBody: errBody("invalid argument ttl: should be a number")},

		// docs/apisix/admin-api.md#validation-order
		{name: "no body", method: "PUT", path: sr + "/1", status: 400, wantBody: errBody("missing configurations")},
		{name: "PUT without id", method: "PUT", path: sr, body: route, status: 400, wantBody: errBody("missing stream route id")},
		{name: "POST with URL id", method: "POST", path: sr + "/5", body: route, status: 400, wantBody: errBody("wrong stream route id, do not need it")},
		{name: "POST with body id", method: "POST", path: sr, body: `{"id":"5","server_port":1}`, status: 400, wantBody: errBody("wrong stream route id, do not need it")},
		{name: "PUT body id differs", method: "PUT", path: sr + "/1", body: `{"id":"2","server_port":1}`, status: 400, wantBody: errBody("wrong stream route id")},
		{name: "PUT upstream body id differs", method: "PUT", path: "/apisix/admin/upstreams/1", body: `{"id":"2","nodes":{"127.0.0.1:1":1}}`, status: 400, wantBody: errBody("wrong upstream id")},
		{name: "PUT upstream without id", method: "PUT", path: "/apisix/admin/upstreams", body: `{"nodes":{"127.0.0.1:1":1}}`, status: 400, wantBody: errBody("missing upstream id")},
		{name: "POST ssl with id", method: "POST", path: "/apisix/admin/ssls/1", body: sslBody(`,"sni":"api.test"`), status: 400, wantBody: errBody("wrong ssl id, do not need it")},
		{name: "create_time forbidden", method: "PUT", path: sr + "/1", body: `{"server_port":1,"create_time":1}`, status: 400, wantBody: errBody("the property is forbidden:  create_time")},
		{name: "update_time forbidden", method: "POST", path: sr, body: `{"server_port":1,"update_time":1}`, status: 400, wantBody: errBody("the property is forbidden:  update_time")},
		{name: "server_port out of range", method: "PUT", path: sr + "/1", body: `{"server_port":70000}`, status: 400,
			wantBody: errBody(`invalid configuration: property "server_port" validation failed: expected 70000 to be at most 65535`)},
		{name: "additional property", method: "PUT", path: sr + "/1", body: `{"server_port":1,"foo":1}`, status: 400,
			wantBody: errBody("invalid configuration: additional properties forbidden, found foo")},
		{name: "remote_addr not an address", method: "PUT", path: sr + "/1", body: `{"remote_addr":"abc"}`, status: 400,
			wantBody: errBody(`invalid configuration: property "remote_addr" validation failed: object matches none of the required`)},
		{name: "bad id in body", method: "PUT", path: sr, body: `{"id":"*invalid","server_port":1}`, status: 400,
			wantBody: errBody(`invalid configuration: property "id" validation failed: object matches none of the required`)},
		{name: "inline upstream without nodes", method: "PUT", path: sr + "/1", body: `{"upstream":{"nodes":"x"}}`, status: 400,
			wantBody: errBody(`invalid configuration: property "upstream" validation failed: property "nodes" validation failed: object matches none of the required`)},
		{name: "upstream_id missing", method: "PUT", path: sr + "/1", body: `{"upstream_id":"nope"}`, status: 400,
			wantBody: errBody("failed to fetch upstream info by upstream id [nope], response code: 404")},
		{name: "service_id missing", method: "PUT", path: sr + "/1", body: `{"service_id":"s1"}`, status: 400,
			wantBody: errBody("failed to fetch service info by service id [s1], response code: 404")},
		{name: "unknown plugin", method: "PUT", path: sr + "/1", body: `{"plugins":{"foo":{}}}`, status: 400, wantBody: errBody("unknown plugin [foo]")},
		{name: "remote_addr semantic check", method: "PUT", path: sr + "/1", body: `{"remote_addr":":/8"}`, status: 400, wantBody: errBody("invalid remote_addr: :/8")},

		// docs/apisix/admin-api.md#pagination
		{name: "page_size below 10", method: "GET", path: sr + "?page=1&page_size=5", status: 400,
			wantBody: "page_size must be between 10 and 500", ctype: "text/plain"},
		{name: "page_size above 500", method: "GET", path: "/apisix/admin/upstreams?page=1&page_size=501", status: 400,
			wantBody: "page_size must be between 10 and 500", ctype: "text/plain"},
		{name: "page_size ignored without page", method: "GET", path: sr + "?page_size=5", status: 200, wantBody: "*"},

		// docs/apisix/admin-api.md#delete-reference-rules and
		// docs/differences.md#deleting-a-used-upstream-is-refused: references
		{name: "delete upstream in use", method: "DELETE", path: "/apisix/admin/upstreams/u1", status: 400,
			wantBody: errBody("can not delete this upstream, stream_route [r1] is still using it now")},

		// static objects are read-only
		{name: "PUT static route", method: "PUT", path: sr + "/static-r", body: route, status: 400,
			wantBody: errBody("stream route [static-r] is defined in the Caddy config and is read-only; change it there")},
		{name: "DELETE static route", method: "DELETE", path: sr + "/static-r", status: 400,
			wantBody: errBody("stream route [static-r] is defined in the Caddy config and is read-only; change it there")},
		{name: "PATCH static upstream", method: "PATCH", path: "/apisix/admin/upstreams/static-up", body: `{"desc":"x"}`, status: 400,
			wantBody: errBody("upstream [static-up] is defined in the Caddy config and is read-only; change it there")},
		{name: "DELETE static ssl", method: "DELETE", path: "/apisix/admin/ssls/static-ssl", status: 400,
			wantBody: errBody("ssl [static-ssl] is defined in the Caddy config and is read-only; change it there")},
		{name: "GET static route", method: "GET", path: sr + "/static-r", status: 200, wantBody: "~\"key\":\"/apisix/stream_routes/static-r\""},

		// docs/apisix/upstreams.md#upstream-resource-checks
		{name: "chash without key", method: "PUT", path: "/apisix/admin/upstreams/2", body: `{"type":"chash","nodes":{"127.0.0.1:1":1}}`, status: 400, wantBody: errBody("missing key")},
		{name: "bare IPv6 node host", method: "PUT", path: "/apisix/admin/upstreams/2", body: `{"nodes":[{"host":"::1","port":80,"weight":1}]}`, status: 400,
			wantBody: errBody("invalid configuration: IPv6 address must be enclosed with '[' and ']'")},
		{name: "client_cert_id missing", method: "PUT", path: "/apisix/admin/upstreams/2", body: `{"nodes":{"127.0.0.1:1":1},"tls":{"client_cert_id":"9"}}`, status: 400,
			wantBody: errBody("failed to fetch ssl info by ssl id [9], response code: 404")},
		{name: "client_cert_id not a client ssl", method: "PUT", path: "/apisix/admin/upstreams/2", body: `{"nodes":{"127.0.0.1:1":1},"tls":{"client_cert_id":"static-ssl"}}`, status: 400,
			wantBody: errBody("failed to fetch ssl info by ssl id [static-ssl], wrong ssl type")},
		{name: "PATCH upstream", method: "PATCH", path: "/apisix/admin/upstreams/u1", body: `{"desc":"patched"}`, status: 200, wantBody: "~\"desc\":\"patched\""},
		{name: "PATCH upstream sub-path", method: "PATCH", path: "/apisix/admin/upstreams/u1/nodes", body: `{"127.0.0.1:1996":1}`, status: 200, wantBody: "~\"127.0.0.1:1996\":1"},
		{name: "PATCH missing upstream", method: "PATCH", path: "/apisix/admin/upstreams/missing", body: `{"desc":"x"}`, status: 404, wantBody: keyNotFound},

		// docs/apisix/tls.md#ssl-object-schema
		{name: "server ssl without sni", method: "PUT", path: "/apisix/admin/ssls/2", body: sslBody(""), status: 400, wantBody: errBody("invalid configuration: then clause did not match")},
		{name: "ssl cert does not parse", method: "PUT", path: "/apisix/admin/ssls/2",
			body:   `{"sni":"x.test","cert":"` + strings.Repeat("c", 200) + `","key":"` + strings.Repeat("k", 100) + `"}`,
			status: 400, wantBody: errBody("failed to parse cert: PEM_read_bio_X509_AUX() failed")},
		{name: "ssl snis empty", method: "PUT", path: "/apisix/admin/ssls/2", body: sslBody(`,"snis":[]`), status: 400,
			wantBody: errBody(`invalid configuration: property "snis" validation failed: expect array to have at least 1 items`)},

		// Caddy's admin endpoint in front: DNS-rebinding and cross-origin guards
		{name: "Host localhost accepted", method: "GET", path: sr, hdr: map[string]string{"Host": strings.Replace(f.p.inst.admin, "127.0.0.1", "localhost", 1)}, status: 200, wantBody: "*"},
		{name: "foreign Host refused by Caddy", method: "GET", path: sr, hdr: map[string]string{"Host": "evil.example"}, status: 403,
			wantBody: "~host not allowed: evil.example"},
		{name: "foreign Origin refused by Caddy", method: "GET", path: sr, hdr: map[string]string{"Origin": "http://evil.example"}, status: 403,
			wantBody: "~not allowed to access from origin"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, f.p) })
	}
}

// TestAdminAPINotAllowedClient: allow_admin is 127.0.0.1 here, so a
// client connecting from 127.0.0.5 gets nginx's 403 page, whatever its key.
func TestAdminAPINotAllowedClient(t *testing.T) {
	p := newInstance(t, "", appsConfig(apisixApp(nil))).start()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.5")}, Timeout: answerWait}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
	}}
	for _, method := range []string{"GET", "PUT"} {
		req, _ := http.NewRequest(method, "http://"+p.inst.admin+"/apisix/admin/upstreams/1", strings.NewReader(`{"nodes":{"127.0.0.1:1":1}}`))
		req.Header.Set("X-API-KEY", adminKey)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var sb strings.Builder
		_, _ = fmt.Fprint(&sb, readAll(resp))
		if resp.StatusCode != 403 || sb.String() != nginxPage(403) {
			t.Errorf("%s from 127.0.0.5: %s, want 403 and nginx's page", method, answer(resp.StatusCode, sb.String()))
		}
	}
	p.must(t, "GET", "/apisix/admin/upstreams/1", "", 404) // nothing was written
}

func readAll(resp *http.Response) string {
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			return sb.String()
		}
	}
}

// TestStreamModeDisabled: without stream_proxy every stream_routes call
// answers 400, after the key check; other resources work.
func TestStreamModeDisabled(t *testing.T) {
	p := newInstance(t, "", appsConfig(apisixApp(nil))).start()
	const sr = "/apisix/admin/stream_routes"
	disabled := errBody("stream mode is disabled, can not add stream routes")
	cases := []apiCase{
		{name: "GET list", method: "GET", path: sr, status: 400, wantBody: disabled},
		{name: "GET one", method: "GET", path: sr + "/1", status: 400, wantBody: disabled},
		{name: "PUT", method: "PUT", path: sr + "/1", body: `{"server_port":1}`, status: 400, wantBody: disabled},
		{name: "POST", method: "POST", path: sr, body: `{"server_port":1}`, status: 400, wantBody: disabled},
		{name: "DELETE", method: "DELETE", path: sr + "/1", status: 400, wantBody: disabled},
		{name: "PATCH", method: "PATCH", path: sr + "/1", body: `{}`, status: 400, wantBody: disabled},
		{name: "invalid body still disabled", method: "PUT", path: sr + "/1", body: `x`, status: 400, wantBody: disabled},
		{name: "viewer GET", method: "GET", path: sr, key: viewerKey, status: 400, wantBody: disabled},
		{name: "key checked first", method: "GET", path: sr, key: "-", status: 401, wantBody: tokenBody("missing apikey")},
		{name: "viewer PUT checked first", method: "PUT", path: sr + "/1", key: viewerKey, body: `{}`, status: 401, wantBody: tokenBody("invalid method for role viewer")},
		{name: "upstreams work", method: "PUT", path: "/apisix/admin/upstreams/1", body: `{"nodes":{"127.0.0.1:1":1}}`, status: 201, wantBody: "*"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, p) })
	}
}

// TestAdminAPIChunkedBodyLimit: a body sent without Content-Length
// (chunked, as curl -T - sends) is cut at the limit and refused with the
// size read.
func TestAdminAPIChunkedBodyLimit(t *testing.T) {
	p := newInstance(t, "", appsConfig(apisixApp(nil))).start()
	for _, tc := range []struct {
		size   int
		status int
		body   string
	}{
		{1572865, 400, errBody("invalid request body: request size 1572865 is greater than the maximum size 1572864 allowed")},
		{4 << 20, 400, errBody("invalid request body: request size 1572865 is greater than the maximum size 1572864 allowed")},
		{100, 400, errBody("invalid configuration: additional properties forbidden, found x")},
	} {
		payload := `{"nodes":{"127.0.0.1:1":1},"x":"` + strings.Repeat("a", tc.size-len(`{"nodes":{"127.0.0.1:1":1},"x":""}`)) + `"}`
		// A reader of unknown length makes the client send chunks (the
		// 4 MiB answer, naming 1572865 bytes, shows no length was sent).
		req, err := http.NewRequest("PUT", "http://"+p.inst.admin+"/apisix/admin/upstreams/1",
			struct{ *strings.Reader }{strings.NewReader(payload)})
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-API-KEY", adminKey)
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("%d bytes chunked: %v", tc.size, err)
		}
		got := readAll(resp)
		if resp.StatusCode != tc.status || got != tc.body {
			t.Errorf("%d bytes chunked: %s, want %s", tc.size, answer(resp.StatusCode, got), answer(tc.status, tc.body))
		}
	}
}
