//go:build linux

package realclients

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

func init() {
	for prog, pkg := range map[string]string{
		"psql": "postgresql-client", "initdb": "postgresql", "postgres": "postgresql", "runuser": "util-linux",
		"mosquitto": "mosquitto", "mosquitto_pub": "mosquitto-clients", "mosquitto_sub": "mosquitto-clients",
		"rsyslogd": "rsyslog", "logger": "bsdutils",
	} {
		tools[prog] = pkg
	}
}

// TestServiceExamples runs each config under examples/ with the built Caddy, its
// real server on the address the example names, and the real client
// through the proxy, as the example's README section tells a user to.
func TestServiceExamples(t *testing.T) {
	t.Run("mysql", func(t *testing.T) {
		n := newNetns(t)
		n.startMariaDB(3306)
		n.runExample(t, "mysql")
		mustQuery(t, n, "127.0.0.1", 3307)
	})
	t.Run("redis", func(t *testing.T) {
		n := newNetns(t)
		n.startRedis(6379)
		n.runExample(t, "redis")
		for _, s := range []struct{ args []string }{{[]string{"SET", "example", "through the proxy"}}, {[]string{"GET", "example"}}} {
			got, err := n.redisCLI("127.0.0.1:6380", s.args...)
			if err != nil || (s.args[0] == "GET" && got != "through the proxy") || (s.args[0] == "SET" && got != "OK") {
				t.Fatalf("redis-cli %q through 127.0.0.1:6380: %q %v", s.args, got, err)
			}
		}
	})
	t.Run("dns", func(t *testing.T) {
		n := newNetns(t)
		n.startDnsmasq(5300, "10.1.2.3")
		n.runExample(t, "dns")
		for _, proto := range []string{"+notcp", "+tcp"} {
			got := n.dig("127.0.0.1", 5353, "bench.test", "A", "+short", proto)
			if got.err != nil || strings.TrimSpace(got.stdout) != "10.1.2.3" {
				t.Fatalf("dig %s through 127.0.0.1:5353: %v %q", proto, got.err, got.combined())
			}
		}
	})
	t.Run("mqtt", func(t *testing.T) {
		n := newNetns(t)
		n.startMosquitto(1883)
		n.runExample(t, "mqtt")
		pub := n.run("", "mosquitto_pub", "-h", "127.0.0.1", "-p", "1884", "-t", "example/topic", "-m", "through the proxy", "-r", "-q", "1")
		if pub.err != nil {
			t.Fatalf("mosquitto_pub through 127.0.0.1:1884: %v %s", pub.err, pub.combined())
		}
		sub := n.run("", "mosquitto_sub", "-h", "127.0.0.1", "-p", "1884", "-t", "example/topic", "-C", "1", "-W", "10")
		if sub.err != nil || strings.TrimSpace(sub.stdout) != "through the proxy" {
			t.Fatalf("mosquitto_sub through 127.0.0.1:1884: %v %q", sub.err, sub.combined())
		}
	})
	t.Run("syslog", func(t *testing.T) {
		n := newNetns(t)
		out := n.startRsyslog(5140)
		n.runExample(t, "syslog")
		for _, proto := range []string{"--udp", "--tcp"} {
			msg := "example message over " + proto[2:]
			r := n.run("", "logger", "--server", "127.0.0.1", "--port", "5514", proto, "-t", "example", msg)
			if r.err != nil {
				t.Fatalf("logger %s: %v %s", proto, r.err, r.combined())
			}
			waitFileContains(t, out, msg)
		}
	})
	t.Run("postgres", func(t *testing.T) {
		n := newNetns(t)
		n.startPostgres(5432)
		dir := n.runExample(t, "postgres", "localhost")
		_ = dir
		plain := n.run("", "psql", "host=127.0.0.1 port=5433 sslmode=disable user=postgres dbname=postgres", "-Atc", "SELECT 6*7")
		if plain.err != nil || strings.TrimSpace(plain.stdout) != "42" {
			t.Fatalf("psql through 127.0.0.1:5433: %v %q", plain.err, plain.combined())
		}
		// psql sends an SSLRequest first; the layer4 postgres matcher and
		// postgres_tls answer it, the apisix handler terminates TLS
		tlsConn := n.run("", "psql", "host=localhost hostaddr=127.0.0.1 port=5434 sslmode=require user=postgres dbname=postgres",
			"-Atc", "SELECT 6*7", "-c", `\conninfo`)
		if tlsConn.err != nil || !strings.HasPrefix(tlsConn.stdout, "42\n") || !strings.Contains(tlsConn.stdout, "SSL connection") {
			t.Fatalf("psql with TLS through 127.0.0.1:5434: %v %q", tlsConn.err, tlsConn.combined())
		}
	})
}

