//go:build linux

package realclients

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// redis is one redis-server process on 127.0.0.1.
type redis struct {
	*e2e.Proc
	ns   *netns
	port int
}

// startRedis runs redis-server on 127.0.0.1:port without persistence.
func (n *netns) startRedis(port int) *redis {
	n.t.Helper()
	need(n.t, "redis-server", "redis-cli")
	dir := n.t.TempDir()
	r := &redis{ns: n, port: port}
	r.Proc = n.start("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no")
	r.WaitReady(startWait, func() error {
		got, err := n.redisCLI(hostPort("127.0.0.1", port), "PING")
		if err == nil && got != "PONG" {
			err = fmt.Errorf("PING answered %q", got)
		}
		return err
	})
	return r
}

// redisCLI runs redis-cli against addr and returns its trimmed output.
func (n *netns) redisCLI(addr string, args ...string) (string, error) {
	host, port, _ := strings.Cut(addr, ":")
	r := n.run("", "redis-cli", append([]string{"-h", host, "-p", port}, args...)...)
	out := strings.TrimSpace(r.combined())
	if r.err != nil {
		return out, fmt.Errorf("redis-cli %s %q: %v: %s", addr, args, r.err, out)
	}
	return out, nil
}

// setCalls is the server's count of SET commands since its last
// CONFIG RESETSTAT.
func (r *redis) setCalls(t testing.TB) int {
	t.Helper()
	out, err := r.ns.redisCLI(hostPort("127.0.0.1", r.port), "INFO", "commandstats")
	if err != nil {
		t.Fatal(err)
	}
	m := setCallsRE.FindStringSubmatch(out)
	if m == nil {
		return 0 // no SET yet: redis lists only commands it ran
	}
	c, _ := strconv.Atoi(m[1])
	return c
}

var setCallsRE = regexp.MustCompile(`(?m)^cmdstat_set:calls=(\d+),`)

// resetStats zeroes the server's command statistics.
func (r *redis) resetStats(t testing.TB) {
	t.Helper()
	if out, err := r.ns.redisCLI(hostPort("127.0.0.1", r.port), "CONFIG", "RESETSTAT"); err != nil || out != "OK" {
		t.Fatalf("CONFIG RESETSTAT: %q %v", out, err)
	}
}

// benchmarkErrors finds what redis-benchmark prints for a failed request
// (it exits at the first one: -e is obsolete)
// or connection ("Error: Server closed the connection", "Error from
// server: …", "Writing to socket: …").
var benchmarkErrors = regexp.MustCompile(`(?i)error|closed|reset|refused|writing to socket`)

// TestRedis drives the proxy with redis-cli and redis-benchmark, and
// updates the route while a benchmark that opens a connection per request
// runs: not one request may fail, and the new node must get traffic.
func TestRedis(t *testing.T) {
	need(t, "redis-server", "redis-cli", "redis-benchmark")
	logVersion(t, "redis-server", "--version")
	logVersion(t, "redis-cli", "--version")
	logVersion(t, "redis-benchmark", "--version")
	n := newNetns(t)
	r1, r2 := n.startRedis(6379), n.startRedis(6380)
	c := n.startCaddy(obj{"stream_proxy": obj{"tcp": []any{"127.0.0.1:9100"}}})
	c.put(t, "stream_routes/1", obj{"server_port": 9100, "upstream": upstream("127.0.0.1:6379")})
	const proxy = "127.0.0.1:9100"

	t.Run("redis-cli PING SET GET", func(t *testing.T) {
		steps := []struct {
			addr string
			args []string
			want string
		}{
			{proxy, []string{"PING"}, "PONG"},
			{proxy, []string{"SET", "greeting", "hello through the proxy"}, "OK"},
			{proxy, []string{"GET", "greeting"}, "hello through the proxy"},
			{"127.0.0.1:6379", []string{"GET", "greeting"}, "hello through the proxy"}, // it landed on node 1
		}
		for _, s := range steps {
			got, err := n.redisCLI(s.addr, s.args...)
			if err != nil {
				t.Fatal(err)
			}
			if got != s.want {
				t.Fatalf("redis-cli -h/-p %s %q: %q, want %q", s.addr, s.args, got, s.want)
			}
		}
	})

	t.Run("redis-benchmark keep-alive", func(t *testing.T) {
		r1.resetStats(t)
		const requests = 20000
		res := n.run("", "redis-benchmark", "-h", "127.0.0.1", "-p", "9100", "-n", strconv.Itoa(requests),
			"-c", "20", "-t", "ping,set,get", "-q")
		if res.err != nil || benchmarkErrors.MatchString(res.combined()) {
			t.Fatalf("redis-benchmark: %v\n%s", res.err, res.combined())
		}
		for _, test := range []string{"PING_INLINE", "PING_MBULK", "SET", "GET"} {
			if !strings.Contains(res.stdout, test+": ") {
				t.Errorf("no %s result in:\n%s", test, res.stdout)
			}
		}
		if got := r1.setCalls(t); got != requests {
			t.Errorf("node 1 ran %d SETs, want %d", got, requests)
		}
		t.Logf("redis-benchmark through the proxy:\n%s", finalLines(res.stdout))
	})

	t.Run("route update during redis-benchmark -k 0", func(t *testing.T) {
		r1.resetStats(t)
		r2.resetStats(t)
		const requests, updateAt = 10000, 500
		// -k 0: a new connection per request, so each one is routed anew.
		bench := n.startFor(t, "redis-benchmark", "-h", "127.0.0.1", "-p", "9100", "-n", strconv.Itoa(requests),
			"-c", "10", "-k", "0", "-t", "set", "-q")
		bench.WaitReady(startWait, func() error {
			if got := r1.setCalls(t); got < updateAt {
				return fmt.Errorf("node 1 has run %d SETs", got)
			}
			return nil
		})
		c.put(t, "stream_routes/1", obj{"server_port": 9100, "upstream": upstream("127.0.0.1:6379", "127.0.0.1:6380")})
		if done := r1.setCalls(t) + r2.setCalls(t); done >= requests {
			t.Fatalf("the benchmark ended (%d SETs) before the update: raise the request count", done)
		}
		select {
		case <-bench.Done():
		case <-time.After(cmdWait):
			t.Fatalf("redis-benchmark did not finish within %v:\n%s", cmdWait, bench.Output())
		}
		out := bench.Output()
		if !bench.Cmd.ProcessState.Success() || benchmarkErrors.MatchString(out) {
			t.Fatalf("redis-benchmark (%v):\n%s", bench.Cmd.ProcessState, out)
		}
		s1, s2 := r1.setCalls(t), r2.setCalls(t)
		if s1+s2 != requests {
			t.Errorf("nodes ran %d + %d SETs, want %d in all", s1, s2, requests)
		}
		if s2 == 0 {
			t.Errorf("node 2 got no SET after the route update (node 1: %d)", s1)
		}
		t.Logf("SETs: node 1 %d, node 2 %d; %s", s1, s2, finalLines(out))
	})
}

// finalLines drops the progress redis-benchmark redraws with \r, keeping
// what a terminal shows at the end.
func finalLines(out string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if i := strings.LastIndexByte(strings.TrimRight(line, " "), '\r'); i >= 0 {
			line = line[i+1:]
		}
		b.WriteString(strings.TrimSpace(line) + "\n")
	}
	return b.String()
}
