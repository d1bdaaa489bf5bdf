package etcdstore

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/model"
)

func TestLayoutParse(t *testing.T) {
	l := newLayout("/apisix", DefaultKinds)
	tests := []struct {
		key      string
		kind     model.Kind
		id       string
		ok       bool
		whyNotOK string
	}{
		{"/apisix/stream_routes/1", model.StreamRoutes, "1", true, ""},
		{"/apisix/upstreams/00000000000000000012", model.Upstreams, "00000000000000000012", true, ""},
		{"/apisix/plugin_metadata/syslog", model.PluginMetadata, "syslog", true, ""},
		{"/apisix/services/s1", model.Services, "s1", true, ""},
		{"/apisix/ssls/", "", "", false, "init_dir placeholder"},
		{"/apisix/plugins", "", "", false, "single key"},
		{"/apisix/gen_id", "", "", false, "counter"},
		{"/apisix/routes/1", "", "", false, "HTTP only"},
		{"/apisix/consumers/foo/credentials/1", "", "", false, "nested"},
		{"/apisix/services/1/graphql_cost_decorations/2", "", "", false, "nested"},
		{"/apisixx/stream_routes/1", "", "", false, "other prefix"},
		{"/other/stream_routes/1", "", "", false, "other prefix"},
	}
	for _, tt := range tests {
		kind, id, ok := l.parse(tt.key)
		if ok != tt.ok || ok && (kind != tt.kind || id != tt.id) {
			t.Errorf("parse(%q) = %q %q %v, want %q %q %v (%s)", tt.key, kind, id, ok, tt.kind, tt.id, tt.ok, tt.whyNotOK)
		}
	}
}

func TestWithID(t *testing.T) {
	tests := []struct{ in, id, want, wantErr string }{
		{`{"id":"1","a":1}`, "1", `{"id":"1","a":1}`, ""},
		{`{"id":1,"a":1}`, "1", `{"a":1,"id":"1"}`, ""},
		{`{"a":1}`, "x", `{"a":1,"id":"x"}`, ""},
		{`init_dir`, "x", "", "it should be an object"},
		{`[1]`, "x", "", "it should be an object"},
	}
	for _, tt := range tests {
		got, err := withID([]byte(tt.in), tt.id)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("withID(%s) err = %v", tt.in, err)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("withID(%s) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}

func TestConfigJSON(t *testing.T) {
	var c Config
	if err := json.Unmarshal([]byte(`{"host":"http://127.0.0.1:2379","timeout":5}`), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(c.Host) != 1 || time.Duration(c.Timeout) != 5*time.Second || c.Prefix != "/apisix" {
		t.Fatalf("%+v", c)
	}
	if err := json.Unmarshal([]byte(`{"timeout":"1m"}`), &c); err != nil || time.Duration(c.Timeout) != time.Minute {
		t.Fatalf("%v %v", c.Timeout, err)
	}
	if err := json.Unmarshal([]byte(`{"host":5}`), &c); err == nil {
		t.Fatal("host 5 accepted")
	}
}

func FuzzLayoutParse(f *testing.F) {
	l := newLayout("/apisix", DefaultKinds)
	for _, s := range []string{"/apisix/stream_routes/1", "/apisix/ssls/", "/apisix/a/b/c", "/apisix"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		kind, id, ok := l.parse(key)
		if ok && l.key(kind, id) != key {
			t.Fatalf("parse(%q) = %s %s, key back %s", key, kind, id, l.key(kind, id))
		}
	})
}

func FuzzWithID(f *testing.F) {
	f.Add([]byte(`{"id":1}`), "1")
	f.Add([]byte(`init_dir`), "x")
	f.Fuzz(func(t *testing.T, v []byte, id string) {
		out, err := withID(v, id)
		if err != nil {
			return
		}
		obj, err := model.DecodeObject(out)
		if err != nil || obj["id"] != id {
			t.Fatalf("withID(%q, %q) = %s", v, id, out)
		}
	})
}
