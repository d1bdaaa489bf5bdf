//go:build linux

package integration

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// logWait bounds the wait for a log line; health checks probe every
// second.
const logWait = 10 * time.Second

// waitLogged waits until the process output matches re and returns the
// match.
func waitLogged(t *testing.T, p *caddyProc, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(logWait)
	for {
		out := p.Output()
		if m := rx.FindString(out); m != "" {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line matches %s:\n%s", re, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dialTLSFrom opens a TLS connection from src to dst with server name sni,
// trusting roots.
func dialTLSFrom(src, dst, sni string, cert testCert) (*tls.Conn, error) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: answerWait}
	cfg := &tls.Config{ServerName: sni}
	if cert != nil {
		cfg.RootCAs = cert.Pool()
	}
	return tls.DialWithDialer(d, "tcp", dst, cfg)
}

// TestActionableLogs checks the log lines of failures at the default
// level (INFO): a node hidden by retries, a 502 naming the node tried
// last in the access log (TCP and TLS), failed TLS handshakes and
// unmatched connections (rate-limited, with the listener), and health
// transitions as "upstream <id> node <addr> unhealthy: <why>".
func TestActionableLogs(t *testing.T) {
	be := newBackend(t, "alive")
	dead, checked := deadPort(t), deadPort(t)
	deadAddr, checkedAddr := hostPort("127.0.0.1", dead), hostPort("127.0.0.1", checked)
	plainPort := freePort(t)
	plain, tlsAddr, udpAddr := hostPort("127.0.0.1", plainPort), hostPort("127.0.0.1", freePort(t)), hostPort("127.0.0.1", freePort(t))
	cert := newTestCert(t, "known.test.com")
	p := startCaddy(t, caddyConfig{LogLevel: "INFO", Apisix: map[string]any{
		"stream_proxy": map[string]any{
			"tcp": []any{plain, map[string]any{"addr": tlsAddr, "tls": true}},
			"udp": []any{udpAddr},
		},
		"ssls":       []any{sslObject(cert, "known", "known.test.com")},
		"access_log": true,
	}})
	// the dead node first (higher priority), retried on the live one
	p.put(t, "upstreams/3", map[string]any{"nodes": []any{
		map[string]any{"host": "127.0.0.1", "port": dead, "weight": 1, "priority": 1},
		map[string]any{"host": "127.0.0.1", "port": be.Port, "weight": 1, "priority": 0},
	}})
	p.put(t, "stream_routes/1", map[string]any{"remote_addr": "127.0.0.1", "server_port": plainPort, "upstream_id": "3"})
	p.put(t, "stream_routes/2", map[string]any{"remote_addr": "127.0.0.2",
		"upstream": map[string]any{"nodes": map[string]int{deadAddr: 1}}})
	p.put(t, "upstreams/4", map[string]any{"nodes": map[string]int{checkedAddr: 1},
		"checks": map[string]any{"active": map[string]any{"type": "tcp",
			"healthy":   map[string]any{"interval": 1, "successes": 1},
			"unhealthy": map[string]any{"interval": 1, "tcp_failures": 1}}}})
	q := regexp.QuoteMeta

	t.Run("retried node", func(t *testing.T) {
		if got := whoTCP(t, "127.0.0.1", plain); got != "alive" {
			t.Fatalf("answered by %q, want alive", got)
		}
		waitLogged(t, p, `"level":"warn"[^\n]*"msg":"upstream node failed","route":"1","upstream":"3","node":"`+q(deadAddr)+
			`","attempt":1,"retrying":true,"error":"[^"]*connection refused`)
	})
	t.Run("502 names the node tried last", func(t *testing.T) {
		if got := whoTCP(t, "127.0.0.2", plain); got != "" {
			t.Fatalf("answered by %q, want a close", got)
		}
		waitLogged(t, p, `"level":"warn"[^\n]*"msg":"failed to connect to upstream","route":"2","upstream":"stream_routes/2","node":"`+q(deadAddr)+`"`)
		waitLogged(t, p, `"local":"`+q(plain)+`","protocol":"TCP","sni":"","route":"2","upstream":"`+q(deadAddr)+`","status":502`)
		c, err := dialTLSFrom("127.0.0.2", tlsAddr, "known.test.com", cert)
		if err != nil {
			t.Fatalf("TLS handshake: %v", err)
		}
		_ = c.SetReadDeadline(time.Now().Add(answerWait))
		if n, _ := c.Read(make([]byte, 1)); n != 0 {
			t.Fatal("TLS: got bytes from a dead upstream")
		}
		c.Close()
		waitLogged(t, p, `"local":"`+q(tlsAddr)+`","protocol":"TCP","sni":"known.test.com","route":"2","upstream":"`+q(deadAddr)+`","status":502`)
	})
	t.Run("failed TLS handshakes", func(t *testing.T) {
		const tries = 5
		for range tries {
			if c, err := dialTLSFrom("127.0.0.1", tlsAddr, "unknown.test.com", nil); err == nil {
				c.Close()
				t.Fatal("a handshake for an SNI without certificate succeeded")
			}
		}
		waitLogged(t, p, `"level":"warn"[^\n]*"msg":"TLS handshake failed","listener":"`+q(tlsAddr)+`","remote":"127\.0\.0\.1:\d+","sni":"unknown.test.com","error":"[^"]*failed to match any SSL certificate by SNI: unknown.test.com"`)
		// one warning per 10 s stands for the others
		if n := strings.Count(p.Output(), `"msg":"TLS handshake failed"`); n >= tries {
			t.Fatalf("%d warnings for %d failed handshakes, want them rate-limited", n, tries)
		}
	})
	t.Run("unmatched", func(t *testing.T) {
		if got := whoTCP(t, "127.0.0.3", plain); got != "" {
			t.Fatalf("answered by %q, want a close", got)
		}
		waitLogged(t, p, `"level":"warn"[^\n]*"msg":"not hit any route","network":"tcp","listener":"`+q(plain)+`","remote":"127\.0\.0\.3:\d+"`)
		c := udpFrom(t, "127.0.0.3", udpAddr)
		if _, err := c.Write([]byte("anyone?")); err != nil {
			t.Fatal(err)
		}
		waitLogged(t, p, `"level":"warn"[^\n]*"msg":"not hit any route","network":"udp","listener":"`+q(udpAddr)+`","remote":"127\.0\.0\.3:\d+"`)
	})
	t.Run("health transitions", func(t *testing.T) {
		waitLogged(t, p, `"level":"warn"[^\n]*"msg":"upstream 4 node `+q(checkedAddr)+` unhealthy: connect refused"`)
		ln, err := net.Listen("tcp", checkedAddr)
		if err != nil {
			t.Fatal(err)
		}
		e2e.Serve(t, ln, func(c net.Conn) {})
		waitLogged(t, p, `"level":"info"[^\n]*"msg":"upstream 4 node `+q(checkedAddr)+` healthy: connect succeeded"`)
	})
}

// metricsText is GET /metrics on addr (an admin endpoint or admin_listen).
func metricsText(t *testing.T, addr string) string {
	t.Helper()
	st, _, body, err := e2e.Admin{Addr: addr}.Do(http.MethodGet, "/metrics", "", nil, nil)
	if err != nil || st != http.StatusOK {
		t.Fatalf("GET %s/metrics: %d %v", addr, st, err)
	}
	return string(body)
}

// waitMetric waits until the series (written as Prometheus writes it)
// has a value for which ok holds, in GET /metrics on addr.
func waitMetric(t *testing.T, addr, series string, ok func(float64) bool) {
	t.Helper()
	rx := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	deadline := time.Now().Add(logWait)
	for {
		text := metricsText(t, addr)
		var v float64 = -1
		if m := rx.FindStringSubmatch(text); m != nil {
			_, _ = fmt.Sscan(m[1], &v)
		}
		if ok(v) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, in:\n%s", series, v, text)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestMetricsScrape drives TCP and UDP traffic, a 502, a health-checked
// upstream and a deleted route, then checks what a scraper of admin_listen
// and of a Caddy site with the metrics handler sees: promtool accepts the
// exposition; UDP bytes count while the
// session lives; apisix_upstream_status follows the health checks; the
// deleted route's series are gone; every metric the Grafana dashboard
// queries is there.
func TestMetricsScrape(t *testing.T) {
	be := newBackend(t, "metered")
	dead := deadPort(t)
	plain, udpAddr := hostPort("127.0.0.1", freePort(t)), hostPort("127.0.0.1", freePort(t))
	scrape, site := hostPort("127.0.0.1", freePort(t)), hostPort("127.0.0.1", freePort(t))
	p := startCaddy(t, caddyConfig{
		Apisix: map[string]any{
			"stream_proxy": map[string]any{"tcp": []any{plain}, "udp": []any{udpAddr}},
			"admin_listen": scrape,
		},
		// the README's other scrape point: a site with Caddy's metrics handler
		Apps: map[string]any{"http": map[string]any{"servers": map[string]any{"metrics": map[string]any{
			"listen":          []string{site},
			"automatic_https": map[string]any{"disable": true},
			"routes":          []any{map[string]any{"handle": []any{map[string]any{"handler": "metrics"}}}},
		}}}},
	})
	p.put(t, "upstreams/4", map[string]any{"nodes": map[string]int{be.Addr(): 1, hostPort("127.0.0.1", dead): 1},
		"checks": map[string]any{"active": map[string]any{"type": "tcp",
			"healthy":   map[string]any{"interval": 1, "successes": 1},
			"unhealthy": map[string]any{"interval": 1, "tcp_failures": 1}}}})
	p.put(t, "stream_routes/1", map[string]any{"remote_addr": "127.0.0.1", "upstream": upstreamOf(be)})
	p.put(t, "stream_routes/2", map[string]any{"remote_addr": "127.0.0.2",
		"upstream": map[string]any{"nodes": map[string]int{hostPort("127.0.0.1", dead): 1}}})
	p.put(t, "stream_routes/gone", map[string]any{"remote_addr": "127.0.0.3", "upstream_id": "4"})

	if got := whoTCP(t, "127.0.0.1", plain); got != "metered" {
		t.Fatalf("tcp: answered by %q", got)
	}
	if got := whoTCP(t, "127.0.0.2", plain); got != "" {
		t.Fatalf("dead upstream: answered by %q", got)
	}
	if got := whoTCP(t, "127.0.0.3", plain); got != "metered" {
		t.Fatalf("route gone: answered by %q", got)
	}
	// a UDP session that stays open: its bytes count at once
	c := udpFrom(t, "127.0.0.1", udpAddr)
	if name, _, ok := udpAsk(t, c, []byte("ping"), answerWait); !ok || name != "metered" {
		t.Fatalf("udp: answered by %q (%v)", name, ok)
	}
	positive := func(v float64) bool { return v > 0 }
	for _, series := range []string{
		fmt.Sprintf(`apisix_stream_bandwidth_bytes_total{listen_addr=%q,route="1",side="downstream",type="ingress"}`, udpAddr),
		fmt.Sprintf(`apisix_stream_bandwidth_bytes_total{listen_addr=%q,route="1",side="downstream",type="egress"}`, udpAddr),
		fmt.Sprintf(`apisix_stream_bandwidth{listen_addr=%q,route="1",side="upstream",type="egress"}`, udpAddr),
		fmt.Sprintf(`apisix_stream_active_connections{listen_addr=%q,route="1"}`, udpAddr),
		fmt.Sprintf(`apisix_stream_status{code="502",listen_addr=%q,node=%q,route="2"}`, plain, hostPort("127.0.0.1", dead)),
		fmt.Sprintf(`apisix_stream_status_total{code="200",listen_addr=%q,node=%q,route="gone"}`, plain, be.Addr()),
	} {
		waitMetric(t, scrape, series, positive)
	}
	// APISIX's node labels: the IP the probe reached and the port
	_, bePort, _ := net.SplitHostPort(be.Addr())
	waitMetric(t, scrape, fmt.Sprintf(`apisix_upstream_status{ip="127.0.0.1",name="/apisix/upstreams/4",port=%q}`, bePort), func(v float64) bool { return v == 1 })
	waitMetric(t, scrape, fmt.Sprintf(`apisix_upstream_status{ip="127.0.0.1",name="/apisix/upstreams/4",port="%d"}`, dead), func(v float64) bool { return v == 0 })

	t.Run("caddy metrics site", func(t *testing.T) {
		if text := metricsText(t, site); !strings.Contains(text, `apisix_stream_connection_total{route="1"}`) {
			t.Fatalf("the metrics handler's site has no stream metrics:\n%s", text)
		}
	})
	t.Run("promtool", func(t *testing.T) {
		cmd := exec.Command(needTool(t, "promtool", "prometheus"), "check", "metrics")
		cmd.Stdin = strings.NewReader(metricsText(t, scrape))
		if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
			t.Fatalf("promtool check metrics: %v\n%s", err, out)
		}
	})
	t.Run("grafana dashboard", func(t *testing.T) {
		text := metricsText(t, scrape)
		for _, name := range dashboardMetrics(t, filepath.Join("..", "examples", "grafana", "apisix-stream.json")) {
			if !regexp.MustCompile(`(?m)^` + name + `(\{| )`).MatchString(text) {
				t.Errorf("the dashboard queries %s, which /metrics does not have", name)
			}
		}
	})
	t.Run("deleted route", func(t *testing.T) {
		if st, body, err := p.request(http.MethodDelete, "/apisix/admin/stream_routes/gone", nil); err != nil || st != http.StatusOK {
			t.Fatalf("DELETE: %d %s %v", st, body, err)
		}
		if text := metricsText(t, scrape); strings.Contains(text, `route="gone"`) {
			t.Fatalf("series of the deleted route are still exported:\n%s", text)
		}
		if text := metricsText(t, p.admin); !strings.Contains(text, `apisix_stream_connection_total{route="1"}`) {
			t.Fatalf("the other routes' series left too:\n%s", text)
		}
	})
}

// dashboardMetrics lists the metric names the dashboard's queries use.
func dashboardMetrics(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var exprs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && (k == "expr" || k == "definition") {
					exprs = append(exprs, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	walk(doc)
	var names []string
	for _, e := range exprs {
		names = append(names, regexp.MustCompile(`\bapisix_[a-z_]+\b`).FindAllString(e, -1)...)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	if len(names) < 5 {
		t.Fatalf("%s: only %v queried", path, names)
	}
	return names
}

// TestStaticHandlerNames checks that layer4.handlers.apisix_proxy
// handlers report distinct route labels: their name, or apisix_proxy/
// and their nodes.
func TestStaticHandlerNames(t *testing.T) {
	a, b := newBackend(t, "named"), newBackend(t, "unnamed")
	namedAddr, unnamedAddr := hostPort("127.0.0.1", freePort(t)), hostPort("127.0.0.1", freePort(t))
	server := func(listen string, handler map[string]any) map[string]any {
		handler["handler"] = "apisix_proxy"
		return map[string]any{"listen": []string{listen}, "routes": []any{map[string]any{"handle": []any{handler}}}}
	}
	p := startCaddy(t, caddyConfig{
		Apisix: map[string]any{"stream_proxy": map[string]any{"tcp": []any{hostPort("127.0.0.1", freePort(t))}}},
		Apps: map[string]any{"layer4": map[string]any{"servers": map[string]any{
			"named":   server(namedAddr, map[string]any{"name": "redis", "upstream": upstreamOf(a)}),
			"unnamed": server(unnamedAddr, map[string]any{"upstream": upstreamOf(b)}),
		}}},
		Ready: func(p *caddyProc) error {
			if err := e2e.ApisixReady(p.admin, adminKey)(); err != nil {
				return err
			}
			if err := tcpListening(namedAddr); err != nil {
				return err
			}
			return tcpListening(unnamedAddr)
		},
	})
	// tcpListening's own connections count too: compare after traffic
	for _, tt := range []struct {
		addr  string
		be    *backend
		label string
	}{
		{namedAddr, a, "apisix_proxy/redis"},
		{unnamedAddr, b, "apisix_proxy/" + b.Addr()},
	} {
		if got := whoTCP(t, "127.0.0.1", tt.addr); got != tt.be.Name {
			t.Fatalf("%s: answered by %q", tt.addr, got)
		}
		waitMetric(t, p.admin, fmt.Sprintf(`apisix_stream_status_total{code="200",listen_addr=%q,node=%q,route=%q}`, tt.addr, tt.be.Addr(), tt.label),
			func(v float64) bool { return v >= 1 })
	}
	if text := metricsText(t, p.admin); strings.Contains(text, `route="apisix_proxy"`) {
		t.Fatalf("a handler still reports route=\"apisix_proxy\":\n%s", text)
	}
}
