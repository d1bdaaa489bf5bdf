//go:build linux

package standalonee2e

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// yamlDoc is an apisix.yaml with one upstream (node ${{NODE}}, from the
// environment, unless node is set) and one stream route on the listener's
// port; extra is appended before #END.
func yamlDoc(node, extra string) string {
	if node == "" {
		node = "${{NODE}}"
	}
	return `upstreams:
  - id: backend
    type: roundrobin
    nodes:
      "` + node + `": 1
    labels:
      managed-by: file
stream_routes:
  - id: r1
    server_port: ${{PORT:=1}}
    upstream_id: backend
` + extra + "#END\n"
}

// TestFileDriven edits apisix.yaml under load: created after the start,
// changed, broken twice (an invalid object, a missing end flag), fixed.
// New connections follow each good version, a broken one changes
// nothing, and no connection fails or is dropped.
func TestFileDriven(t *testing.T) {
	a, b := backend(t, "A"), backend(t, "B")
	dir := t.TempDir()
	file := filepath.Join(dir, "apisix.yaml")
	in := newInstance(t, map[string]any{"role": "data_plane", "config_provider": "yaml", "config_file": file})
	_, port, _ := net.SplitHostPort(in.proxy)
	in.env = []string{"NODE=" + a, "PORT=" + port}
	p := in.start()
	waitOutput(t, p, "failed to read the standalone config file")

	// the data plane's Admin API reads but never writes
	if st, _, body := in.do("PUT", "/apisix/admin/upstreams/x", "", `{"nodes":{"127.0.0.1:1":1}}`, nil); st != 405 ||
		body != `{"error_msg":"this node is a data_plane: the Admin API is read-only"}`+"\n" {
		t.Fatalf("write on a data plane: %d %s", st, body)
	}

	write := func(doc string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(yamlDoc("", ""))
	waitGreeter(t, in.proxy, "A")
	held, err := dial(in.proxy)
	if err != nil {
		t.Fatal(err)
	}
	defer held.c.Close()
	l := startLoad(in.proxy)

	// change
	write(yamlDoc(b, ""))
	waitGreeter(t, in.proxy, "B")

	// break: an invalid object is logged with its position, nothing changes
	write(yamlDoc(a, "  - id: r2\n    server_port: \"x\"\n"))
	waitOutput(t, p, "invalid stream_routes[1]: invalid configuration: property \\\"server_port\\\" validation failed")
	for range 20 {
		if name, err := greeter(in.proxy); err != nil || name != "B" {
			t.Fatalf("after a broken document: %q %v", name, err)
		}
	}
	// break: no end flag (a file caught half written)
	write(strings.TrimSuffix(yamlDoc(a, ""), "#END\n"))
	waitOutput(t, p, "missing valid end flag")
	if name, err := greeter(in.proxy); err != nil || name != "B" {
		t.Fatalf("after a truncated document: %q %v", name, err)
	}

	// fix, by rename as config management tools write
	tmp := filepath.Join(dir, "apisix.yaml.tmp")
	if err := os.WriteFile(tmp, []byte(yamlDoc(a, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
	waitGreeter(t, in.proxy, "A")

	seen, failures := l.finish()
	if len(failures) > 0 {
		t.Fatalf("%d of %d connections failed under edits, first: %s", len(failures), l.n.Load(), failures[0])
	}
	if seen["A"] == 0 || seen["B"] == 0 {
		t.Fatalf("load saw %v", seen)
	}
	if err := held.echo("still here"); err != nil {
		t.Fatalf("connection established before the edits: %v", err)
	}
	// the objects as the Admin API lists them, labels kept
	_, body := in.must(200, "GET", "/apisix/admin/upstreams/backend", "", nil)
	if !strings.Contains(body, `"managed-by":"file"`) || !strings.Contains(body, a) {
		t.Fatalf("upstream: %s", body)
	}
	t.Logf("%d connections under edits: %v", l.n.Load(), seen)
}

// TestFileDrivenJSON is the json provider: apisix.json, variables
// replaced in decoded strings and typed after replacement.
func TestFileDrivenJSON(t *testing.T) {
	a := backend(t, "A")
	file := filepath.Join(t.TempDir(), "apisix.json")
	in := newInstance(t, map[string]any{"role": "data_plane", "config_provider": "json", "config_file": file})
	_, port, _ := net.SplitHostPort(in.proxy)
	in.env = []string{"NODE=" + a, "PORT=" + port}
	doc := `{"upstreams":[{"id":1,"nodes":[{"host":"127.0.0.1","port":"${{NODE_PORT}}","weight":1}]}],` +
		`"stream_routes":[{"id":1,"server_port":"${{PORT}}","upstream_id":1}]}`
	_, nodePort, _ := net.SplitHostPort(a)
	in.env = append(in.env, "NODE_PORT="+nodePort)
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	in.start()
	waitGreeter(t, in.proxy, "A")
}
