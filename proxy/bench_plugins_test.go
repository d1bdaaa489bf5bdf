package proxy

import (
	"fmt"
	"net"
	"testing"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"
)

// benchPluginSets are the route plugins of BenchmarkTCPPlugins.
var benchPluginSets = []struct {
	name, plugins string
	// viaService puts the plugins and the upstream on a service the route
	// names, so the route runs the merged result.
	viaService bool
}{
	{"plugins=0", `{}`, false},
	{"plugins=1", `{"ip-restriction":{"whitelist":["127.0.0.0/8"]}}`, false},
	{"plugins=2", `{"ip-restriction":{"whitelist":["127.0.0.0/8"]},"limit-conn":{"conn":100000,"burst":0,"default_conn_delay":0.1,"key":"remote_addr"}}`, false},
	{"plugins=3", `{"ip-restriction":{"whitelist":["127.0.0.0/8"]},"limit-conn":{"conn":100000,"burst":0,"default_conn_delay":0.1,"key":"$remote_addr $server_port","key_type":"var_combination"},"traffic-split":{"rules":[{"match":[{"vars":[["server_addr","==","127.0.0.1"]]}],"weighted_upstreams":[{"weight":1}]}]}}`, false},
	{"service+plugins=1", `{"ip-restriction":{"whitelist":["127.0.0.0/8"]}}`, true},
}

// BenchmarkTCPPlugins measures one proxied connection's whole life, as
// BenchmarkTCPConn, with 0 to 3 plugins on the route: ip-restriction,
// limit-conn (by remote_addr; with 3, by a var_combination key) and
// traffic-split (a rule whose match holds, to the route's upstream); and
// with one plugin and the upstream coming from the route's service.
func BenchmarkTCPPlugins(b *testing.B) {
	backend := benchTCPServer(b, benchEcho)
	for _, tc := range benchPluginSets {
		b.Run(tc.name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { ln.Close() })
			rt := NewRuntime(nil)
			b.Cleanup(rt.Close)
			reg := registry.New()
			if err := reg.SetCompile(rt.Compile); err != nil {
				b.Fatal(err)
			}
			err = reg.Update(func(tx *registry.Tx) error {
				body := fmt.Sprintf(`{"plugins":%s,"upstream":{"type":"roundrobin","nodes":{%q:1}}}`, tc.plugins, backend)
				if !tc.viaService {
					_, _, err := tx.Put(model.StreamRoutes, "1", []byte(body))
					return err
				}
				if _, _, err := tx.Put(model.Services, "s", []byte(body)); err != nil {
					return err
				}
				_, _, err := tx.Put(model.StreamRoutes, "1", []byte(`{"service_id":"s"}`))
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
			go func() { _ = rt.ServeTCP(ln, ListenerOptions{}) }()
			benchConns(b, ln.Addr().String())
		})
	}
}
