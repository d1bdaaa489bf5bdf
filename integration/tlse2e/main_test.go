package tlse2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// caddyBin is the binary built once by TestMain.
var caddyBin string

// TestMain builds the caddy binary (./cmd/caddy) once for every test.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "tlse2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "tlse2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	caddyBin = filepath.Join(dir, "caddy")
	build := exec.Command("go", "build", "-o", caddyBin, "./cmd/caddy")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "tlse2e: building caddy: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// freePorts reserves n distinct loopback TCP ports. They are released
// before returning, so another process could take one meanwhile; on
// loopback in a test run that does not happen in practice.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// caddy is one running Caddy process.
type caddy struct {
	t       testing.TB
	cmd     *exec.Cmd
	admin   string // admin endpoint, "127.0.0.1:port"
	logPath string
	done    chan struct{}
	once    sync.Once
}

// startCaddy runs the built binary with the apisix app config app (the
// value of apps.apisix) and waits until its Admin API answers. The process
// is stopped by PID when the test ends; its log is printed if the test
// failed. debug sets the log level to DEBUG; env ("K=V") is added to the
// process environment.
func startCaddy(t testing.TB, app map[string]any, debug bool, env ...string) *caddy {
	t.Helper()
	return startCaddyAt(t, "", app, debug, env...)
}

// startCaddyAt is startCaddy with the file_system storage at storage
// (a new temporary directory when empty), to restart on the same store.
func startCaddyAt(t testing.TB, storage string, app map[string]any, debug bool, env ...string) *caddy {
	t.Helper()
	return startCaddyApps(t, storage, map[string]any{"apisix": app}, debug, env...)
}

// startCaddyApps is startCaddyAt with the whole apps object; it must hold
// an apisix app, whose Admin API tells when the process is ready.
func startCaddyApps(t testing.TB, storage string, apps map[string]any, debug bool, env ...string) *caddy {
	t.Helper()
	tmp := t.TempDir()
	if storage == "" {
		storage = filepath.Join(tmp, "storage")
	}
	adminPort := freePorts(t, 1)[0]
	level := "INFO"
	if debug {
		level = "DEBUG"
	}
	cfg := map[string]any{
		"admin":   map[string]any{"listen": fmt.Sprintf("127.0.0.1:%d", adminPort)},
		"storage": map[string]any{"module": "file_system", "root": storage},
		"logging": map[string]any{"logs": map[string]any{"default": map[string]any{"level": level}}},
		"apps":    apps,
	}
	raw, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(tmp, "caddy.json")
	if err := os.WriteFile(cfgPath, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(tmp, "caddy.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(caddyBin, "run", "--config", cfgPath)
	cmd.Dir = tmp
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + tmp,
		"XDG_DATA_HOME=" + filepath.Join(tmp, "data"),
		"XDG_CONFIG_HOME=" + filepath.Join(tmp, "config"),
		"XDG_CACHE_HOME=" + filepath.Join(tmp, "cache"),
	}
	cmd.Env = append(cmd.Env, env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &caddy{t: t, cmd: cmd, admin: fmt.Sprintf("127.0.0.1:%d", adminPort), logPath: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(c.stop)
	c.waitReady()
	return c
}

// waitReady polls the Admin API until the apisix app is live (it answers
// 503 before), for at most 20 s.
func (c *caddy) waitReady() {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-c.done:
			c.t.Fatal("caddy exited during startup (its log follows)")
		default:
		}
		status, _ := c.adminDo(http.MethodGet, "/apisix/admin/ssls", nil)
		if status == http.StatusOK {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatal("caddy not ready after 20s (its log follows)")
}

// stop ends the process by PID: SIGTERM, then SIGKILL after 10 s. It may
// be called more than once.
func (c *caddy) stop() {
	c.once.Do(func() {
		if c.t.Failed() {
			c.t.Logf("caddy log:\n%s", c.log())
		}
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	})
}

func (c *caddy) log() string {
	b, _ := os.ReadFile(c.logPath)
	return string(b)
}

// adminDo sends one Admin API request; body, when not nil, is sent as
// JSON. It returns the status (0 on transport errors) and the body.
func (c *caddy) adminDo(method, path string, body any) (int, string) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return 0, err.Error()
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, "http://"+c.admin+path, rd)
	if err != nil {
		return 0, err.Error()
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	client := http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// mustAdmin is adminDo failing the test on any status but those in want.
func (c *caddy) mustAdmin(method, path string, body any, want ...int) {
	c.t.Helper()
	status, resp := c.adminDo(method, path, body)
	for _, w := range want {
		if status == w {
			return
		}
	}
	c.t.Fatalf("%s %s: status %d, want %v: %s", method, path, status, want, resp)
}

// addr is the loopback address of a port.
func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// obj is a JSON object literal.
type obj = map[string]any

// upstream is an inline roundrobin upstream to one node; extra fields
// (scheme, tls, ...) are merged in.
func upstream(node string, extra obj) obj {
	u := obj{"type": "roundrobin", "nodes": obj{node: 1}}
	for k, v := range extra {
		u[k] = v
	}
	return u
}

// tcpEntry is a stream_proxy.tcp object entry on a loopback port.
func tcpEntry(port int, opts ...string) obj {
	e := obj{"addr": addr(port)}
	for _, o := range opts {
		e[o] = true
	}
	return e
}

// sslObj is a server-type SSL object for names, from c's certificate.
func sslObj(id string, c *testCert, names ...string) obj {
	o := obj{"id": id, "cert": c.certPEM, "key": c.keyPEM}
	if len(names) == 1 {
		o["sni"] = names[0]
	} else {
		o["snis"] = names
	}
	return o
}

// list turns objects into a JSON array value.
func list(objs ...obj) []obj { return objs }

// mustContain fails unless s contains every sub.
func mustContain(t testing.TB, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Fatalf("missing %q in:\n%s", sub, s)
		}
	}
}
