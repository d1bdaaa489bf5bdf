//go:build linux

package usere2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// TestCLI runs caddy apisix routes, export, reset and import against a
// running node, as a user backing up and restoring its objects would.
func TestCLI(t *testing.T) {
	static := map[string]any{"upstreams": []any{map[string]any{"id": "static", "nodes": map[string]any{"127.0.0.1:1": 1}}}}
	n := startNode(t, static)
	up := fmt.Sprintf(`{"nodes":{%q:1},"type":"roundrobin"}`, n.backend)
	n.must(http.StatusCreated, http.MethodPut, "/apisix/admin/upstreams/1", up)
	n.must(http.StatusCreated, http.MethodPut, "/apisix/admin/stream_routes/1", fmt.Sprintf(`{"server_port":%d,"upstream_id":"1"}`, n.stream))
	n.must(http.StatusCreated, http.MethodPut, "/apisix/admin/stream_routes/2", fmt.Sprintf(`{"server_port":%d,"remote_addr":"127.0.0.1","upstream_id":"1"}`, n.stream))
	n.must(http.StatusCreated, http.MethodPut, "/apisix/admin/stream_routes/udp", fmt.Sprintf(`{"server_port":%d,"upstream":%s}`, n.udp, up))
	cert := e2e.NewCert(t, "db.test")
	ssl, _ := json.Marshal(map[string]any{"cert": cert.CertPEM, "key": cert.KeyPEM, "sni": "db.test"})
	n.must(http.StatusCreated, http.MethodPut, "/apisix/admin/ssls/1", string(ssl))
	for i := 0; i < 3; i++ {
		if err := n.echo("ping"); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("routes", func(t *testing.T) {
		out, errOut, err := n.cli("routes")
		if err != nil {
			t.Fatalf("%v\n%s", err, errOut)
		}
		t.Logf("\n%s", out)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 4 {
			t.Fatalf("want a header and 3 rows:\n%s", out)
		}
		tcp := fmt.Sprintf("tcp/127.0.0.1:%d", n.stream)
		for _, want := range [][]string{
			{"ID", "FILTERS", "UPSTREAM", "LISTENERS", "CONNECTIONS", "WARNINGS"},
			{"1 ", fmt.Sprintf("server_port=%d", n.stream), "upstream 1", tcp, " 3 ", " -"},
			{"2 ", "remote_addr=127.0.0.1", tcp, " 0 ", "is shadowed by stream route 1 on every connection it could match"},
			{"udp ", fmt.Sprintf("udp/127.0.0.1:%d", n.udp), n.backend},
		} {
			found := false
			for _, l := range lines {
				if strings.HasPrefix(l, want[0]) {
					found = true
					for _, w := range want[1:] {
						if !strings.Contains(l, w) {
							t.Errorf("row %q lacks %q", l, w)
						}
					}
				}
			}
			if !found {
				t.Errorf("no row starting %q:\n%s", want[0], out)
			}
		}
	})

	yamlPath := filepath.Join(n.dir, "backup.yaml")
	jsonPath := filepath.Join(n.dir, "backup.json")
	t.Run("export", func(t *testing.T) {
		_, errOut, err := n.cli("export", "--output", yamlPath)
		if err != nil {
			t.Fatalf("%v\n%s", err, errOut)
		}
		if !strings.Contains(errOut, "ssl 1 is exported without its private key") {
			t.Errorf("no note about the SSL key:\n%s", errOut)
		}
		b, err := os.ReadFile(yamlPath)
		if err != nil {
			t.Fatal(err)
		}
		doc := string(b)
		if !strings.HasSuffix(doc, "\n#END\n") {
			t.Errorf("the YAML document does not end with #END:\n%s", doc)
		}
		for _, w := range []string{"stream_routes:", "upstreams:", "ssls:", "server_port: " + fmt.Sprint(n.stream), "id: udp"} {
			if !strings.Contains(doc, w) {
				t.Errorf("the YAML document lacks %q:\n%s", w, doc)
			}
		}
		if strings.Contains(doc, "PRIVATE KEY") {
			t.Errorf("the document holds a private key")
		}
		out, errOut, err := n.cli("export", "--format", "json")
		if err != nil {
			t.Fatalf("%v\n%s", err, errOut)
		}
		var m map[string][]map[string]any
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("export --format json: %v\n%s", err, out)
		}
		if len(m["stream_routes"]) != 3 || len(m["upstreams"]) != 2 || len(m["ssls"]) != 1 {
			t.Errorf("JSON document: %d routes, %d upstreams, %d ssls; want 3, 2, 1", len(m["stream_routes"]), len(m["upstreams"]), len(m["ssls"]))
		}
		// the private key is added back by hand, as the note says
		m["ssls"][0]["key"] = cert.KeyPEM
		b, _ = json.Marshal(m)
		if err := os.WriteFile(jsonPath, b, 0o600); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("reset", func(t *testing.T) {
		_, errOut, err := n.cli("reset")
		if err == nil || !strings.Contains(errOut, "pass --yes") {
			t.Fatalf("reset without --yes: err %v\n%s", err, errOut)
		}
		if got := n.ids("stream_routes"); len(got) != 3 {
			t.Fatalf("reset without --yes deleted routes: %v", got)
		}
		_, errOut, err = n.cli("reset", "--yes")
		if err != nil {
			t.Fatalf("%v\n%s", err, errOut)
		}
		if !strings.Contains(errOut, "deleted 5 objects; 1 from the Caddy config kept") {
			t.Errorf("reset said:\n%s", errOut)
		}
		for _, kind := range []string{"stream_routes", "ssls"} {
			if got := n.ids(kind); len(got) != 0 {
				t.Errorf("%s after reset: %v", kind, got)
			}
		}
		if got := n.ids("upstreams"); strings.Join(got, ",") != "static" {
			t.Errorf("upstreams after reset: %v, want the static one", got)
		}
		if err := n.echo("gone"); err == nil {
			t.Errorf("a connection was proxied after reset")
		}
	})

	t.Run("import", func(t *testing.T) {
		// the YAML document has no SSL key: that object fails, the rest is restored
		_, errOut, err := n.cli("import", yamlPath)
		if err == nil {
			t.Fatalf("import of an SSL without key succeeded:\n%s", errOut)
		}
		for _, w := range []string{"1 object(s) not imported", "PUT /apisix/admin/ssls/1", "imported 4 objects", "skipped upstreams static"} {
			if !strings.Contains(errOut, w) {
				t.Errorf("import output lacks %q:\n%s", w, errOut)
			}
		}
		if got := strings.Join(n.ids("stream_routes"), ","); got != "1,2,udp" {
			t.Errorf("stream routes after import: %s", got)
		}
		if err := n.echo("back"); err != nil {
			t.Errorf("after import: %v", err)
		}
		// the JSON document with the key added back restores the SSL too
		_, errOut, err = n.cli("import", jsonPath)
		if err != nil {
			t.Fatalf("%v\n%s", err, errOut)
		}
		if got := n.ids("ssls"); strings.Join(got, ",") != "1" {
			t.Errorf("ssls after import: %v", got)
		}
	})
}
