//go:build linux

package dashboarde2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// TestDashboardFlow is an admin's session: sign in, create an upstream
// with health checks and a route through the forms (a bad CIDR first,
// whose APISIX error shows next to its field), watch the route's live
// connection count while clients are connected and the node turn
// unhealthy when its backend stops, then delete both.
func TestDashboardFlow(t *testing.T) {
	g := startGateway(t, nil)
	be := newBackend(t)
	b := newBrowser(t)

	b.login(g, adminKey)
	if got := b.text("#role"); got != "admin" {
		t.Fatalf("role shown %q, want admin", got)
	}
	if got := b.text("#store-status"); got != "ok" {
		t.Errorf("store status %q, want ok", got)
	}
	if !strings.Contains(b.text("main"), g.stream) {
		t.Errorf("overview does not list the listener %s:\n%s", g.stream, b.snapshot())
	}

	// the upstream, through its form
	b.goTo("#/upstreams", "upstreams")
	b.run(chromedp.Click(chromedp.ID("#create")))
	b.waitJS("upstream form", `document.querySelector('#f-nodes')`)
	checks, _ := json.Marshal(healthChecks)
	b.fill(map[string]string{"f-id": "u1", "f-name": "echo", "f-nodes": be.Addr() + " 1", "f-checks": string(checks)})
	b.run(chromedp.Click(chromedp.CSS(`form.obj button[type="submit"]`)))
	b.waitPage("upstreams")
	b.waitJS("upstream u1 listed", `document.querySelector('tr[data-id="u1"]')`)
	up := g.api(t, http.MethodGet, "/apisix/admin/upstreams/u1", nil, http.StatusOK)
	if v := up["value"].(map[string]any); v["name"] != "echo" || v["checks"] == nil {
		t.Fatalf("upstream as stored: %v", v)
	}

	// the route: a bad CIDR first
	b.goTo("#/stream_routes/new", "stream_routes")
	b.fill(map[string]string{"f-id": "r1", "f-remote_addr": "10.0.0.0/33", "f-server_port": portOf(g.stream), "f-upstream_id": "u1"})
	b.run(chromedp.Click(chromedp.CSS(`form.obj button[type="submit"]`)))
	b.waitJS("the remote_addr error", `document.querySelector('#err-remote_addr').textContent.includes('property "remote_addr" validation failed')`)
	var invalid string
	b.eval(`document.querySelector('#f-remote_addr').getAttribute('aria-invalid')`, &invalid)
	if invalid != "true" {
		t.Errorf("remote_addr input aria-invalid = %q, want true", invalid)
	}
	if code := g.status(t, "/apisix/admin/stream_routes/r1"); code != http.StatusNotFound {
		t.Fatalf("the refused route exists: GET answers %d", code)
	}
	b.fill(map[string]string{"f-remote_addr": "127.0.0.1"})
	b.run(chromedp.Click(chromedp.CSS(`form.obj button[type="submit"]`)))
	b.waitJS("route r1 listed", `location.hash === '#/stream_routes' && document.querySelector('tr[data-id="r1"]')`)

	// live connections: three clients held open
	cs := clients(t, g.stream, 3)
	b.waitJS("3 active connections", `document.querySelector('tr[data-id="r1"] [data-live="active"]').textContent === '3'`)
	b.waitJS("a chart line", `document.querySelector('tr[data-id="r1"] [data-live="chart"] polyline')`)
	for _, c := range cs {
		c.Close()
	}
	b.waitJS("0 active connections", `document.querySelector('tr[data-id="r1"] [data-live="active"]').textContent === '0'`)

	// health: healthy, then unhealthy once the backend stops
	b.goTo("#/upstreams", "upstreams")
	node := fmt.Sprintf(`document.querySelector('tr[data-id="u1"] li[data-node=%s] [data-health]').dataset.health`, jsString(be.Addr()))
	b.waitJS("node healthy", node+` === 'healthy'`)
	be.Stop()
	b.waitJS("node unhealthy", node+` === 'unhealthy'`)

	// delete the route, then the upstream, through the buttons
	b.goTo("#/stream_routes", "stream_routes")
	b.run(chromedp.Click(chromedp.CSS(`button[aria-label="Delete stream route r1"]`)))
	b.run(chromedp.WaitVisible(chromedp.ID("#confirm-yes")), chromedp.Click(chromedp.ID("#confirm-yes")))
	b.waitJS("route r1 gone", `document.querySelector('main').dataset.ready !== '' && !document.querySelector('tr[data-id="r1"]')`)
	// the upstream with the keyboard only: focus its Delete button, Enter,
	// and Enter again on the dialog's confirm button, which has the focus
	b.goTo("#/upstreams", "upstreams")
	b.run(chromedp.Focus(chromedp.CSS(`button[aria-label="Delete upstream u1"]`)), chromedp.KeyEvent("\r"))
	b.run(chromedp.WaitVisible(chromedp.ID("confirm-yes")))
	b.waitJS("confirm focused", `document.activeElement && document.activeElement.id === 'confirm-yes'`)
	b.run(chromedp.KeyEvent("\r"))
	b.waitJS("upstream u1 gone", `document.querySelector('main').dataset.ready !== '' && !document.querySelector('tr[data-id="u1"]')`)
	for _, p := range []string{"/apisix/admin/stream_routes/r1", "/apisix/admin/upstreams/u1"} {
		if code := g.status(t, p); code != http.StatusNotFound {
			t.Errorf("GET %s after delete: %d, want 404", p, code)
		}
	}
}