// runExample copies examples/<name> of the committed tree into a
// directory of its own, adds certificate files for the given names
// (<name>.crt, <name>.key), and runs Caddy there with its Caddyfile.
func (n *netns) runExample(t *testing.T, name string, certs ...string) string {
	t.Helper()
	src := filepath.Join(moduleRoot, "examples", name, "Caddyfile")
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	text := string(b)
	for _, cn := range certs {
		c := e2e.NewCert(t, cn)
		crt, key := c.Files(t, dir, cn)
		// the example names the files relative to its directory
		text = strings.ReplaceAll(text, " "+cn+".crt", " "+crt)
		text = strings.ReplaceAll(text, " "+cn+".key", " "+key)
	}
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	n.runCaddy(caddyBin, "run", "--config", path, "--adapter", "caddyfile")
	return dir
}

// startMosquitto runs mosquitto on 127.0.0.1:port, anonymous access.
func (n *netns) startMosquitto(port int) {
	n.t.Helper()
	need(n.t, "mosquitto", "mosquitto_pub", "mosquitto_sub")
	conf := filepath.Join(n.t.TempDir(), "mosquitto.conf")
	text := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n", port)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		n.t.Fatal(err)
	}
	p := n.start("mosquitto", "-c", conf)
	p.WaitReady(startWait, n.tcpReady(hostPort("127.0.0.1", port)))
}

// startRsyslog runs rsyslogd in the foreground with UDP and TCP inputs on
// 127.0.0.1:port, writing every message to the returned file.
func (n *netns) startRsyslog(port int) string {
	n.t.Helper()
	need(n.t, "rsyslogd", "logger")
	dir := n.t.TempDir()
	out := filepath.Join(dir, "messages.log")
	conf := filepath.Join(dir, "rsyslog.conf")
	text := fmt.Sprintf(`global(workDirectory=%q)
module(load="imudp")
module(load="imtcp")
input(type="imudp" address="127.0.0.1" port="%d")
input(type="imtcp" address="127.0.0.1" port="%d")
*.* action(type="omfile" file=%q)
`, dir, port, port, out)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		n.t.Fatal(err)
	}
	p := n.start("rsyslogd", "-n", "-f", conf, "-i", filepath.Join(dir, "rsyslogd.pid"))
	p.WaitReady(startWait, n.tcpReady(hostPort("127.0.0.1", port)))
	return out
}

// startPostgres initialises a cluster as the postgres user (PostgreSQL
// refuses to run as root) with trust authentication, and runs it on
// 127.0.0.1:port.
func (n *netns) startPostgres(port int) {
	n.t.Helper()
	need(n.t, "psql", "runuser")
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		unavailable(n.t, "missing programs: initdb, postgres (Debian package postgresql)")
	}
	bin := filepath.Dir(bins[len(bins)-1])
	dir, err := os.MkdirTemp("", "apisix-pg-")
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { _ = os.RemoveAll(dir) })
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		n.t.Fatal(err)
	}
	if out, err := exec.Command("chown", "-R", "postgres:postgres", dir).CombinedOutput(); err != nil {
		n.t.Fatalf("chown: %v %s", err, out)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		n.t.Fatal(err)
	}
	r := n.run("", "runuser", "-u", "postgres", "--", filepath.Join(bin, "initdb"), "-D", data, "-A", "trust", "-U", "postgres", "--no-sync")
	if r.err != nil {
		n.t.Fatalf("initdb: %v %s", r.err, r.combined())
	}
	p := n.start("runuser", "-u", "postgres", "--", filepath.Join(bin, "postgres"), "-D", data,
		"-k", dir, "-c", "listen_addresses=127.0.0.1", "-p", strconv.Itoa(port), "-c", "fsync=off")
	p.WaitReady(startWait, n.tcpReady(hostPort("127.0.0.1", port)))
}

// waitFileContains waits until the file holds s.
func waitFileContains(t *testing.T, path, s string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), s) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never held %q; it holds:\n%s", path, s, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
