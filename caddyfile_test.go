package stream

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	tests := []struct {
		in      string
		want    string // JSON of the app, when no error
		wantErr string
	}{
		{`apisix {
			stream_proxy {
				tcp 9100 127.0.0.1:9101
				tcp 9102 {
					tls
				}
				udp 9200
			}
			admin_key admin k1 admin
			admin_key viewer k2 viewer
			allow_admin 127.0.0.0/24 ::1
			fallback_sni default.example.com
			access_log
		}`, `{"stream_proxy":{"tcp":[9100,"127.0.0.1:9101",{"addr":9102,"tls":true}],"udp":[9200]},"admin_key":[{"name":"admin","key":"k1","role":"admin"},{"name":"viewer","key":"k2","role":"viewer"}],"allow_admin":["127.0.0.0/24","::1"],"fallback_sni":"default.example.com","access_log":true}`, ""},
		{`apisix {
			admin_listen 0.0.0.0:9180
			admin_key admin {env.APISIX_ADMIN_KEY}
		}`, `{"admin_key":[{"name":"admin","key":"{env.APISIX_ADMIN_KEY}","role":"admin"}],"admin_listen":"0.0.0.0:9180"}`, ""},
		{`apisix {
			admin_listen 0.0.0.0:9180 {
				tls /etc/apisix/admin.crt /etc/apisix/admin.key
				origins https://admin.example.com:9180 10.0.0.5:9180
			}
		}`, `{"admin_listen":"0.0.0.0:9180","admin_tls":{"cert_file":"/etc/apisix/admin.crt","key_file":"/etc/apisix/admin.key"},"admin_origins":["https://admin.example.com:9180","10.0.0.5:9180"]}`, ""},
		{`apisix {
			admin_listen :9180 {
				tls /etc/apisix/admin.crt /etc/apisix/admin.key /etc/apisix/clients-ca.crt
			}
		}`, `{"admin_listen":":9180","admin_tls":{"cert_file":"/etc/apisix/admin.crt","key_file":"/etc/apisix/admin.key","ca_file":"/etc/apisix/clients-ca.crt"}}`, ""},
		{`apisix {
			admin_listen :9180 {
				tls /etc/apisix/admin.crt
			}
		}`, "", "want <cert_file> <key_file>"},
		{`apisix {
			admin_listen :9180 {
				tls a b c d
			}
		}`, "", "want <cert_file> <key_file> [<client_ca_file>]"},
		{`apisix {
			admin_listen :9180 {
				cors
			}
		}`, "", "unknown admin_listen option"},
		{`apisix {
			admin_listen
		}`, "", "wrong argument count"},
		{`apisix {
			admin_listen :9180 :9181
		}`, "", "wrong argument count"},
		{`apisix {
			stream_proxy {
				udp 9200
				udp_max_sessions 100
				udp_max_sessions_total 1000
				udp_unanswered_timeout 2s
				tcp_max_connections 5000
				fd_reserve 64
				tcp_copy splice
			}
		}`, `{"stream_proxy":{"udp":[9200],"udp_max_sessions":100,"udp_max_sessions_total":1000,"udp_unanswered_timeout":2000000000,"tcp_max_connections":5000,"fd_reserve":64,"tcp_copy":"splice"}}`, ""},
		{`apisix {
			stream_proxy {
				tcp_copy sendfile
			}
		}`, "", `tcp_copy: unknown copy mode "sendfile" (want auto, buffer or splice)`},
		{`apisix {
			stream_proxy {
				tcp_copy
			}
		}`, "", "wrong argument count"},
		{`apisix {
			stream_proxy {
				udp_max_sessions many
			}
		}`, "", "udp_max_sessions: not an integer: many"},
		{`apisix {
			stream_proxy {
				udp_unanswered_timeout soon
			}
		}`, "", "udp_unanswered_timeout:"},
		{`apisix {
			stream_proxy {
				tcp_max_connections
			}
		}`, "", "wrong argument count"},
		{`apisix {
			bogus
		}`, "", `unknown apisix option "bogus"`},
		{`apisix {
			stream_proxy {
				sctp 9100
			}
		}`, "", "unknown stream_proxy directive"},
		{`apisix {
			stream_proxy {
				udp 9200 {
					tls
				}
			}
		}`, "", "udp entries take no options"},
		{`apisix {
			admin_key onlyname
		}`, "", "admin_key: want <name> <key> [role]"},
		{`apisix extra`, "", "wrong argument count"},
	}
	for _, tt := range tests {
		var app App
		err := app.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.in))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s\nerr = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		got, _ := json.Marshal(&app)
		if string(got) != tt.want {
			t.Errorf("got  %s\nwant %s", got, tt.want)
		}
	}
}

func FuzzUnmarshalCaddyfile(f *testing.F) {
	f.Add("apisix {\n stream_proxy {\n tcp 9100 {\n tls\n }\n }\n}")
	f.Add("apisix {\n admin_key a b viewer\n etcd {\n host http://127.0.0.1:2379\n }\n}")
	f.Fuzz(func(t *testing.T, in string) {
		tokens, err := caddyfile.Tokenize([]byte(in), "fuzz")
		if err != nil {
			return
		}
		var app App
		_ = app.UnmarshalCaddyfile(caddyfile.NewDispenser(tokens))
	})
}