// TestJSONEdit edits an upstream through the JSON view and shows an
// APISIX error under the JSON for a bad value.
func TestJSONEdit(t *testing.T) {
	g := startGateway(t, nil)
	g.api(t, http.MethodPut, "/apisix/admin/upstreams/1", map[string]any{
		"type": "roundrobin", "nodes": map[string]int{"127.0.0.1:1995": 1}}, http.StatusCreated)
	b := newBrowser(t)
	b.login(g, adminKey)
	b.goTo("#/upstreams", "upstreams")
	b.run(chromedp.Click(chromedp.CSS(`button[aria-label="JSON of upstream 1"]`)))
	b.waitJS("JSON dialog", `document.querySelector('#json-text')`)
	b.fill(map[string]string{"json-text": `{"type":"roundrobin","nodes":{"127.0.0.1:1995":1},"retries":-1}`})
	b.run(chromedp.Click(chromedp.CSS(`#dialog button[type="submit"]`)))
	b.waitJS("the retries error", `document.querySelector('#json-error').textContent.includes('property "retries" validation failed')`)
	b.fill(map[string]string{"json-text": `{"type":"roundrobin","nodes":{"127.0.0.1:1995":2},"name":"edited"}`})
	b.run(chromedp.Click(chromedp.CSS(`#dialog button[type="submit"]`)))
	b.waitJS("dialog closed", `!document.querySelector('#dialog').open`)
	v := g.api(t, http.MethodGet, "/apisix/admin/upstreams/1", nil, http.StatusOK)["value"].(map[string]any)
	if v["name"] != "edited" {
		t.Fatalf("upstream after the JSON edit: %v", v)
	}
}

// TestViewer signs in with the viewer key: everything is shown, no write
// control is, and a write tried anyway shows the Admin API's 401 text and
// changes nothing.
func TestViewer(t *testing.T) {
	g := startGateway(t, nil)
	g.api(t, http.MethodPut, "/apisix/admin/upstreams/1", map[string]any{
		"type": "roundrobin", "nodes": map[string]int{"127.0.0.1:1995": 1}}, http.StatusCreated)
	g.api(t, http.MethodPut, "/apisix/admin/stream_routes/1", map[string]any{"upstream_id": "1"}, http.StatusCreated)
	b := newBrowser(t)

	// a wrong key stays on the login form with APISIX's text
	b.run(chromedp.Navigate(g.baseURL()), chromedp.WaitVisible(chromedp.ID("#key")))
	b.run(chromedp.SendKeys(chromedp.ID("#key"), "nope\r"))
	b.waitJS("wrong key text", `document.querySelector('#login-error').textContent === 'failed to check token: wrong apikey'`)

	b.fill(map[string]string{"key": ""})
	b.run(chromedp.SendKeys(chromedp.ID("#key"), viewerKey+"\r"))
	b.waitPage("overview")
	if got := b.text("#role"); got != "viewer (read-only)" {
		t.Fatalf("role shown %q", got)
	}
	for _, page := range []string{"stream_routes", "upstreams"} {
		b.goTo("#/"+page, page)
		if b.count(`tr[data-id="1"]`) != 1 {
			t.Fatalf("%s: object 1 not listed:\n%s", page, b.snapshot())
		}
		if n := b.count(`#create, #create-json, button.danger, a[href*="/edit/"]`); n != 0 {
			t.Errorf("%s: %d write controls shown to a viewer", page, n)
		}
	}
	b.run(chromedp.Click(chromedp.CSS(`button[aria-label="JSON of upstream 1"]`)))
	b.waitJS("JSON dialog", `document.querySelector('#json-text')`)
	var ro bool
	b.eval(`document.querySelector('#json-text').readOnly && !document.querySelector('#dialog button[type="submit"]')`, &ro)
	if !ro {
		t.Error("the viewer's JSON view is editable")
	}
	b.js(`document.querySelector('#dialog').close()`)

	// a write tried anyway, through the form's address
	b.goTo("#/upstreams/new", "upstreams")
	b.fill(map[string]string{"f-id": "2", "f-nodes": "127.0.0.1:1996 1"})
	b.run(chromedp.Click(chromedp.CSS(`form.obj button[type="submit"]`)))
	b.waitJS("401 text", `document.querySelector('form.obj .alert').textContent === 'failed to check token: invalid method for role viewer'`)
	if code := g.status(t, "/apisix/admin/upstreams/2"); code != http.StatusNotFound {
		t.Fatalf("the viewer's upstream exists: %d", code)
	}
}

