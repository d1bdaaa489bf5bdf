//go:build linux

package realclients

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// seedPath is this package's copy of shared/seed/apisix-stream-proxy.md.
const seedPath = "testdata/seed-apisix-stream-proxy.md"

// seedCurls returns the seed document's curl commands, in order, and
// checks that the copy in testdata still equals the shared document when
// that is beside the repository (as on a developer's machine and in CI).
func seedCurls(t *testing.T) [][]string {
	t.Helper()
	doc, err := os.ReadFile(seedPath)
	if err != nil {
		t.Fatal(err)
	}
	shared := filepath.Join(moduleRoot, "..", "shared", "seed", "apisix-stream-proxy.md")
	if orig, err := os.ReadFile(shared); err == nil {
		if string(orig) != string(doc) {
			t.Fatalf("%s differs from %s: copy the document again", seedPath, shared)
		}
	} else {
		t.Logf("no shared seed document at %s to compare with: using %s", shared, seedPath)
	}
	cmds, err := curlCommands(string(doc))
	if err != nil {
		t.Fatalf("%s: %v", seedPath, err)
	}
	if len(cmds) < 3 {
		t.Fatalf("%s: %d curl commands, want the walk-through's", seedPath, len(cmds))
	}
	return cmds
}

// seedCurl returns the seed document's curl command whose body has the
// given server_addr or remote_addr, and the body's route.
func seedCurl(t *testing.T, field, value string) ([]string, route) {
	t.Helper()
	for _, c := range seedCurls(t) {
		body, ok := flagValue(c, "-d")
		if !ok {
			continue
		}
		var r route
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatalf("seed curl body %q: %v", body, err)
		}
		if (field == "server_addr" && r.ServerAddr == value) || (field == "remote_addr" && r.RemoteAddr == value) {
			return c, r
		}
	}
	t.Fatalf("%s: no curl with %s %q", seedPath, field, value)
	return nil, route{}
}

// route is the part of a stream route body the tests read.
type route struct {
	RemoteAddr string `json:"remote_addr"`
	ServerAddr string `json:"server_addr"`
	ServerPort int    `json:"server_port"`
	Upstream   struct {
		Nodes map[string]int `json:"nodes"`
		Type  string         `json:"type"`
	} `json:"upstream"`
}

// runDocCurl runs a document's curl command exactly (the real curl with
// the document's arguments) in the namespace and returns what it printed.
func runDocCurl(t *testing.T, n *netns, cmd []string) string {
	t.Helper()
	if cmd[0] != "curl" {
		t.Fatalf("not a curl command: %q", cmd)
	}
	r := n.run("", cmd[0], cmd[1:]...)
	if r.err != nil {
		t.Fatalf("%q: %v\n%s", cmd, r.err, r.stderr)
	}
	return r.stdout
}

// storedRoute decodes an Admin API answer {"key": …, "value": {…}}.
func storedRoute(t *testing.T, body string) (string, map[string]any) {
	t.Helper()
	var answer struct {
		Key   string         `json:"key"`
		Value map[string]any `json:"value"`
	}
	if err := json.Unmarshal([]byte(body), &answer); err != nil {
		t.Fatalf("Admin API answer %q: %v", body, err)
	}
	return answer.Key, answer.Value
}

// TestSeedWalkThrough follows the seed document with MariaDB: the
// stream_proxy of its MySQL example (9100 and 127.0.0.10:9101), its
// remote_addr route, its server_addr route, and the mysql client's view
// of both listeners.
func TestSeedWalkThrough(t *testing.T) {
	need(t, "curl", "mysql")
	logVersion(t, "mariadbd", "--version")
	logVersion(t, "mysql", "--version")
	logVersion(t, "curl", "--version")
	n := newNetns(t)
	db := n.startMariaDB(3306) // the document's port: always free in the namespace
	c := n.startCaddy(obj{"stream_proxy": obj{"tcp": []any{9100, "127.0.0.10:9101"}}})

	t.Run("remote_addr route as in the document", func(t *testing.T) {
		cmd, want := seedCurl(t, "remote_addr", "192.168.5.3")
		key, got := storedRoute(t, runDocCurl(t, n, cmd))
		if key != "/apisix/stream_routes/1" || got["remote_addr"] != want.RemoteAddr || got["id"] != "1" {
			t.Fatalf("stored %s %v, want route 1 with remote_addr %s", key, got, want.RemoteAddr)
		}
		// The namespace has no route to 192.168.4.10: even a wrong match
		// could not send a packet there. The client is on 127.0.0.1.
		mustLoseConnection(t, n, db, "127.0.0.1", 9100)
	})
	t.Run("remote_addr 192.168.5.3 with a loopback node: a loopback client is not proxied", func(t *testing.T) {
		_, r := seedCurl(t, "remote_addr", "192.168.5.3")
		body := obj{"remote_addr": r.RemoteAddr, "upstream": upstream("127.0.0.1:3306")}
		c.put(t, "stream_routes/1", body)
		mustLoseConnection(t, n, db, "127.0.0.1", 9100)
		mustLoseConnection(t, n, db, "127.0.0.10", 9101)
	})
	t.Run("remote_addr 127.0.0.1 with a loopback node: proxied", func(t *testing.T) {
		c.put(t, "stream_routes/1", obj{"remote_addr": "127.0.0.1", "upstream": upstream("127.0.0.1:3306")})
		mustQuery(t, n, "127.0.0.1", 9100)
		mustQuery(t, n, "127.0.0.10", 9101)
	})
	t.Run("server_addr 127.0.0.10 server_port 9101 as in the document", func(t *testing.T) {
		cmd, want := seedCurl(t, "server_addr", "127.0.0.10")
		if want.ServerPort != 9101 || want.Upstream.Nodes["127.0.0.1:3306"] != 1 {
			t.Fatalf("the document's MySQL route changed: %+v", want)
		}
		key, got := storedRoute(t, runDocCurl(t, n, cmd))
		if key != "/apisix/stream_routes/1" || got["server_addr"] != "127.0.0.10" || got["server_port"] != float64(9101) {
			t.Fatalf("stored %s %v, want route 1 on 127.0.0.10:9101", key, got)
		}
		// Step 4: 9100 does not match the filter; 127.0.0.10:9101 does.
		mustLoseConnection(t, n, db, "127.0.0.1", 9100)
		mustQuery(t, n, "127.0.0.10", 9101)
	})
}

// TestSeedStreamModeDisabled runs the document's first curl against a
// Caddy whose apisix app has no stream_proxy and expects the document's
// exact error body.
func TestSeedStreamModeDisabled(t *testing.T) {
	need(t, "curl")
	n := newNetns(t)
	n.startCaddy(obj{})
	cmd, _ := seedCurl(t, "remote_addr", "192.168.5.3")
	got := runDocCurl(t, n, cmd)
	const want = `{"error_msg":"stream mode is disabled, can not add stream routes"}`
	if strings.TrimSuffix(got, "\n") != want {
		t.Fatalf("body %q, want %q", got, want)
	}
}
