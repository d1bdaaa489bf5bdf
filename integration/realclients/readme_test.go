//go:build linux

package realclients

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// quickStart is the README section a new user follows first.
const quickStart = "Quick start"

// goRunWait bounds a go run until it serves: it compiles first, which on a
// loaded machine takes longer than startWait.
const goRunWait = 4 * time.Minute

// TestReadmeQuickStart runs the README's quick-start commands, parsed
// from its sh blocks, in order on a clean copy of the committed tree (what
// the git clone and cd give): the examples/echo backend, the go run that
// starts Caddy, each curl, and the examples/echo client through the route
// the curl made, whose answer must be its message. Without an echo
// backend, the route's node is served by a real redis-server and
// redis-cli talks through the route. A command it does not know fails
// the test, so the README cannot drift from what this test proves.
func TestReadmeQuickStart(t *testing.T) {
	need(t, "curl", "redis-server", "redis-cli")
	tree := committedTree(t)
	echoes := map[string]bool{} // addresses the echo backend serves
	cmds := shellCommands(t, readmeBlocks(t, tree), quickStart)
	if len(cmds) == 0 {
		t.Fatalf("README.md has no sh commands under %q", quickStart)
	}
	n := newNetns(t)
	var server *caddy
	curls := 0
	for _, c := range cmds {
		line := strings.Join(c, " ")
		switch {
		case len(c) >= 3 && c[0] == "git" && c[1] == "clone", len(c) == 2 && c[0] == "cd":
			// the committed tree stands for the clone
		case len(c) >= 3 && c[0] == "go" && c[1] == "run" && c[2] == "./examples/echo":
			runReadmeEcho(t, n, tree, c, echoes)
		case len(c) >= 3 && c[0] == "go" && c[1] == "run":
			// The server: it runs until the test ends, so start it in the
			// background and wait for the Admin API the README names.
			if server != nil {
				t.Fatalf("README quick start starts a second server: %s", line)
			}
			server = &caddy{Proc: n.startGroup(t, tree, c[0], c[1:]...), ns: n}
			server.WaitReady(goRunWait, func() error {
				code, body, err := server.admin("GET", "/apisix/admin/stream_routes", "")
				if err == nil && code != 200 {
					err = fmt.Errorf("GET /apisix/admin/stream_routes: %d %s", code, body)
				}
				return err
			})
		case c[0] == "curl":
			if server == nil {
				t.Fatalf("README quick start runs %q before starting a server", line)
			}
			curls++
			checkReadmeCurl(t, n, c, echoes)
		case c[0] == "xcaddy":
			// TestXcaddyBuild runs the README's xcaddy command and checks
			// the binary's modules; building Caddy twice would only cost.
		case c[0] == "scripts/test.sh":
			// This very test runs inside it: only check it is there.
			fi, err := os.Stat(filepath.Join(tree, c[0]))
			if err != nil || fi.Mode()&0o111 == 0 {
				t.Fatalf("README quick start runs %s, which is missing or not executable in the committed tree (%v)", c[0], err)
			}
		default:
			t.Fatalf("README quick start command this test does not know: %q; teach TestReadmeQuickStart to run it", line)
		}
	}
	if server == nil || curls == 0 {
		t.Fatalf("README quick start: want a go run and at least one curl, got %q", cmds)
	}
}

// runReadmeEcho runs go run ./examples/echo as the README does: without
// -dial it is the backend, started in the background until the test ends;
// with -dial it is the client, whose output must be its message.
func runReadmeEcho(t *testing.T, n *netns, tree string, c []string, echoes map[string]bool) {
	t.Helper()
	line := strings.Join(c, " ")
	if dial, ok := flagValue(c, "-dial"); ok {
		var msg []string
		for i := 3; i < len(c); i++ {
			if c[i] == "-dial" {
				i++
				continue
			}
			if c[i] != "-udp" {
				msg = append(msg, c[i])
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), cmdWait)
		defer cancel()
		cmd := n.command(ctx, c[0], c[1:]...)
		cmd.Dir = tree
		out, err := cmd.CombinedOutput()
		if want := strings.Join(msg, " ") + "\n"; err != nil || string(out) != want {
			t.Fatalf("README %q through %s: %q %v, want %q", line, dial, out, err, want)
		}
		return
	}
	addr := "127.0.0.1:1995"
	if a, ok := flagValue(c, "-listen"); ok {
		addr = a
	}
	p := n.startGroup(t, tree, c[0], c[1:]...)
	p.WaitReady(goRunWait, n.tcpReady(addr))
	echoes[addr] = true
}

// checkReadmeCurl runs one of the README's curl commands exactly, checks
// the Admin API stored the route, then, unless the echo backend serves
// the route's node, serves it with redis-server and talks to it with
// redis-cli through the route.
func checkReadmeCurl(t *testing.T, n *netns, cmd []string, echoes map[string]bool) {
	t.Helper()
	body, ok := flagValue(cmd, "-d")
	if !ok {
		t.Fatalf("README curl without a -d body: %q", cmd)
	}
	var r route
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("README curl body %q: %v", body, err)
	}
	key, stored := storedRoute(t, runDocCurl(t, n, cmd))
	if !strings.HasPrefix(key, "/apisix/stream_routes/") || stored["upstream"] == nil {
		t.Fatalf("README curl: the Admin API answered %s %v, want the stored stream route", key, stored)
	}
	if len(r.Upstream.Nodes) != 1 {
		t.Fatalf("README curl: want one upstream node to serve, got %v", r.Upstream.Nodes)
	}
	node := ""
	for k := range r.Upstream.Nodes {
		node = k
	}
	host, portText, err := net.SplitHostPort(node)
	port, perr := strconv.Atoi(portText)
	if err != nil || perr != nil || !net.ParseIP(host).IsLoopback() {
		t.Fatalf("README curl: node %q is not a loopback host:port", node)
	}
	if r.ServerPort == 0 {
		t.Fatalf("README curl: route %+v has no server_port to connect to", r)
	}
	addr := r.ServerAddr
	if addr == "" {
		addr = "127.0.0.1"
	}
	if host != "127.0.0.1" {
		t.Fatalf("README curl: node %s; this test serves it on 127.0.0.1 only", node)
	}
	if echoes[node] {
		return // the README's own client checks the route
	}
	n.startRedis(port)
	through := hostPort(addr, r.ServerPort)
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"PING"}, "PONG"},
		{[]string{"SET", "readme", "quick start works"}, "OK"},
		{[]string{"GET", "readme"}, "quick start works"},
	}
	for _, s := range steps {
		got, err := n.redisCLI(through, s.args...)
		if err != nil || got != s.want {
			t.Fatalf("redis-cli through %s (README route to %s) %q: %q %v, want %q", through, node, s.args, got, err, s.want)
		}
	}
	direct, err := n.redisCLI(node, "GET", "readme")
	if err != nil || direct != "quick start works" {
		t.Fatalf("the value did not land on the node %s: %q %v", node, direct, err)
	}
}