// TestOutsideAllowAdmin: with allow_admin 127.0.0.1/32 a client from
// 127.0.0.2 gets 403 for the page, its files and its info endpoint.
func TestOutsideAllowAdmin(t *testing.T) {
	g := startGateway(t, nil)
	from := func(ip string) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return d.DialContext(ctx, network, addr)
			}}}
	}
	for _, c := range []struct {
		ip   string
		want int
	}{{"127.0.0.1", http.StatusOK}, {"127.0.0.2", http.StatusForbidden}} {
		for _, p := range []string{"/apisix/dashboard/", "/apisix/dashboard/js/main.js", "/apisix/dashboard/api/info"} {
			req, _ := http.NewRequest(http.MethodGet, "http://"+g.admin+p, nil)
			req.Header.Set("X-API-KEY", adminKey)
			resp, err := from(c.ip).Do(req)
			if err != nil {
				t.Fatalf("from %s GET %s: %v", c.ip, p, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Errorf("from %s GET %s: %d, want %d: %.200s", c.ip, p, resp.StatusCode, c.want, body)
			}
			if c.want == http.StatusForbidden && strings.Contains(string(body), "<script") {
				t.Errorf("from %s GET %s: the 403 carries the page", c.ip, p)
			}
		}
	}
}

// TestOptionalCollections: the services and plugin metadata pages show
// the collections when the Admin API has them (and a service can be
// created through its form), an empty state when it answers 404.
func TestOptionalCollections(t *testing.T) {
	g := startGateway(t, nil)
	b := newBrowser(t)
	b.login(g, adminKey)
	b.goTo("#/services", "services")
	if g.status(t, "/apisix/admin/services") == http.StatusNotFound {
		if b.count("#empty-state") != 1 {
			t.Errorf("services: no empty state for a 404:\n%s", b.snapshot())
		}
	} else {
		// a service through its form
		g.api(t, http.MethodPut, "/apisix/admin/upstreams/1", map[string]any{
			"type": "roundrobin", "nodes": map[string]int{"127.0.0.1:1995": 1}}, http.StatusCreated)
		b.goTo("#/services/new", "services")
		b.fill(map[string]string{"f-id": "s1", "f-name": "databases", "f-upstream_id": "1"})
		b.run(chromedp.Click(chromedp.CSS(`form.obj button[type="submit"]`)))
		b.waitJS("service s1 listed", `location.hash === '#/services' && document.querySelector('tr[data-id="s1"]')`)
		v := g.api(t, http.MethodGet, "/apisix/admin/services/s1", nil, http.StatusOK)["value"].(map[string]any)
		if v["name"] != "databases" || v["upstream_id"] != "1" {
			t.Errorf("service as stored: %v", v)
		}
	}
	b.goTo("#/plugin_metadata", "plugin_metadata")
	_, _, body, err := e2e.Admin{Addr: g.admin}.Do(http.MethodGet, "/apisix/admin/plugin_metadata/syslog", adminKey, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(body), "Unsupported resource type") {
		if b.count("#empty-state") != 1 {
			t.Errorf("plugin metadata: no empty state for a gateway without it:\n%s", b.snapshot())
		}
	} else if b.count(`#list tr[data-id="syslog"]`) != 1 {
		t.Errorf("plugin metadata: no row for syslog:\n%s", b.snapshot())
	}
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}
