//go:build linux

package clustere2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/datacrypt"
	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// put writes a raw etcd key, as an APISIX node or apisix init does.
func put(t *testing.T, ec *e2e.Etcd, key, value string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := ec.Client().Put(ctx, key, value)
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return resp.Header.Revision
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// askTLS connects to g's TLS listener with sni and returns the served
// certificate's CN and the upstream's first line.
func (g *gateway) askTLS(sni string) (cn, line string) {
	g.t.Helper()
	c, err := tls.Dial("tcp", g.tls, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
	if err != nil {
		return "", ""
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	cn = c.ConnectionState().PeerCertificates[0].Subject.CommonName
	if _, err := io.WriteString(c, "hi\n"); err != nil {
		return cn, ""
	}
	l, _ := bufio.NewReader(c).ReadString('\n')
	return cn, strings.TrimSpace(l)
}

// TestAPISIXValues: objects written straight into etcd in APISIX's format
// (as APISIX's Admin API stores them: no defaults, id in the value or not,
// SSL keys encrypted with APISIX's default keyring) are served by a data
// plane that finds no init_dir placeholders; nested and unknown keys are
// ignored; an invalid value is logged with its key and skipped while the
// last valid version keeps serving; a plugin this build lacks is skipped;
// <prefix>/plugins is never overwritten.
// And what our node writes decodes as APISIX would.
func TestAPISIXValues(t *testing.T) {
	ec := e2e.StartEtcd(t, 1, "http")
	b1, b2 := backend(t, "b1"), backend(t, "b2")
	plugins := `[{"name":"jwt-auth"},{"name":"mqtt-proxy","stream":true}]`
	put(t, ec, "/apisix/plugins", plugins)
	dp := startGateway(t, "DP", etcdConf(ec.Hosts(), nil), map[string]any{"role": "data_plane"})

	kr, _ := datacrypt.NewKeyring(datacrypt.DefaultKeyring)
	cert := e2e.NewCert(t, "apisix.test")
	encKey := kr.Encrypt(cert.KeyPEM)
	if strings.HasPrefix(encKey, "---") {
		t.Fatal("key not encrypted")
	}
	// as APISIX 3.x stores them (apisix/admin/resource.lua: the body,
	// id, create_time, update_time; no schema defaults)
	put(t, ec, "/apisix/upstreams/1", fmt.Sprintf(`{"nodes":{%q:1},"type":"roundrobin","id":"1","create_time":1700000000,"update_time":1700000000}`, b1))
	put(t, ec, "/apisix/upstreams/2", fmt.Sprintf(`{"nodes":[{"host":%q,"port":%s,"weight":1}],"create_time":1700000000,"update_time":1700000000}`,
		strings.Split(b2, ":")[0], strings.Split(b2, ":")[1]))
	put(t, ec, "/apisix/stream_routes/1", `{"upstream_id":"1","id":1,"create_time":1700000000,"update_time":1700000000}`)
	put(t, ec, "/apisix/ssls/1", `{"cert":`+jsonString(cert.CertPEM)+`,"key":`+jsonString(encKey)+`,"snis":["apisix.test"],"id":"1","create_time":1700000000,"update_time":1700000000}`)
	put(t, ec, "/apisix/stream_routes/tls", `{"sni":"apisix.test","upstream_id":"2","create_time":1700000000,"update_time":1700000000}`)
	// not ours: nested keys, other directories, unknown keys
	put(t, ec, "/apisix/services/9/graphql_cost_decorations/1", `{"x":1}`)
	put(t, ec, "/apisix/consumers/foo/credentials/1", `{"plugins":{}}`)
	put(t, ec, "/apisix/routes/1", `{"uri":"/hello","upstream_id":"1"}`)
	put(t, ec, "/apisix/data_plane/server_info/x", `{"id":"x"}`)

	dp.answers("b1 hi")
	eventually(t, "the SSL with the encrypted key serves", func() (bool, string) {
		cn, line := dp.askTLS("apisix.test")
		return cn == "apisix.test" && line == "b2 hi", cn + " " + line
	})
	got := dp.must(200, "GET", "/apisix/admin/stream_routes/1", "")
	if v := got["value"].(map[string]any); v["id"] != "1" {
		t.Fatalf("the key's last segment is the id: %v", v)
	}
	list := dp.must(200, "GET", "/apisix/admin/stream_routes", "")
	if list["total"].(float64) != 2 {
		t.Fatalf("stream routes: %v", list)
	}

	// an invalid value: logged with its key, skipped, the last valid
	// version stays
	put(t, ec, "/apisix/stream_routes/1", `{"upstream_id":"1","remote_addr":"not-an-address"}`)
	put(t, ec, "/apisix/upstreams/3", `init_dir-like garbage`)
	put(t, ec, "/apisix/upstreams/4", upstreamBody(b2))
	eventually(t, "the event after the invalid ones is applied", func() (bool, string) {
		code, _ := dp.do("GET", "/apisix/admin/upstreams/4", "")
		return code == 200, fmt.Sprint(code)
	})
	if got := dp.ask(); got != "b1 hi" {
		t.Fatalf("after an invalid value the last valid route must serve: %q", got)
	}
	for _, key := range []string{"/apisix/stream_routes/1", "/apisix/upstreams/3"} {
		if !strings.Contains(dp.proc.Output(), key) {
			t.Errorf("the invalid value of %s is not logged with its key", key)
		}
	}

	// a route naming a plugin this build lacks (an APISIX node of the
	// cluster may have it) serves without it, as APISIX's watcher skips it
	put(t, ec, "/apisix/stream_routes/1", `{"upstream_id":"4","plugins":{"kafka-logger":{"broker_list":{}}},"create_time":1700000000,"update_time":1700000000}`)
	eventually(t, "the route with an unknown plugin serves", func() (bool, string) {
		got := dp.ask()
		return got == "b2 hi", got
	})

	// a traditional node: writes init_dir placeholders, leaves
	// /apisix/plugins alone, and stores SSL keys encrypted as APISIX does
	tr := startGateway(t, "TR", etcdConf(ec.Hosts(), nil), nil)
	eventually(t, "placeholders", func() (bool, string) {
		resp, err := ec.Client().Get(context.Background(), "/apisix/upstreams/")
		return err == nil && len(resp.Kvs) == 1 && string(resp.Kvs[0].Value) == "init_dir", fmt.Sprint(resp)
	})
	cert2 := e2e.NewCert(t, "ours.test")
	tr.must(201, "PUT", "/apisix/admin/ssls/ours", `{"cert":`+jsonString(cert2.CertPEM)+`,"key":`+jsonString(cert2.KeyPEM)+`,"snis":["ours.test"]}`)
	resp, err := ec.Client().Get(context.Background(), "/apisix/ssls/ours")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatal(resp, err)
	}
	var stored map[string]any
	if err := json.Unmarshal(resp.Kvs[0].Value, &stored); err != nil {
		t.Fatal(err)
	}
	k, _ := stored["key"].(string)
	if strings.HasPrefix(k, "---") {
		t.Fatalf("our node stored the key in clear")
	}
	if clear, err := kr.Decrypt(k); err != nil || clear != cert2.KeyPEM {
		t.Fatalf("our stored key does not decrypt with APISIX's default keyring: %v", err)
	}
	if stored["id"] != "ours" || stored["create_time"] == nil {
		t.Fatalf("stored value: %v", stored)
	}
	pl, _ := ec.Client().Get(context.Background(), "/apisix/plugins")
	if len(pl.Kvs) != 1 || string(pl.Kvs[0].Value) != plugins {
		t.Fatalf("/apisix/plugins changed: %v", pl.Kvs)
	}
	eventually(t, "the data plane serves our SSL", func() (bool, string) {
		cn, _ := dp.askTLS("ours.test")
		return cn == "ours.test", cn
	})
}
