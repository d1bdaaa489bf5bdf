package handlers

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestDispatchUnmarshalCaddyfile(t *testing.T) {
	tests := []struct {
		name, in, want, wantErr string
	}{
		{"bare", "apisix", `{}`, ""},
		{"all options", "apisix {\n tls\n tls_passthrough\n proxy_protocol\n proxy_protocol_to_upstream\n}",
			`{"tls":true,"tls_passthrough":true,"proxy_protocol":true,"proxy_protocol_to_upstream":true}`, ""},
		{"one option", "apisix {\n proxy_protocol\n}", `{"proxy_protocol":true}`, ""},
		{"argument", "apisix extra", "", "wrong argument count"},
		{"option argument", "apisix {\n tls yes\n}", "", "wrong argument count"},
		{"unknown", "apisix {\n bogus\n}", "", `unknown apisix handler option "bogus"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Dispatch
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(&h)
			if string(got) != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
			// the JSON the Caddyfile makes is the JSON config's
			var back Dispatch
			if err := json.Unmarshal(got, &back); err != nil || back != h {
				t.Fatalf("JSON round trip: %+v, %v", back, err)
			}
		})
	}
}

func TestProxyProvisionJSON(t *testing.T) {
	tests := []struct {
		name, upstream, wantErr string
	}{
		{"roundrobin", `{"nodes":{"127.0.0.1:6379":1},"type":"roundrobin"}`, ""},
		{"node list", `{"nodes":[{"host":"127.0.0.1","port":6379,"weight":1}],"type":"chash","key":"remote_addr"}`, ""},
		{"missing", ``, "apisix_proxy: upstream is required"},
		{"not JSON", `{"nodes":`, "apisix_proxy: upstream: invalid JSON"},
		{"bad timeout", `{"nodes":{"127.0.0.1:1":1},"timeout":{"connect":"x","send":1,"read":1}}`, "apisix_proxy: upstream:"},
		{"bad retries", `{"nodes":{"127.0.0.1:1":1},"retries":-1}`, "apisix_proxy: upstream:"},
		{"no nodes", `{"type":"roundrobin"}`, "apisix_proxy: upstream:"},
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Proxy{Upstream: json.RawMessage(tt.upstream)}
			err := h.Provision(ctx)
			defer h.Cleanup()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// The Caddyfile's upstream is provisioned as the JSON config would be.
func TestProxyCaddyfileProvisions(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	for _, in := range []string{
		"apisix_proxy 127.0.0.1:6379=3 127.0.0.1:6380 type=chash key=remote_addr retries=1 timeout=1,2,3",
		"apisix_proxy 127.0.0.1:6379 {\n type least_conn\n scheme tls\n}",
	} {
		var h Proxy
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(in)); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if err := h.Provision(ctx); err != nil {
			t.Fatalf("%s: provision: %v", in, err)
		}
		_ = h.Cleanup()
	}
}
