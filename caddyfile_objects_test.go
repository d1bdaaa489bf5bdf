package stream

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestCaddyfileObjects(t *testing.T) {
	pem := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(pem, []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pemJSON, _ := json.Marshal("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	tests := []struct {
		name, in string
		want     string // JSON of the app's static objects
		wantErr  string
	}{
		{"upstream", `apisix {
			upstream 1 {
				node 127.0.0.1:3306 2
				node [::1]:3307 1 -1
				nodes 127.0.0.1:3308=3 db.internal:3309
				type chash
				hash_on vars
				key remote_addr
				retries 2
				retry_timeout 1.5
				timeout 3 60 60.5
				scheme tls
				tls {
					client_cert_id 9
					verify
				}
				checks {"active":{"type":"tcp"}}
				name mysql
				desc "the database"
				label env prod
				json keepalive_pool {"size":4}
			}
		}`, `{"upstreams":[{"checks":{"active":{"type":"tcp"}},"desc":"the database","hash_on":"vars","id":"1","keepalive_pool":{"size":4},"key":"remote_addr","labels":{"env":"prod"},"name":"mysql","nodes":[{"host":"127.0.0.1","port":3306,"weight":2},{"host":"::1","port":3307,"priority":-1,"weight":1},{"host":"127.0.0.1","port":3308,"weight":3},{"host":"db.internal","port":3309,"weight":1}],"retries":2,"retry_timeout":1.5,"scheme":"tls","timeout":{"connect":3,"read":60.5,"send":60},"tls":{"client_cert_id":"9","verify":true},"type":"chash"}]}`, ""},
		{"stream route", `apisix {
			stream_route r1 {
				remote_addr 10.0.0.0/8
				server_addr 127.0.0.1
				server_port 9101
				snis a.test *.b.test
				tls_passthrough
				upstream {
					node 127.0.0.1:1995
					type roundrobin
				}
				plugin ip-restriction {"whitelist":["10.0.0.0/8"]}
				plugin prometheus
			}
			stream_route 2 {
				sni c.test
				upstream_id 1
				service_id 3
			}
		}`, `{"stream_routes":[{"id":"r1","plugins":{"ip-restriction":{"whitelist":["10.0.0.0/8"]},"prometheus":{}},"remote_addr":"10.0.0.0/8","server_addr":"127.0.0.1","server_port":9101,"snis":["a.test","*.b.test"],"tls_passthrough":true,"upstream":{"nodes":[{"host":"127.0.0.1","port":1995,"weight":1}],"type":"roundrobin"}},{"id":"2","service_id":"3","sni":"c.test","upstream_id":"1"}]}`, ""},
		{"ssl", `apisix {
			ssl 1 {
				cert ` + pem + `
				key $env://KEY
				snis a.test b.test
				client {
					ca ` + pem + `
					depth 2
				}
				ssl_protocols TLSv1.2 TLSv1.3
				status 1
			}
		}`, `{"ssls":[{"cert":` + string(pemJSON) + `,"client":{"ca":` + string(pemJSON) + `,"depth":2},"id":"1","key":"$env://KEY","snis":["a.test","b.test"],"ssl_protocols":["TLSv1.2","TLSv1.3"],"status":1}]}`, ""},
		{"service", `apisix {
			service s1 {
				upstream {
					node 127.0.0.1:1995
				}
				plugin limit-conn {"conn":1,"burst":0,"default_conn_delay":1,"key":"remote_addr"}
				name svc
			}
			service s2 {
				upstream_id 1
			}
		}`, `{"services":[{"id":"s1","name":"svc","plugins":{"limit-conn":{"burst":0,"conn":1,"default_conn_delay":1,"key":"remote_addr"}},"upstream":{"nodes":[{"host":"127.0.0.1","port":1995,"weight":1}]}},{"id":"s2","upstream_id":"1"}]}`, ""},
		{"service unknown field", "apisix {\nservice 1 {\nserver_port 1\n}\n}", "", `unknown service option "server_port"`},
		{"no id", "apisix {\nupstream {\nnode 127.0.0.1:1\n}\n}", "", "upstream: want <id>"},
		{"bad node", "apisix {\nupstream 1 {\nnode 127.0.0.1\n}\n}", "", `node "127.0.0.1": want host:port`},
		{"bad weight", "apisix {\nupstream 1 {\nnode 127.0.0.1:1 x\n}\n}", "", `weight "x" is not an integer`},
		{"bad json", "apisix {\nstream_route 1 {\njson protocol {x\n}\n}", "", ""}, // a lone { opens a block: caught by the lexer or as a syntax error
		{"bad plugin json", "apisix {\nstream_route 1 {\nplugin limit-conn [1\n}\n}", "", "plugin limit-conn: invalid JSON"},
		{"unknown field", "apisix {\nstream_route 1 {\nbogus 1\n}\n}", "", `unknown stream_route option "bogus"`},
		{"inline upstream with args", "apisix {\nstream_route 1 {\nupstream 1\n}\n}", "", "use upstream_id"},
		{"missing file", "apisix {\nssl 1 {\ncert /nonexistent.pem\n}\n}", "", "no such file"},
		{"timeout count", "apisix {\nupstream 1 {\ntimeout 1 2\n}\n}", "", "timeout: want <connect> <send> <read>"},
		{"server_port", "apisix {\nstream_route 1 {\nserver_port x\n}\n}", "", `server_port: "x" is not an integer`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var app App
			err := app.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.in))
			if tt.want == "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(struct {
				StreamRoutes []json.RawMessage `json:"stream_routes,omitempty"`
				Upstreams    []json.RawMessage `json:"upstreams,omitempty"`
				SSLs         []json.RawMessage `json:"ssls,omitempty"`
				Services     []json.RawMessage `json:"services,omitempty"`
			}{app.StreamRoutes, app.Upstreams, app.SSLs, app.Services})
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

