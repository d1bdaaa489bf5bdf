package adminapi

import (
	"strconv"
	"strings"
	"testing"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"
	"github.com/caddy-apisix/stream/standalone"
)

// blobMem is an in-memory standalone.Persister.
type blobMem struct{ data map[string][]byte }

func (b *blobMem) ReadBlob(name string) ([]byte, bool, error) {
	d, ok := b.data[name]
	return d, ok, nil
}

func (b *blobMem) WriteBlob(name string, data []byte) error {
	b.data[name] = append([]byte(nil), data...)
	return nil
}

// TestConfigsSequence is apisix/admin/standalone.lua's rules, step by
// step on one gateway, and a restart on the persisted configuration.
func TestConfigsSequence(t *testing.T) {
	blobs := &blobMem{data: map[string][]byte{}}
	cfg := keyedCfg(true)
	e := newEnv(t, cfg)
	cfg.Standalone = standalone.NewConfigs(e.reg, blobs)
	cfg.ReadOnly = "read-only"
	ak := "X-API-KEY: " + adminKey
	doc := func(ver int, port int) string {
		return `{"upstreams_conf_version":` + itoa(ver) + `,"stream_routes_conf_version":` + itoa(ver) +
			`,"upstreams":[{"id":"u","nodes":{"127.0.0.1:1":1},"modifiedIndex":` + itoa(ver) + `}]` +
			`,"stream_routes":[{"id":"r","server_port":` + itoa(port) + `,"upstream_id":"u"}]}`
	}
	steps := []struct {
		name         string
		method, path string
		body         string
		hdr          []string
		status       int
		want         string
	}{
		{"empty get", "GET", "/apisix/admin/configs", "", []string{ak}, 200, ""},
		{"needs a key", "GET", "/apisix/admin/configs", "", nil, 401, ""},
		{"missing digest", "PUT", "/apisix/admin/configs", doc(10, 9100), []string{ak}, 400,
			`{"error_msg":"missing digest header"}` + "\n"},
		{"empty body", "PUT", "/apisix/admin/configs", "", []string{ak, "X-Digest: a"}, 400,
			`{"error_msg":"invalid request body: empty request body"}` + "\n"},
		{"invalid object", "PUT", "/apisix/admin/configs",
			`{"stream_routes":[{"id":"r"},{"id":"s","upstream_id":1,"upstream":{}}]}`, []string{ak, "X-Digest: a"}, 400, ""},
		{"dangling reference", "PUT", "/apisix/admin/configs",
			`{"stream_routes":[{"id":"r","upstream_id":"nope"}]}`, []string{ak, "X-Digest: a"}, 400,
			`{"error_msg":"invalid stream_routes[0]: failed to fetch upstream info by upstream id [nope], response code: 404"}` + "\n"},
		{"accepted", "PUT", "/apisix/admin/configs", doc(10, 9100), []string{ak, "X-Digest: d1"}, 202, ""},
		{"same digest", "PUT", "/apisix/admin/configs", doc(11, 9101), []string{ak, "X-Digest: d1"}, 204, ""},
		{"older version", "PUT", "/apisix/admin/configs", doc(9, 9101), []string{ak, "X-Digest: d2"}, 400,
			`{"error_msg":"upstreams_conf_version must be greater than or equal to (10)"}` + "\n"},
		{"bad version type", "PUT", "/apisix/admin/configs",
			`{"stream_routes_conf_version":"x"}`, []string{ak, "X-Digest: d2"}, 400,
			`{"error_msg":"stream_routes_conf_version must be a number"}` + "\n"},
		{"equal version keeps items", "PUT", "/apisix/admin/configs", doc(10, 9101), []string{ak, "X-Digest: d3"}, 202, ""},
		{"per-object writes refused", "PUT", "/apisix/admin/stream_routes/x", `{"server_port":1}`, []string{ak}, 405, ""},
		{"objects readable", "GET", "/apisix/admin/stream_routes/r", "", []string{ak}, 200, ""},
		{"head", "HEAD", "/apisix/admin/configs", "", []string{ak}, 200, ""},
	}
	for _, st := range steps {
		r := e.do(st.method, st.path, st.body, st.hdr...)
		if r.status != st.status {
			t.Fatalf("%s: status %d, want %d; body %q", st.name, r.status, st.status, r.body)
		}
		if st.want != "" && r.body != st.want {
			t.Fatalf("%s: body\n got %q\nwant %q", st.name, r.body, st.want)
		}
		switch st.name {
		case "empty get":
			m := r.json(t)
			if mustJSON(t, m["stream_routes_conf_version"]) != "0" || mustJSON(t, m["routes_conf_version"]) != "0" ||
				r.header.Get("X-Digest") != "" {
				t.Fatalf("empty configuration: %v %v", m, r.header)
			}
		case "accepted":
			if r.header.Get("X-Digest") != "d1" || r.header.Get("X-Last-Modified") == "" {
				t.Fatalf("202 headers %v", r.header)
			}
		case "equal version keeps items":
			// the stored route (port 9100) stays; other collections got stored+1
			m := e.must(200, "GET", "/apisix/admin/configs", "", ak).json(t)
			if !strings.Contains(mustJSON(t, m["stream_routes"]), `"server_port":9100`) ||
				mustJSON(t, m["routes_conf_version"]) != "2" {
				t.Fatalf("configuration %v", m)
			}
		case "head":
			if r.header.Get("X-Digest") != "d3" || r.body != "" {
				t.Fatalf("HEAD: %v %q", r.header, r.body)
			}
		}
	}

	// a restart: a new registry restores the persisted configuration
	e2 := newEnv(t, keyedCfg(true))
	c2 := standalone.NewConfigs(e2.reg, blobs)
	if err := c2.Restore(); err != nil {
		t.Fatal(err)
	}
	var restored *registry.Object
	e2.reg.View(func(v registry.View) { restored = v.Get(model.StreamRoutes, "r") })
	if restored == nil || !strings.Contains(string(restored.Value), `"server_port":9100`) {
		t.Fatalf("restored route %+v", restored)
	}
	if _, _, d := c2.Current(); d != "d3" {
		t.Fatalf("restored digest %q", d)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
