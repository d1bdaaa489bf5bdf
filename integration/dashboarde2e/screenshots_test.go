//go:build linux

package dashboarde2e

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

var update = flag.Bool("update", false, "write the screenshots to docs/dashboard/")

// TestScreenshots fills a gateway with a few objects and some traffic,
// checks what the SSL page computes (expiry, days left, no key) and takes
// a 1280×800 screenshot of every page; with -update they are written to
// docs/dashboard/.
func TestScreenshots(t *testing.T) {
	g := startGateway(t, nil)
	mysql := newBackend(t)
	redis := newBackend(t)
	dead := func() string { // a port nothing listens on
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}()
	g.api(t, http.MethodPut, "/apisix/admin/upstreams/mysql", map[string]any{
		"name": "mariadb primary + replica", "type": "least_conn", "retries": 1,
		"nodes":  []any{map[string]any{"host": "127.0.0.1", "port": portNum(mysql.Addr()), "weight": 10}, map[string]any{"host": "127.0.0.1", "port": portNum(dead), "weight": 5}},
		"checks": healthChecks}, http.StatusCreated)
	g.api(t, http.MethodPut, "/apisix/admin/upstreams/redis", map[string]any{
		"name": "redis shards", "type": "chash", "key": "remote_addr",
		"nodes": map[string]int{redis.Addr(): 1}, "checks": healthChecks}, http.StatusCreated)
	g.api(t, http.MethodPut, "/apisix/admin/stream_routes/mysql", map[string]any{
		"name": "mysql", "server_port": portNum(g.stream), "remote_addr": "127.0.0.0/24", "upstream_id": "mysql",
		"plugins": map[string]any{"ip-restriction": map[string]any{"whitelist": []string{"127.0.0.0/8"}}}}, http.StatusCreated)
	g.api(t, http.MethodPut, "/apisix/admin/stream_routes/redis-tls", map[string]any{
		"name": "redis over TLS", "sni": "redis.example.com", "upstream_id": "redis"}, http.StatusCreated)
	g.api(t, http.MethodPut, "/apisix/admin/stream_routes/syslog", map[string]any{
		"name": "syslog", "server_port": 5514,
		"upstream": map[string]any{"type": "roundrobin", "nodes": map[string]int{"127.0.0.1:1514": 1, "127.0.0.1:2514": 1}}}, http.StatusCreated)
	days := func(n int) time.Time { return time.Now().Add(time.Duration(n)*24*time.Hour + time.Hour) }
	a := e2e.NewCertUntil(t, days(90), "db.example.com")
	c := e2e.NewCertUntil(t, days(12), "redis.example.com")
	g.api(t, http.MethodPut, "/apisix/admin/ssls/db", map[string]any{"snis": []string{"db.example.com"}, "cert": a.CertPEM, "key": a.KeyPEM}, http.StatusCreated)
	g.api(t, http.MethodPut, "/apisix/admin/ssls/redis", map[string]any{"snis": []string{"redis.example.com", "*.redis.example.com"}, "cert": c.CertPEM, "key": c.KeyPEM}, http.StatusCreated)
	if g.status(t, "/apisix/admin/services") == http.StatusOK {
		g.api(t, http.MethodPut, "/apisix/admin/services/1", map[string]any{"name": "databases", "upstream_id": "mysql"}, http.StatusCreated)
	}

	b := newBrowser(t)
	dir := filepath.Join(moduleRoot, "docs", "dashboard")
	b.run(chromedp.Navigate(g.baseURL()), chromedp.WaitVisible(chromedp.ID("key")))
	if *update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "login.png"), b.screenshot(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b.login(g, adminKey)

	// the SSL page reads the certificates in the browser
	b.goTo("#/ssls", "ssls")
	for id, days := range map[string]string{"db": "90", "redis": "12"} {
		if got := b.text(fmt.Sprintf(`tr[data-id=%q] [data-days]`, id)); got != days {
			t.Errorf("ssl %s: days left %q, want %s", id, got, days)
		}
	}
	if got := b.text(`tr[data-id="db"]`); !containsAll(got, "db.example.com", days(90).UTC().Format("2006-01-02")) {
		t.Errorf("ssl db row: %q", got)
	}
	var html string
	b.eval(`document.documentElement.outerHTML`, &html)
	if containsAll(html, "PRIVATE KEY") {
		t.Error("the SSL page shows a private key")
	}

	// traffic for the charts while the screenshots are taken: four held
	// connections and short ones carrying varying amounts of data
	// (bandwidth is counted when a connection ends), bounded in count
	clients(t, g.stream, 4)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 256<<10)
		for i := range 300 {
			select {
			case <-stop:
				return
			case <-time.After(400 * time.Millisecond):
			}
			c, err := net.DialTimeout("tcp", g.stream, 2*time.Second)
			if err != nil {
				continue
			}
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			n := (16 + 12*(i%10)) << 10
			if _, err := c.Write(buf[:n]); err == nil {
				_, _ = io.ReadFull(c, buf[:n])
			}
			c.Close()
		}
	}()
	defer func() { close(stop); <-done }()
	time.Sleep(15 * time.Second) // history for the charts

	b.goTo("#/upstreams", "upstreams")
	node := fmt.Sprintf(`document.querySelector('tr[data-id="mysql"] li[data-node=%s] [data-health]').dataset.health`, jsString(dead))
	b.waitJS("dead node unhealthy", node+` === 'unhealthy'`)

	shots := []struct{ name, hash, page string }{
		{"overview", "#/overview", "overview"},
		{"stream-routes", "#/stream_routes", "stream_routes"},
		{"stream-route-live", "#/stream_routes/view/mysql", "stream_routes"},
		{"services", "#/services", "services"},
		{"upstreams", "#/upstreams", "upstreams"},
		{"ssls", "#/ssls", "ssls"},
		{"plugin-metadata", "#/plugin_metadata", "plugin_metadata"},
		{"edit-upstream", "#/upstreams/edit/mysql", "upstreams"},
	}
	for _, s := range shots {
		b.goTo(s.hash, s.page)
		time.Sleep(2500 * time.Millisecond) // one more poll: live figures and health filled in
		png := b.screenshot()
		if len(png) < 1000 {
			t.Fatalf("%s: screenshot of %d bytes", s.name, len(png))
		}
		if *update {
			if err := os.WriteFile(filepath.Join(dir, s.name+".png"), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	// a validation error, as the form shows it
	b.goTo("#/stream_routes/new", "stream_routes")
	b.fill(map[string]string{"f-name": "postgres", "f-remote_addr": "10.0.0.0/33", "f-server_port": "5432", "f-upstream_id": "mysql"})
	b.run(chromedp.Click(chromedp.CSS(`form.obj button[type="submit"]`)))
	b.waitJS("the remote_addr error", `document.querySelector('#err-remote_addr').textContent !== ''`)
	b.js(`window.scrollTo(0, 0)`)
	if *update {
		if err := os.WriteFile(filepath.Join(dir, "validation-error.png"), b.screenshot(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// screenshot is a PNG of the 1280×800 viewport.
func (b *browser) screenshot() []byte {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	return png
}

func portNum(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
