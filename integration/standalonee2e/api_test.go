//go:build linux

package standalonee2e

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// adcDoc is a configuration as ADC's apisix-standalone backend PUTs it
// (libs/backend-apisix-standalone/src/operator.ts): every changed
// collection's <key>_conf_version and every object's modifiedIndex are
// the sync's millisecond timestamp. The route hangs under its upstream.
func adcDoc(ts int64, node string, routes bool) map[string]any {
	doc := map[string]any{
		"upstreams_conf_version": ts,
		"upstreams": []any{map[string]any{
			"id": "svc-1", "name": "svc", "modifiedIndex": ts, "type": "roundrobin", "scheme": "tcp",
			"nodes":  []any{map[string]any{"host": "127.0.0.1", "port": portOf(node), "weight": 100}},
			"labels": map[string]any{"managed-by": "adc"},
		}},
		"stream_routes_conf_version": ts,
	}
	if routes {
		doc["stream_routes"] = []any{map[string]any{
			"id": "route-1", "modifiedIndex": ts, "upstream_id": "svc-1",
			"labels": map[string]any{"__ADC_NAME": "tcp-route", "managed-by": "adc"},
		}}
	}
	return doc
}

func portOf(addr string) int {
	i := strings.LastIndexByte(addr, ':')
	p, _ := strconv.Atoi(addr[i+1:])
	return p
}

// put PUTs doc as ADC does: JSON, X-Digest = sha1 of the JSON text.
func (in *instance) put(doc map[string]any) (int, map[string][]string, string) {
	in.t.Helper()
	raw, err := json.Marshal(doc)
	if err != nil {
		in.t.Fatal(err)
	}
	sum := sha1.Sum(raw)
	st, h, body := in.do("PUT", "/apisix/admin/configs", "", string(raw), map[string]string{
		"Content-Type": "application/json", "X-Digest": hex.EncodeToString(sum[:])})
	return st, h, body
}

