//go:build linux

package usere2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// node is one running Caddy with the apisix app.
type node struct {
	t       *testing.T
	dir     string
	admin   string
	stream  int // the TCP stream_proxy port on 127.0.0.1
	udp     int
	proc    *e2e.Proc
	backend string // an echo server
}

// startNode runs Caddy with a TCP and a UDP listener on 127.0.0.1, an echo
// backend, and extra fields of the apisix app (static objects).
func startNode(t *testing.T, extra map[string]any) *node {
	t.Helper()
	ports := e2e.FreePorts(t, 3)
	n := &node{t: t, dir: t.TempDir(), admin: e2e.HostPort("127.0.0.1", ports[0]), stream: ports[1], udp: ports[2]}
	n.backend = e2e.ServeTCP(t, func(c net.Conn) { _, _ = io.Copy(c, c) })
	fields := map[string]any{"stream_proxy": map[string]any{
		"tcp": []any{e2e.HostPort("127.0.0.1", n.stream)},
		"udp": []any{e2e.HostPort("127.0.0.1", n.udp)},
	}}
	for k, v := range extra {
		fields[k] = v
	}
	cfg := e2e.CaddyConfig(n.admin, filepath.Join(n.dir, "storage"), e2e.LogLevel("INFO"),
		map[string]any{"apisix": e2e.ApisixApp(fields)})
	path := e2e.WriteJSON(t, n.dir, "caddy.json", cfg)
	n.proc = e2e.Start(t, "caddy", e2e.CaddyCmd(caddyBin, path, n.dir), e2e.Options{})
	n.proc.WaitReady(30*time.Second, e2e.ApisixReady(n.admin, e2e.AdminKey))
	return n
}

// do calls the Admin API with the admin key.
func (n *node) do(method, path, body string) (int, http.Header, string) {
	n.t.Helper()
	var b []byte
	if body != "" {
		b = []byte(body)
	}
	code, hdr, out, err := e2e.Admin{Addr: n.admin}.Do(method, path, e2e.AdminKey, b, e2e.JSONContent)
	if err != nil {
		n.t.Fatalf("%s %s: %v", method, path, err)
	}
	return code, hdr, string(out)
}

// must is do, failing unless the status is want.
func (n *node) must(want int, method, path, body string) http.Header {
	n.t.Helper()
	code, hdr, out := n.do(method, path, body)
	if code != want {
		n.t.Fatalf("%s %s: %d %s, want %d", method, path, code, out, want)
	}
	return hdr
}

// cli runs "caddy apisix <args>" against the node and returns its
// standard output, standard error and exit error.
func (n *node) cli(args ...string) (stdout, stderr string, err error) {
	n.t.Helper()
	full := append([]string{"apisix"}, args...)
	full = append(full, "--address", n.admin, "--key", e2e.AdminKey)
	cmd := exec.Command(caddyBin, full...)
	cmd.Dir = n.dir
	cmd.Env = e2e.Env(n.dir)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	timer := time.AfterFunc(60*time.Second, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	err = cmd.Wait()
	return out.String(), errOut.String(), err
}

// echo sends one line through the TCP listener and reads it back.
func (n *node) echo(msg string) error {
	c, err := net.DialTimeout("tcp", e2e.HostPort("127.0.0.1", n.stream), 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != msg {
		return &mismatch{got: string(buf), want: msg}
	}
	return nil
}

type mismatch struct{ got, want string }

func (m *mismatch) Error() string { return "echo " + m.got + ", want " + m.want }

// ids returns the ids of a collection, in the Admin API's order.
func (n *node) ids(kind string) []string {
	n.t.Helper()
	code, _, body := n.do(http.MethodGet, "/apisix/admin/"+kind, "")
	if code != http.StatusOK {
		n.t.Fatalf("GET %s: %d %s", kind, code, body)
	}
	var l struct {
		List []struct {
			Value struct {
				ID any `json:"id"`
			} `json:"value"`
		} `json:"list"`
	}
	if err := json.Unmarshal([]byte(body), &l); err != nil {
		n.t.Fatal(err)
	}
	var out []string
	for _, it := range l.List {
		b, _ := json.Marshal(it.Value.ID)
		out = append(out, strings.Trim(string(b), `"`))
	}
	return out
}

// waitLog waits until the process output contains every string of want
// on one line.
func (n *node) waitLog(want ...string) string {
	n.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, line := range strings.Split(n.proc.Output(), "\n") {
			all := true
			for _, w := range want {
				if !strings.Contains(line, w) {
					all = false
					break
				}
			}
			if all {
				return line
			}
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("no log line with %q in:\n%s", want, n.proc.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
