package handlers

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestProxyUnmarshalCaddyfile(t *testing.T) {
	tests := []struct {
		name, in, want, wantErr string
	}{
		{"block", "apisix_proxy 127.0.0.1:6379=3 127.0.0.1:6380 {\n type chash\n key remote_addr\n retries 1\n timeout 1 2 3\n}",
			`{"key":"remote_addr","nodes":{"127.0.0.1:6379":3,"127.0.0.1:6380":1},"retries":1,"timeout":{"connect":1,"read":3,"send":2},"type":"chash"}`, ""},
		{"one line", "apisix_proxy 127.0.0.1:6379=3 127.0.0.1:6380 type=chash key=remote_addr retries=1 timeout=1,2,3",
			`{"key":"remote_addr","nodes":{"127.0.0.1:6379":3,"127.0.0.1:6380":1},"retries":1,"timeout":{"connect":1,"read":3,"send":2},"type":"chash"}`, ""},
		{"nodes only", "apisix_proxy [::1]:5432", `{"nodes":{"[::1]:5432":1}}`, ""},
		{"no nodes", "apisix_proxy type=chash", "", "at least one node"},
		{"bad timeout", "apisix_proxy 127.0.0.1:1 timeout=1,2", "", "timeout: want <connect> <send> <read>"},
		{"bad retries", "apisix_proxy 127.0.0.1:1 retries=x", "", "retries:"},
		{"retries with trailing junk", "apisix_proxy 127.0.0.1:1 retries=3abc", "", `retries: strconv.Atoi: parsing "3abc": invalid syntax`},
		{"weight with trailing junk", "apisix_proxy 127.0.0.1:1=3abc", "", `invalid weight in "127.0.0.1:1=3abc"`},
		{"timeout with trailing junk", "apisix_proxy 127.0.0.1:1 timeout=1,2,3s", "", `timeout: strconv.ParseFloat: parsing "3s": invalid syntax`},
		{"fractional timeout", "apisix_proxy 127.0.0.1:1 timeout=0.5,2,3", `{"nodes":{"127.0.0.1:1":1},"timeout":{"connect":0.5,"read":3,"send":2}}`, ""},
		{"hash_on in block", "apisix_proxy 127.0.0.1:1 {\n type chash\n hash_on vars\n key remote_addr\n}", `{"hash_on":"vars","key":"remote_addr","nodes":{"127.0.0.1:1":1},"type":"chash"}`, ""},
		{"scheme inline", "apisix_proxy 127.0.0.1:1 scheme=tls", `{"nodes":{"127.0.0.1:1":1},"scheme":"tls"}`, ""},
		{"two-arg type", "apisix_proxy 127.0.0.1:1 {\n type chash roundrobin\n}", "", "wrong argument count"},
		{"unknown", "apisix_proxy 127.0.0.1:1 {\n bogus 1\n}", "", `unknown apisix_proxy option "bogus"`},
	}
	for _, tt := range tests {
		var h Proxy
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.in))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: err %v, want %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if string(h.Upstream) != tt.want {
			t.Errorf("%s:\ngot  %s\nwant %s", tt.name, h.Upstream, tt.want)
		}
	}
}

func FuzzProxyUnmarshalCaddyfile(f *testing.F) {
	f.Add("apisix_proxy 127.0.0.1:6379=3 type=chash timeout=1,2,3 {\n retries 1\n}")
	f.Add("apisix_proxy a:1 {\n timeout 1 2 3\n}")
	f.Fuzz(func(t *testing.T, in string) {
		tokens, err := caddyfile.Tokenize([]byte(in), "fuzz")
		if err != nil {
			return
		}
		var h Proxy
		_ = h.UnmarshalCaddyfile(caddyfile.NewDispenser(tokens))
	})
}

// TestProxyCaddyfileName: name labels the handler, inline or in the block.
func TestProxyCaddyfileName(t *testing.T) {
	for _, in := range []string{
		"apisix_proxy 127.0.0.1:6379 name=redis",
		"apisix_proxy 127.0.0.1:6379 {\n name redis\n}",
	} {
		var h Proxy
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(in)); err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if h.Name != "redis" || string(h.Upstream) != `{"nodes":{"127.0.0.1:6379":1}}` {
			t.Errorf("%q: name %q, upstream %s", in, h.Name, h.Upstream)
		}
	}
	var h Proxy
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("apisix_proxy 127.0.0.1:6379 {\n name a b\n}")); err == nil {
		t.Error("name with two arguments accepted")
	}
}