// TestAPIDriven replays ADC's apisix-standalone backend against role
// traditional + config_provider json: ping and version (HEAD
// /apisix/admin), the latest-server probe (HEAD /configs), dump (GET
// /configs), validate, sync create/update/delete, then the version and
// digest rules, an invalid document, and a restart.
func TestAPIDriven(t *testing.T) {
	a, b := backend(t, "A"), backend(t, "B")
	in := newInstance(t, map[string]any{"config_provider": "json"})
	p := in.start()

	// ping + version: no key
	st, h, _ := in.do("HEAD", "/apisix/admin", "-", "", nil)
	if st != 200 || h.Get("Server") != "APISIX/3.18.0" {
		t.Fatalf("HEAD /apisix/admin: %d %v", st, h)
	}
	// findLatest: nothing accepted yet, so no X-Last-Modified
	h, _ = in.must(200, "HEAD", "/apisix/admin/configs", "", nil)
	if h.Get("X-Last-Modified") != "" || h.Get("X-Digest") != "" {
		t.Fatalf("HEAD /configs before any PUT: %v", h)
	}
	// dump
	_, body := in.must(200, "GET", "/apisix/admin/configs", "", nil)
	if m := jsonOf(t, body); m["stream_routes_conf_version"] != 0.0 || m["routes_conf_version"] != 0.0 {
		t.Fatalf("empty configuration: %s", body)
	}
	// validate, with the empty HTTP collections ADC always sends
	_, body = in.must(200, "POST", "/apisix/admin/configs/validate",
		`{"routes":[],"services":[],"consumers":[],"ssls":[],"global_rules":[],"plugin_metadata":[],`+
			`"stream_routes":[{"labels":{"__ADC_NAME":"tcp-route"},"upstream_id":"svc-1"}],"upstreams":[]}`, nil)
	if body != "{}\n" {
		t.Fatalf("validate: %q", body)
	}
	st, _, body = in.do("POST", "/apisix/admin/configs/validate", "",
		`{"stream_routes":[{"server_port":"x"}],"routes":[{"uri":"/"}]}`, nil)
	if st != 400 || !strings.Contains(body, `"error_msg":"Configuration validation failed"`) ||
		!strings.Contains(body, `{"resource_type":"stream_routes","resource_id":"","index":0,`) ||
		!strings.Contains(body, `"error":"this gateway serves stream routes only: routes are not supported"`) {
		t.Fatalf("validate errors: %d %s", st, body)
	}

	// sync: create
	const ts1 = int64(1760000000000)
	st, h, body = in.put(adcDoc(ts1, a, true))
	if st != 202 || h.Get("X-Digest") == "" || h.Get("X-Last-Modified") == "" || body != "" {
		t.Fatalf("PUT create: %d %v %q", st, h, body)
	}
	waitGreeter(t, in.proxy, "A")
	held, err := dial(in.proxy)
	if err != nil {
		t.Fatal(err)
	}
	defer held.c.Close()
	// the same document again: same digest, 204, nothing changes
	if st, _, _ := in.put(adcDoc(ts1, a, true)); st != 204 {
		t.Fatalf("same digest: %d", st)
	}
	// sync: update
	const ts2 = ts1 + 1000
	if st, _, body := in.put(adcDoc(ts2, b, true)); st != 202 {
		t.Fatalf("PUT update: %d %s", st, body)
	}
	waitGreeter(t, in.proxy, "B")
	if err := held.echo("kept"); err != nil {
		t.Fatalf("connection established before the update: %v", err)
	}
	// a version that goes back
	if st, _, body := in.put(adcDoc(ts1, a, true)); st != 400 ||
		body != `{"error_msg":"upstreams_conf_version must be greater than or equal to (1760000001000)"}`+"\n" {
		t.Fatalf("older version: %d %s", st, body)
	}
	// an invalid document changes nothing and names its object
	bad := adcDoc(ts2+1000, a, true)
	bad["stream_routes"].([]any)[0].(map[string]any)["upstream_id"] = "missing"
	if st, _, body := in.put(bad); st != 400 ||
		body != `{"error_msg":"invalid stream_routes[0]: failed to fetch upstream info by upstream id [missing], response code: 404"}`+"\n" {
		t.Fatalf("invalid document: %d %s", st, body)
	}
	if name, err := greeter(in.proxy); err != nil || name != "B" {
		t.Fatalf("after an invalid document: %q %v", name, err)
	}
	// per-object writes are refused in this mode; reads work
	if st, _, _ := in.do("DELETE", "/apisix/admin/stream_routes/route-1", "", "", nil); st != 405 {
		t.Fatalf("per-object delete: %d", st)
	}
	_, body = in.must(200, "GET", "/apisix/admin/stream_routes/route-1", "", nil)
	if !strings.Contains(body, `"__ADC_NAME":"tcp-route"`) || !strings.Contains(body, `"managed-by":"adc"`) {
		t.Fatalf("stored route: %s", body)
	}

	// restart: the last accepted document is served again
	hBefore, dumpBefore := in.must(200, "GET", "/apisix/admin/configs", "", nil)
	p.Stop()
	in.start()
	hAfter, dumpAfter := in.must(200, "GET", "/apisix/admin/configs", "", nil)
	if hAfter.Get("X-Digest") != hBefore.Get("X-Digest") || dumpAfter != dumpBefore {
		t.Fatalf("after a restart:\n%v %s\nbefore:\n%v %s", hAfter, dumpAfter, hBefore, dumpBefore)
	}
	waitGreeter(t, in.proxy, "B")

	// sync: delete the route (its collection's version moves on)
	const ts3 = ts2 + 2000
	if st, _, body := in.put(adcDoc(ts3, b, false)); st != 202 {
		t.Fatalf("PUT delete: %d %s", st, body)
	}
	if _, err := greeter(in.proxy); err == nil {
		t.Fatal("a connection was proxied with no stream route left")
	}
	_, body = in.must(200, "GET", "/apisix/admin/stream_routes", "", nil)
	if body != `{"list":[],"total":0}`+"\n" {
		t.Fatalf("stream routes after delete: %s", body)
	}
}

// TestAPIDrivenYAML is a YAML body (Content-Type application/yaml) and a
// YAML answer (Accept: application/yaml).
func TestAPIDrivenYAML(t *testing.T) {
	a := backend(t, "A")
	in := newInstance(t, map[string]any{"config_provider": "yaml"})
	in.start()
	doc := "upstreams:\n  - id: 1\n    nodes:\n      \"" + a + "\": 1\nstream_routes:\n  - id: 1\n    upstream_id: 1\n"
	if st, _, body := in.do("PUT", "/apisix/admin/configs", "", doc,
		map[string]string{"Content-Type": "application/yaml", "X-Digest": "y1"}); st != 202 {
		t.Fatalf("PUT yaml: %d %s", st, body)
	}
	waitGreeter(t, in.proxy, "A")
	h, body := in.must(200, "GET", "/apisix/admin/configs", "", map[string]string{"Accept": "application/yaml"})
	if h.Get("Content-Type") != "application/yaml" || !strings.Contains(body, "stream_routes_conf_version: 1") {
		t.Fatalf("GET yaml: %v\n%s", h, body)
	}
	if st, _, body := in.do("PUT", "/apisix/admin/configs", "", "{", map[string]string{"X-Digest": "y2"}); st != 400 ||
		!strings.HasPrefix(body, `{"error_msg":"invalid request body: `) {
		t.Fatalf("bad JSON: %d %s", st, body)
	}
	if st, _, body := in.do("PUT", "/apisix/admin/configs", "", doc, nil); st != 400 ||
		body != `{"error_msg":"missing digest header"}`+"\n" {
		t.Fatalf("no digest: %d %s", st, body)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
