package admine2e

import (
	"bytes"
	"encoding/json"
	"fmt"
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

// Keys of every test config: the seed document's admin key and a viewer.
const (
	adminKey  = "edd1c9f034335f136f87ad84b625c8f1"
	viewerKey = "4054f7cf07e344346cd3f287985e76a2"
)

// Bounds of the waits in this package. Positive answers on loopback come
// well within answerWait; startWait covers a cold start with 10,000 routes.
const (
	answerWait = 5 * time.Second
	startWait  = 60 * time.Second
	stopWait   = 10 * time.Second
)

// syncBuffer collects a process's output.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// instance is one Caddy config on disk: its directory (storage root, HOME)
// and config file. Several processes may run it one after the other, which
// is how restarts keep their storage.
type instance struct {
	t      testing.TB
	dir    string
	config string
	admin  string // host:port of the admin endpoint
}

// caddyProc is one running Caddy process.
type caddyProc struct {
	inst    *instance
	cmd     *exec.Cmd
	out     *syncBuffer
	done    chan struct{}
	started time.Time
}

// newInstance writes cfg (a Caddy JSON config without admin and storage,
// which it adds) into a new temp dir. admin "" picks a free loopback port.
func newInstance(t testing.TB, admin string, cfg map[string]any) *instance {
	t.Helper()
	dir := t.TempDir()
	if admin == "" {
		admin = hostPort("127.0.0.1", freePort(t))
	}
	full := map[string]any{}
	for k, v := range cfg {
		full[k] = v
	}
	full["admin"] = map[string]any{"listen": admin}
	full["storage"] = map[string]any{"module": "file_system", "root": filepath.Join(dir, "storage")}
	if _, ok := full["logging"]; !ok {
		full["logging"] = map[string]any{"logs": map[string]any{"default": map[string]any{"level": "INFO"}}}
	}
	raw, err := json.MarshalIndent(full, "", "\t")
	if err != nil {
		t.Fatalf("encoding the config: %v", err)
	}
	path := filepath.Join(dir, "caddy.json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return &instance{t: t, dir: dir, config: path, admin: admin}
}

// storageRoot is where the instance's Caddy storage lives.
func (in *instance) storageRoot() string { return filepath.Join(in.dir, "storage") }

// testEnv gives a process its own HOME and XDG directories under dir, so
// nothing touches the user's real data; curl reads its .curlrc from
// CURL_HOME, which it sets to dir too.
func testEnv(dir string) []string {
	own := map[string]string{
		"HOME":            dir,
		"XDG_DATA_HOME":   filepath.Join(dir, "data"),
		"XDG_CONFIG_HOME": filepath.Join(dir, "config"),
		"XDG_CACHE_HOME":  filepath.Join(dir, "cache"),
		"CURL_HOME":       dir,
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if _, mine := own[k]; !mine {
			env = append(env, kv)
		}
	}
	for k, v := range own {
		env = append(env, k+"="+v)
	}
	return env
}

// start runs caddy on the instance's config and waits until the apisix
// app answers on the Admin API. The process is stopped by PID when the
// test ends.
func (in *instance) start() *caddyProc {
	in.t.Helper()
	p := &caddyProc{inst: in, out: new(syncBuffer), done: make(chan struct{})}
	p.cmd = exec.Command(caddyBin, "run", "--config", in.config)
	p.cmd.Dir = in.dir
	p.cmd.Env = testEnv(in.dir)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	// Pdeathsig: a test binary killed by a timeout takes Caddy with it.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		in.t.Fatalf("starting caddy: %v", err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	in.t.Cleanup(p.stop)
	deadline := time.Now().Add(startWait)
	for {
		select {
		case <-p.done:
			in.t.Fatalf("caddy exited during startup (%v):\n%s", p.cmd.ProcessState, p.out)
		default:
		}
		st, body, err := p.call(http.MethodGet, "/apisix/admin/upstreams", adminKey, "", nil)
		if err == nil && st == http.StatusOK {
			return p
		}
		if time.Now().After(deadline) {
			in.t.Fatalf("caddy not ready after %v: %d %s %v\n%s", startWait, st, body, err, p.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pid is the process id.
func (p *caddyProc) pid() int { return p.cmd.Process.Pid }

// alive reports whether the process still runs.
func (p *caddyProc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop ends the process by PID: SIGTERM, then SIGKILL after stopWait. On
// failure the output's tail is logged.
func (p *caddyProc) stop() {
	if p.alive() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(stopWait):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	if p.inst.t.Failed() {
		out := p.out.String()
		if len(out) > 16<<10 {
			out = "…" + out[len(out)-16<<10:]
		}
		p.inst.t.Logf("caddy (pid %d) output:\n%s", p.pid(), out)
	}
}

// kill9 sends SIGKILL to the process by PID and waits for it to exit.
func (p *caddyProc) kill9() {
	_ = syscall.Kill(p.pid(), syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(stopWait):
		p.inst.t.Fatalf("caddy pid %d did not exit after SIGKILL", p.pid())
	}
}

// adminClient talks to the admin endpoints; no keep-alive across tests.
var adminClient = &http.Client{Timeout: 30 * time.Second}

// call sends one Admin API request. key "" sends none; hdr adds headers
// (a "Host" entry sets the Host header).
func (p *caddyProc) call(method, path, key, body string, hdr map[string]string) (int, string, error) {
	st, _, b, err := p.callH(method, path, key, body, hdr)
	return st, b, err
}

// callH is call that also returns the response headers.
func (p *caddyProc) callH(method, path, key, body string, hdr map[string]string) (int, http.Header, string, error) {
	var rd *strings.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	var req *http.Request
	var err error
	if rd != nil {
		req, err = http.NewRequest(method, "http://"+p.inst.admin+path, rd)
	} else {
		req, err = http.NewRequest(method, "http://"+p.inst.admin+path, nil)
	}
	if err != nil {
		return 0, nil, "", err
	}
	if key != "" {
		req.Header.Set("X-API-KEY", key)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := adminClient.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(resp.Body)
	return resp.StatusCode, resp.Header, buf.String(), err
}

// must sends a request with the admin key and fails the test unless the
// status is want; it returns the body.
func (p *caddyProc) must(t testing.TB, method, path, body string, want int) string {
	t.Helper()
	st, b, err := p.call(method, path, adminKey, body, nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if st != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, st, want, b)
	}
	return b
}

// freePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func hostPort(ip string, port int) string { return net.JoinHostPort(ip, strconv.Itoa(port)) }

// apisixApp is the apisix app config every test starts from: the admin and
// viewer keys, loopback-only admin clients, and the given fields.
func apisixApp(fields map[string]any) map[string]any {
	app := map[string]any{
		"admin_key": []any{
			map[string]any{"name": "admin", "key": adminKey, "role": "admin"},
			map[string]any{"name": "viewer", "key": viewerKey, "role": "viewer"},
		},
		"allow_admin": []string{"127.0.0.1", "::1"},
	}
	for k, v := range fields {
		app[k] = v
	}
	return app
}

// appsConfig wraps an apisix app into a Caddy config.
func appsConfig(app map[string]any) map[string]any {
	return map[string]any{"apps": map[string]any{"apisix": app}}
}

// mustJSON decodes an Admin API body or fails the test.
func mustJSON(t testing.TB, body string) map[string]any {
	t.Helper()
	var v map[string]any
	dec := json.NewDecoder(strings.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("body is not a JSON object: %v: %q", err, body)
	}
	return v
}

// answer formats a status and body for failure messages.
func answer(st int, body string) string { return fmt.Sprintf("%d %q", st, body) }
