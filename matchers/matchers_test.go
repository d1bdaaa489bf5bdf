package matchers

import (
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/mholt/caddy-l4/layer4"
	"go.uber.org/zap"
)

func TestMatchUnmarshalCaddyfile(t *testing.T) {
	tests := []struct {
		name, in string
		want     Match
		wantErr  string
	}{
		{"empty", "apisix", Match{}, ""},
		{"all", "apisix {\n remote_addr 10.0.0.0/8\n server_addr ::1\n server_port 9100\n sni a.example\n}",
			Match{RemoteAddr: "10.0.0.0/8", ServerAddr: "::1", ServerPort: 9100, SNI: "a.example"}, ""},
		{"several snis", "apisix {\n sni a.example *.b.example\n}", Match{SNIs: []string{"a.example", "*.b.example"}}, ""},
		{"argument", "apisix 1", Match{}, "wrong argument count"},
		{"no value", "apisix {\n remote_addr\n}", Match{}, "wrong argument count"},
		{"two addrs", "apisix {\n remote_addr 1.1.1.1 2.2.2.2\n}", Match{}, "wrong argument count"},
		{"bad port", "apisix {\n server_port 9100x\n}", Match{}, `server_port: strconv.Atoi: parsing "9100x": invalid syntax`},
		{"unknown", "apisix {\n port 1\n}", Match{}, `unknown apisix matcher option "port"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m Match
			err := m.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m, tt.want) {
				t.Fatalf("got %+v, want %+v", m, tt.want)
			}
		})
	}
}

func TestMatchProvisionJSON(t *testing.T) {
	tests := []struct {
		name, in, wantErr string
	}{
		{"empty", `{}`, ""},
		{"cidrs", `{"remote_addr":"127.0.0.0/8","server_addr":"::/0","server_port":1}`, ""},
		{"bad remote", `{"remote_addr":"300.0.0.1"}`, "invalid remote_addr: 300.0.0.1"},
		{"bad server", `{"server_addr":"1.2.3.4/33"}`, "invalid server_addr: 1.2.3.4/33"},
		{"port range", `{"server_port":65536}`, "invalid server_port: 65536"},
		{"sni and snis", `{"sni":"a","snis":["b"]}`, "sni and snis are exclusive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m Match
			if err := json.Unmarshal([]byte(tt.in), &m); err != nil {
				t.Fatal(err)
			}
			err := m.Provision(caddy.Context{})
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr) {
				t.Fatalf("err %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestMatchConnection matches real loopback TCP connections.
func TestMatchConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := netip.MustParseAddrPort(ln.Addr().String()).Port()
	other := strconv.Itoa(int(port) + 1)
	tests := []struct {
		name, config string
		want         bool
	}{
		{"everything", `{}`, true},
		{"remote cidr", `{"remote_addr":"127.0.0.0/8"}`, true},
		{"remote other", `{"remote_addr":"10.0.0.1"}`, false},
		{"server addr and port", `{"server_addr":"127.0.0.1","server_port":` + strconv.Itoa(int(port)) + `}`, true},
		{"other port", `{"server_port":` + other + `}`, false},
		{"v6 server addr", `{"server_addr":"::1"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m Match
			if err := json.Unmarshal([]byte(tt.config), &m); err != nil {
				t.Fatal(err)
			}
			if err := m.Provision(caddy.Context{Context: context.Background()}); err != nil {
				t.Fatal(err)
			}
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			s, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			cx := layer4.WrapConnection(s, nil, zap.NewNop())
			got, err := m.Match(cx)
			if err != nil || got != tt.want {
				t.Fatalf("Match = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}