// TestCaddyfileObjectsValidate checks that what the blocks produce is what
// the Admin API validation accepts.
func TestCaddyfileObjectsValidate(t *testing.T) {
	in := `apisix {
		upstream 1 {
			node 127.0.0.1:3306
			type least_conn
			retries 1
			timeout 3 60 60
		}
		stream_route 1 {
			server_port 9101
			upstream_id 1
		}
		service 1 {
			upstream_id 1
		}
		stream_route 3 {
			service_id 1
		}
		stream_route 2 {
			remote_addr 127.0.0.1
			upstream {
				nodes 127.0.0.1:1995=2
				type chash
				key remote_addr
			}
		}
	}`
	var app App
	if err := app.UnmarshalCaddyfile(caddyfile.NewTestDispenser(in)); err != nil {
		t.Fatal(err)
	}
	if _, err := staticObjects(app.Upstreams, app.SSLs, app.Services, app.StreamRoutes); err != nil {
		t.Fatal(err)
	}
}

func FuzzCaddyfileObjects(f *testing.F) {
	f.Add("apisix {\n upstream 1 {\n node 127.0.0.1:1 2 3\n timeout 1 2 3\n tls {\n verify\n }\n }\n}")
	f.Add("apisix {\n stream_route 1 {\n snis a b\n upstream {\n nodes [::1]:1=2\n }\n plugin x {\"a\":1}\n json protocol {\"name\":\"redis\"}\n }\n}")
	f.Add("apisix {\n ssl 1 {\n cert -----x\n client {\n depth 1\n }\n label a b\n }\n}")
	f.Fuzz(func(t *testing.T, in string) {
		tokens, err := caddyfile.Tokenize([]byte(in), "fuzz")
		if err != nil {
			return
		}
		var app App
		if app.UnmarshalCaddyfile(caddyfile.NewDispenser(tokens)) != nil {
			return
		}
		for _, list := range [][]json.RawMessage{app.StreamRoutes, app.Upstreams, app.SSLs} {
			for _, raw := range list {
				if !json.Valid(raw) {
					t.Fatalf("invalid JSON %s", raw)
				}
			}
		}
	})
}
