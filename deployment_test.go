package stream

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestProvisionDeployment(t *testing.T) {
	tests := []struct {
		name, json, wantErr string
		role, provider      string
	}{
		{"defaults", `{}`, "", "traditional", "embedded"},
		{"etcd default provider", `{"etcd":{"host":["http://127.0.0.1:2379"]}}`, "", "traditional", "etcd"},
		{"etcd one host string", `{"etcd":{"host":"https://etcd.example:2379","timeout":5}}`, "", "traditional", "etcd"},
		{"data plane", `{"role":"data_plane","etcd":{"host":["http://127.0.0.1:2379"]}}`, "", "data_plane", "etcd"},
		{"control plane", `{"role":"control_plane","etcd":{"host":["http://127.0.0.1:2379"]}}`, "", "control_plane", "etcd"},
		{"bad role", `{"role":"standalone"}`, `role: "standalone" is not one of`, "", ""},
		{"bad provider", `{"config_provider":"xds"}`, `config_provider: "xds" is not one of`, "", ""},
		{"etcd provider without etcd", `{"config_provider":"etcd"}`, "needs an etcd block", "", ""},
		{"embedded with etcd", `{"config_provider":"embedded","etcd":{"host":["http://a:1"]}}`, "etcd is set but config_provider is embedded", "", ""},
		{"data plane embedded", `{"role":"data_plane"}`, "role data_plane needs config_provider etcd, yaml or json", "", ""},
		{"control plane embedded", `{"role":"control_plane"}`, "role control_plane needs config_provider etcd", "", ""},
		{"config_file with embedded", `{"config_file":"/x.yaml"}`, "config_file is used by config_provider yaml or json only", "", ""},
		{"no host", `{"etcd":{"host":[]}}`, "etcd.host: at least one URL is required", "", ""},
		{"bad scheme", `{"etcd":{"host":["tcp://127.0.0.1:2379"]}}`, `etcd.host[0]: "tcp://127.0.0.1:2379": the scheme must be http or https`, "", ""},
		{"not a url", `{"etcd":{"host":["http://a:1","::"]}}`, `etcd.host[1]: "::" is not a URL`, "", ""},
		{"bad port", `{"etcd":{"host":["http://a:99999"]}}`, `bad port`, "", ""},
		{"path", `{"etcd":{"host":["http://a:1/v3"]}}`, `want scheme://host:port only`, "", ""},
		{"bad prefix", `{"etcd":{"host":["http://a:1"],"prefix":"apisix"}}`, `etcd.prefix: "apisix" must start with /`, "", ""},
		{"bad timeout", `{"etcd":{"host":["http://a:1"],"timeout":"soon"}}`, `etcd.timeout: "soon" is not a duration`, "", ""},
		{"user only", `{"etcd":{"host":["http://a:1"],"user":"root"}}`, `user and password go together`, "", ""},
		{"cert only", `{"etcd":{"host":["https://a:1"],"tls":{"cert":"/c.pem"}}}`, `cert and key go together`, "", ""},
		{"missing ca", `{"etcd":{"host":["https://a:1"],"tls":{"ca":"/nonexistent/ca.pem"}}}`, `etcd.tls.ca: open /nonexistent/ca.pem`, "", ""},
		{"short key", `{"data_encryption":{"keyring":["qeddd145sfvddff3","short"]}}`, `data_encryption.keyring[1]: expected a 16 byte (AES-128) or 32 byte (AES-256) key, got 5 bytes`, "", ""},
		{"32 byte key", `{"data_encryption":{"keyring":["0123456789abcdef0123456789abcdef"]}}`, "", "traditional", "embedded"},
		{"file-driven standalone", `{"role":"data_plane","config_provider":"yaml"}`, "", "data_plane", "yaml"},
		{"api-driven standalone", `{"config_provider":"json"}`, "", "traditional", "json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a App
			if err := json.Unmarshal([]byte(tt.json), &a); err != nil {
				if tt.wantErr != "" && strings.Contains(err.Error(), tt.wantErr) {
					return
				}
				t.Fatal(err)
			}
			err := a.provisionDeployment(caddy.Context{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.deploy.role != tt.role || a.deploy.provider != tt.provider {
				t.Errorf("role %s provider %s, want %s %s", a.deploy.role, a.deploy.provider, tt.role, tt.provider)
			}
		})
	}
}

func TestUnmarshalCaddyfileCluster(t *testing.T) {
	tests := []struct{ in, want, wantErr string }{
		{`apisix {
			role data_plane
			config_provider etcd
			etcd {
				host http://127.0.0.1:2379 http://127.0.0.1:22379
				prefix /apisix
				timeout 30s
				user root
				password secret
				tls {
					cert /c.pem
					key /k.pem
					ca /ca.pem
					verify false
					sni etcd.local
				}
			}
			data_encryption {
				enable_encrypt_fields false
				keyring qeddd145sfvddff3 edd1c9f0985e76a2
			}
		}`, `{"role":"data_plane","config_provider":"etcd","etcd":{"host":["http://127.0.0.1:2379","http://127.0.0.1:22379"],"prefix":"/apisix","timeout":"30s","user":"root","password":"secret","tls":{"cert":"/c.pem","key":"/k.pem","ca":"/ca.pem","verify":false,"sni":"etcd.local"}},"data_encryption":{"enable_encrypt_fields":false,"keyring":["qeddd145sfvddff3","edd1c9f0985e76a2"]}}`, ""},
		{`apisix {
			config_file /etc/apisix.yaml
		}`, `{"config_file":"/etc/apisix.yaml"}`, ""},
		{`apisix {
			etcd {
				bogus 1
			}
		}`, "", `unknown etcd option "bogus"`},
		{`apisix {
			etcd {
				tls {
					verify maybe
				}
			}
		}`, "", `etcd.tls.verify: want true or false`},
		{`apisix {
			data_encryption {
				keyring
			}
		}`, "", `wrong argument count`},
		{`apisix {
			role
		}`, "", `wrong argument count`},
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
			t.Errorf("%s\ngot  %s\nwant %s", tt.in, got, tt.want)
		}
	}
}
