//go:build linux

package admine2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// seedPath is the seed document, beside the repository.
func seedPath() string {
	return filepath.Join(moduleRoot, "..", "shared", "seed", "apisix-stream-proxy.md")
}

// The seed document's fixed addresses.
const (
	seedAdmin = "127.0.0.1:9180"
	seedB1995 = "127.0.0.1:1995"
	seedB5991 = "127.0.0.1:5991"
	seedMySQL = "127.0.0.1:3306"
)

// extractCurls returns the document's curl commands in order: each starts
// at a line whose text begins with "curl " and ends at the first line
// where its single quotes are balanced (the -d bodies span lines).
func extractCurls(doc string) ([]string, error) {
	var cmds []string
	var cur []string
	for i, line := range strings.Split(doc, "\n") {
		trimmed := strings.TrimSpace(line)
		if cur == nil {
			if !strings.HasPrefix(trimmed, "curl ") {
				continue
			}
			cur = []string{trimmed}
		} else {
			cur = append(cur, line)
		}
		cmd := strings.Join(cur, "\n")
		if strings.Count(cmd, "'")%2 == 0 && !strings.HasSuffix(trimmed, `\`) {
			cmds = append(cmds, cmd)
			cur = nil
			continue
		}
		if len(cur) > 200 {
			return nil, fmt.Errorf("line %d: curl command does not end within 200 lines", i+1)
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("the last curl command (%q) never closes its quote", cur[0])
	}
	return cmds, nil
}

// seedStep is the check that follows one curl of the document.
type seedStep struct {
	name string
	// match picks the curl by its text.
	match func(cmd string) bool
	// check probes the traffic after the curl succeeded.
	check func(t *testing.T, s *seedEnv)
}

// seedEnv is what the checks need.
type seedEnv struct {
	tlsConf *tls.Config // TLS client for SNI a.test.com
}

// expect fails unless probing addr gives want ("" = not routed).
func expect(t *testing.T, addr string, tlsConf *tls.Config, greet bool, want string) {
	t.Helper()
	res := probe(t, addr, tlsConf, greet)
	if want == "" {
		if res.routed() {
			t.Errorf("%s: %v, want not routed", addr, res)
		}
		return
	}
	if res.answer != want {
		t.Errorf("%s: %v, want answer %q", addr, res, want)
	}
}

func seedSteps() []seedStep {
	has := func(cmd string, subs ...string) bool {
		for _, s := range subs {
			if !strings.Contains(cmd, s) {
				return false
			}
		}
		return true
	}
	return []seedStep{{
		name:  "remote_addr 192.168.5.3",
		match: func(c string) bool { return has(c, `"remote_addr": "192.168.5.3"`) },
		check: func(t *testing.T, s *seedEnv) {
			// Only 192.168.5.3 matches; a loopback client is never routed,
			// so nothing is ever sent towards 192.168.4.10.
			for _, a := range []string{"127.0.0.1:9100", "127.0.0.1:9101", "127.0.0.1:2000", "127.0.0.10:9101"} {
				expect(t, a, nil, false, "")
			}
			expect(t, "127.0.0.1:9102", s.tlsConf, false, "")
		},
	}, {
		name:  "server_addr 127.0.0.1 server_port 2000",
		match: func(c string) bool { return has(c, `"server_addr": "127.0.0.1"`, `"server_port": 2000`) },
		check: func(t *testing.T, s *seedEnv) {
			expect(t, "127.0.0.1:2000", nil, false, "1995")
			expect(t, "127.0.0.1:2001", nil, false, "")
			expect(t, "127.0.0.1:9100", nil, false, "")
		},
	}, {
		name:  "MySQL: server_addr 127.0.0.10 server_port 9101",
		match: func(c string) bool { return has(c, `"server_addr": "127.0.0.10"`, `"server_port": 9101`) },
		check: func(t *testing.T, s *seedEnv) {
			// "Making a request to 9100 ... filter matching fails."
			res := probe(t, "127.0.0.1:9100", nil, true)
			if res.routed() {
				t.Errorf("127.0.0.1:9100: %v, want the connection lost before the greeting", res)
			}
			res = probe(t, "127.0.0.10:9101", nil, true)
			if res.greeting != "mysql" || res.answer != "mysql" {
				t.Errorf("127.0.0.10:9101: %v, want the MySQL stand-in's greeting", res)
			}
			expect(t, "127.0.0.1:9101", nil, true, "")
		},
	}, {
		name: "TLS listener, route without filters",
		match: func(c string) bool {
			return has(c, `"127.0.0.1:1995": 1`) && !has(c, "_addr") && !has(c, "sni") && !has(c, "scheme")
		},
		check: func(t *testing.T, s *seedEnv) {
			expect(t, "127.0.0.1:9102", s.tlsConf, false, "1995")
			// A route with no filters is a catch-all on every listener.
			expect(t, "127.0.0.1:9100", nil, false, "1995")
			expect(t, "127.0.0.10:9101", nil, false, "1995")
		},
	}, {
		name:  "sni a.test.com",
		match: func(c string) bool { return has(c, `"sni": "a.test.com"`, `"127.0.0.1:5991"`) },
		check: func(t *testing.T, s *seedEnv) {
			expect(t, "127.0.0.1:9102", s.tlsConf, false, "5991")
			// A plain connection has no SNI (no fallback_sni here).
			expect(t, "127.0.0.1:9100", nil, false, "")
		},
	}, {
		name:  "upstream scheme tls",
		match: func(c string) bool { return has(c, `"scheme": "tls"`, `"127.0.0.1:1995"`) },
		check: func(t *testing.T, s *seedEnv) {
			// "Otherwise, a dummy SNI "apisix_backend" will be used."
			expect(t, "127.0.0.1:9100", nil, false, "1995 tls sni=apisix_backend")
			// "the SNI from the client will pass through to the upstream"
			expect(t, "127.0.0.1:9102", s.tlsConf, false, "1995 tls sni=a.test.com")
		},
	}}
}

// seedConfig is examples/Caddyfile adapted to JSON, with its bare-port
// listeners bound to 127.0.0.1 (nothing in these tests leaves loopback)
// and the listeners the document uses added: the README's "2000-2005",
// the MySQL example's "127.0.0.10:9101" and a tls listener.
func seedConfig(t *testing.T) map[string]any {
	t.Helper()
	out, err := exec.Command(caddyBin, "adapt", "--config", filepath.Join(moduleRoot, "examples", "Caddyfile")).Output()
	if err != nil {
		t.Fatalf("caddy adapt examples/Caddyfile: %v", err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatalf("adapted examples/Caddyfile: %v", err)
	}
	if got := fmt.Sprint(cfg["admin"]); !strings.Contains(got, seedAdmin) {
		t.Fatalf("examples/Caddyfile admin is %s, the document's curls use %s", got, seedAdmin)
	}
	app, _ := cfg["apps"].(map[string]any)["apisix"].(map[string]any)
	sp, _ := app["stream_proxy"].(map[string]any)
	if sp == nil {
		t.Fatalf("examples/Caddyfile has no apisix stream_proxy: %s", out)
	}
	loopback := func(list any) []any {
		var res []any
		for _, e := range list.([]any) {
			if n, ok := e.(float64); ok {
				e = fmt.Sprintf("127.0.0.1:%d", int(n))
			}
			res = append(res, e)
		}
		return res
	}
	sp["tcp"] = append(loopback(sp["tcp"]), "127.0.0.1:2000-2005", "127.0.0.10:9101",
		map[string]any{"addr": "127.0.0.1:9102", "tls": true})
	sp["udp"] = loopback(sp["udp"])
	delete(cfg, "admin")
	return cfg
}

// writeCurlrc makes curl print the status code after the body, so the
// document's commands run unchanged and their status is still checked.
func writeCurlrc(t *testing.T, dir string) {
	t.Helper()
	rc := "silent\nshow-error\nmax-time = 10\nwrite-out = \"\\n%{http_code}\"\n"
	if err := os.WriteFile(filepath.Join(dir, ".curlrc"), []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
}

// runCurl runs one document command with sh and the real curl; it returns
// the status code and the body.
func runCurl(t *testing.T, dir, cmd string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, "sh", "-c", cmd)
	c.Dir = dir
	c.Env = testEnv(dir)
	out, err := c.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("curl failed: %v: %s\ncommand:\n%s", err, ee.Stderr, cmd)
		}
		t.Fatalf("running curl: %v", err)
	}
	body, code, ok := strings.Cut(string(out), "\n")
	if i := strings.LastIndex(string(out), "\n"); i >= 0 {
		body, code, ok = string(out[:i]), string(out[i+1:]), true
	}
	if !ok {
		t.Fatalf("curl output without a status line: %q", out)
	}
	return code, body
}

// waitFree waits up to a few seconds for addr to be free (a process of an
// earlier test may still be exiting) and fails clearly if it stays busy.
func waitFree(t *testing.T, addr string, port int, why string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !portFree(addr) {
		if time.Now().After(deadline) {
			who := holder(port)
			if who == "" {
				who = "another process"
			}
			t.Fatalf("%s is busy (held by %s); %s. Stop that process and run the test again", addr, who, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSeedReplay runs every curl of the seed document verbatim against a
// Caddy started with examples/Caddyfile's settings, and checks that the
// traffic goes where the document says after each one.
func TestSeedReplay(t *testing.T) {
	raw, err := os.ReadFile(seedPath())
	if err != nil {
		t.Fatalf("the seed document is missing: %v (expected at <repo>/../shared/seed/apisix-stream-proxy.md)", err)
	}
	cmds, err := extractCurls(string(raw))
	if err != nil {
		t.Fatalf("extracting the curl commands: %v", err)
	}
	if len(cmds) == 0 {
		t.Fatalf("no curl command in %s", seedPath())
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatalf("the curl binary is needed to replay the document: %v", err)
	}

	waitFree(t, seedAdmin, 9180, "the document's curls call the Admin API on 127.0.0.1:9180")
	waitFree(t, seedB1995, 1995, "the document's upstream node 127.0.0.1:1995 is a test backend")
	waitFree(t, seedB5991, 5991, "the document's upstream node 127.0.0.1:5991 is a test backend")
	for _, a := range []string{"127.0.0.1:9100", "127.0.0.1:9101", "127.0.0.1:9102", "127.0.0.10:9101",
		"127.0.0.1:2000", "127.0.0.1:2005"} {
		_, p, _ := strings.Cut(a[strings.LastIndex(a, ":"):], ":")
		var port int
		fmt.Sscan(p, &port)
		waitFree(t, a, port, "the seed config listens there")
	}

	ca := e2e.NewCA(t, "admine2e test CA")
	certPEM, keyPEM, _ := leaf(t, ca, "a.test.com")
	_, _, backendCert := leaf(t, ca, "backend.test")
	startBackend(t, "1995", seedB1995, false, &backendCert)
	startBackend(t, "5991", seedB5991, false, nil)
	mysqlAddr := seedMySQL
	if !portFree(seedMySQL) {
		mysqlAddr = hostPort("127.0.0.1", freePort(t))
		t.Logf("127.0.0.1:3306 is busy (%s): the MySQL stand-in listens on %s and the document's "+
			"MySQL route body is replayed with that node instead", holder(3306), mysqlAddr)
	}
	startBackend(t, "mysql", mysqlAddr, true, nil)

	in := newInstance(t, seedAdmin, seedConfig(t))
	writeCurlrc(t, in.dir)
	p := in.start()

	// The document's TLS section: "configure certificate for the given SNI".
	sslBody, _ := json.Marshal(map[string]any{"cert": certPEM, "key": keyPEM, "sni": "a.test.com"})
	p.must(t, http.MethodPut, "/apisix/admin/ssls/1", string(sslBody), http.StatusCreated)
	env := &seedEnv{tlsConf: &tls.Config{ServerName: "a.test.com", RootCAs: ca.Pool()}}

	steps := seedSteps()
	used := make([]bool, len(steps))
	for i, cmd := range cmds {
		step := -1
		for j, s := range steps {
			if s.match(cmd) {
				if step >= 0 {
					t.Fatalf("curl %d matches two checks (%s, %s):\n%s", i+1, steps[step].name, s.name, cmd)
				}
				step = j
			}
		}
		if step < 0 {
			t.Fatalf("curl %d of the document has no check here; add one:\n%s", i+1, cmd)
		}
		used[step] = true
		if mysqlAddr != seedMySQL {
			cmd = strings.ReplaceAll(cmd, seedMySQL, mysqlAddr)
		}
		code, body := runCurl(t, in.dir, cmd)
		want := "200"
		if i == 0 {
			want = "201" // route 1 does not exist yet
		}
		if code != want {
			t.Fatalf("curl %d (%s): status %s, want %s: %s", i+1, steps[step].name, code, want, body)
		}
		v := mustJSON(t, body)
		val, _ := v["value"].(map[string]any)
		if v["key"] != "/apisix/stream_routes/1" || val["id"] != "1" {
			t.Fatalf("curl %d (%s): body %s, want key /apisix/stream_routes/1 and id \"1\"", i+1, steps[step].name, body)
		}
		t.Run(fmt.Sprintf("%d %s", i+1, steps[step].name), func(t *testing.T) {
			steps[step].check(t, env)
		})
	}
	for j, s := range steps {
		if !used[j] {
			t.Errorf("no curl of the document matches the check %q: the document changed", s.name)
		}
	}
	if p.Exited() {
		t.Fatalf("caddy exited during the replay")
	}
}

// FuzzExtractCurls checks the extractor on arbitrary documents: it never
// panics, and every command it returns starts with curl and has balanced
// single quotes.
func FuzzExtractCurls(f *testing.F) {
	f.Add("curl http://x -d '\n{\n}'\n")
	f.Add("text\n    curl a\ncurl b -d 'x\n")
	f.Add("curl a \\\n  -d 'y'")
	if raw, err := os.ReadFile(filepath.Join("..", "..", "..", "shared", "seed", "apisix-stream-proxy.md")); err == nil {
		f.Add(string(raw))
	}
	f.Fuzz(func(t *testing.T, doc string) {
		cmds, err := extractCurls(doc)
		if err != nil {
			return
		}
		for _, c := range cmds {
			if !strings.HasPrefix(c, "curl ") || strings.Count(c, "'")%2 != 0 {
				t.Fatalf("bad command %q", c)
			}
		}
	})
}
