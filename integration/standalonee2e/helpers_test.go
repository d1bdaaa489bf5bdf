//go:build linux

package standalonee2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// Bounds of the waits: a positive answer on loopback comes well within
// answerWait; a file change is seen within about a second.
const (
	answerWait = 10 * time.Second
	startWait  = 60 * time.Second
)

const adminKey = e2e.AdminKey

// instance is one Caddy config on disk; several processes may run it one
// after the other (a restart keeps the storage).
type instance struct {
	t      *testing.T
	dir    string
	config string
	admin  string
	proxy  string // the stream_proxy TCP address
	env    []string
}

// newInstance writes a Caddy config whose apisix app has the admin key,
// one TCP stream listener and fields.
func newInstance(t *testing.T, fields map[string]any) *instance {
	t.Helper()
	dir := t.TempDir()
	ports := e2e.FreePorts(t, 2)
	in := &instance{t: t, dir: dir, admin: e2e.HostPort("127.0.0.1", ports[0]), proxy: e2e.HostPort("127.0.0.1", ports[1])}
	app := e2e.ApisixApp(map[string]any{"stream_proxy": map[string]any{"tcp": []any{in.proxy}}})
	for k, v := range fields {
		app[k] = v
	}
	cfg := e2e.CaddyConfig(in.admin, filepath.Join(dir, "storage"), e2e.LogLevel("INFO"), map[string]any{"apisix": app})
	in.config = e2e.WriteJSON(t, dir, "caddy.json", cfg)
	return in
}

// start runs Caddy and waits until the Admin API answers.
func (in *instance) start() *e2e.Proc {
	in.t.Helper()
	p := e2e.Start(in.t, "caddy", e2e.CaddyCmd(caddyBin, in.config, in.dir, in.env...), e2e.Options{CleanExit: true})
	p.WaitReady(startWait, e2e.ApisixReady(in.admin, adminKey))
	return p
}

// do sends one Admin API request with the admin key (key "-" sends none).
func (in *instance) do(method, path, key string, body string, hdr map[string]string) (int, http.Header, string) {
	in.t.Helper()
	if key == "" {
		key = adminKey
	} else if key == "-" {
		key = ""
	}
	var raw []byte
	if body != "" {
		raw = []byte(body)
	}
	st, h, b, err := e2e.Admin{Addr: in.admin}.Do(method, path, key, raw, hdr)
	if err != nil {
		in.t.Fatalf("%s %s: %v", method, path, err)
	}
	return st, h, string(b)
}

// must is do that fails the test unless the status is want.
func (in *instance) must(want int, method, path, body string, hdr map[string]string) (http.Header, string) {
	in.t.Helper()
	st, h, b := in.do(method, path, "", body, hdr)
	if st != want {
		in.t.Fatalf("%s %s: status %d, want %d: %s", method, path, st, want, b)
	}
	return h, b
}

// backend is a TCP server that greets each connection with its name and
// a newline, then echoes what it reads.
func backend(t *testing.T, name string) string {
	return e2e.ServeTCP(t, func(c net.Conn) {
		if _, err := io.WriteString(c, name+"\n"); err != nil {
			return
		}
		_, _ = io.Copy(c, c)
	})
}

// conn is one client connection through the proxy, greeted by a backend.
type conn struct {
	c    net.Conn
	r    *bufio.Reader
	name string
}

// dial connects through the proxy and reads the backend's greeting.
func dial(addr string) (*conn, error) {
	c, err := net.DialTimeout("tcp", addr, answerWait)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(answerWait))
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("no greeting: %v", err)
	}
	return &conn{c: c, r: r, name: strings.TrimSuffix(line, "\n")}, nil
}

// echo proves the connection is still up: a line goes through and back.
func (c *conn) echo(line string) error {
	_ = c.c.SetDeadline(time.Now().Add(answerWait))
	if _, err := io.WriteString(c.c, line+"\n"); err != nil {
		return err
	}
	got, err := c.r.ReadString('\n')
	if err != nil {
		return err
	}
	if got != line+"\n" {
		return fmt.Errorf("echo %q, want %q", got, line)
	}
	return nil
}

// greeter returns the name of the backend a new connection reaches.
func greeter(addr string) (string, error) {
	c, err := dial(addr)
	if err != nil {
		return "", err
	}
	defer c.c.Close()
	return c.name, nil
}

// waitGreeter waits until new connections reach want.
func waitGreeter(t *testing.T, addr, want string) {
	t.Helper()
	deadline := time.Now().Add(answerWait)
	var last string
	var err error
	for time.Now().Before(deadline) {
		if last, err = greeter(addr); err == nil && last == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("new connections reach %q (err %v), want %q", last, err, want)
}

// load dials through the proxy in a loop until stopped (at most 20,000
// connections) and counts the greetings by backend and the failures.
type load struct {
	stop     chan struct{}
	done     chan struct{}
	mu       sync.Mutex
	seen     map[string]int
	failures []string
	n        atomic.Int64
}

func startLoad(addr string) *load {
	l := &load{stop: make(chan struct{}), done: make(chan struct{}), seen: map[string]int{}}
	go func() {
		defer close(l.done)
		for range 20000 {
			select {
			case <-l.stop:
				return
			default:
			}
			name, err := greeter(addr)
			l.mu.Lock()
			if err != nil {
				l.failures = append(l.failures, err.Error())
			} else {
				l.seen[name]++
			}
			l.mu.Unlock()
			l.n.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return l
}

// finish stops the loop and returns what it saw.
func (l *load) finish() (map[string]int, []string) {
	close(l.stop)
	<-l.done
	return l.seen, l.failures
}

// jsonOf decodes a JSON body.
func jsonOf(t *testing.T, body string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("not JSON: %v: %q", err, body)
	}
	return m
}

// waitOutput waits until the process output contains s.
func waitOutput(t *testing.T, p *e2e.Proc, s string) {
	t.Helper()
	deadline := time.Now().Add(answerWait)
	for time.Now().Before(deadline) {
		if strings.Contains(p.Output(), s) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("output never contained %q", s)
}
