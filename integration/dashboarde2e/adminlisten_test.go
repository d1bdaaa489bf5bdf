//go:build linux

package dashboarde2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// TestAdminListenCrossOrigin: the dashboard served on admin_listen signs
// in and creates an upstream through its form (same-origin writes pass
// the origin check), while a page of another origin on the same host,
// in the same browser, which holds an x_api_key cookie for the Admin
// API, cannot create one with a simple cross-origin POST (the request a
// CSRF page can send without a CORS preflight): it gets 403 and nothing
// is stored.
func TestAdminListenCrossOrigin(t *testing.T) {
	listen := e2e.HostPort("127.0.0.1", e2e.FreePorts(t, 1)[0])
	g := startGateway(t, map[string]any{"admin_listen": listen})
	b := newBrowser(t)

	b.run(chromedp.Navigate("http://"+listen+"/apisix/dashboard/"), chromedp.WaitVisible(chromedp.ID("key")))
	b.run(chromedp.SendKeys(chromedp.ID("key"), adminKey+"\r"))
	b.waitPage("overview")
	b.goTo("#/upstreams", "upstreams")
	b.run(chromedp.Click(chromedp.ID("#create")))
	b.waitJS("upstream form", `document.querySelector('#f-nodes')`)
	b.fill(map[string]string{"f-id": "same", "f-nodes": "127.0.0.1:1 1"})
	b.run(chromedp.Click(chromedp.CSS(`form.obj button[type="submit"]`)))
	b.waitPage("upstreams")
	b.waitJS("upstream same listed", `document.querySelector('tr[data-id="same"]')`)
	g.api(t, http.MethodGet, "/apisix/admin/upstreams/same", nil, http.StatusOK)

	// a cookie key for the Admin API's host (cookies are per host, not
	// per port), as a user signed in with the x_api_key cookie has
	b.js(fmt.Sprintf(`document.cookie = "x_api_key=%s; path=/"`, adminKey))

	// the other origin: a page on another port of the same host
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	page := fmt.Sprintf(`<!doctype html><title>loading</title><script>
fetch("http://%s/apisix/admin/upstreams", {method: "POST", mode: "no-cors", credentials: "include",
  body: '{"name":"csrf","nodes":{"127.0.0.1:2":1}}'}).then(() => { document.title = "sent" }, e => { document.title = "failed " + e })
</script>`, listen)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(page))
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	b.run(chromedp.Navigate("http://" + ln.Addr().String() + "/"))
	b.waitJS("the cross-origin POST sent", `document.title === "sent"`)

	list := g.api(t, http.MethodGet, "/apisix/admin/upstreams", nil, http.StatusOK)
	if n, _ := list["total"].(float64); n != 1 {
		t.Errorf("after the cross-origin POST the Admin API lists %v upstreams, want 1 (only the dashboard's): %v", list["total"], list["list"])
	}
}

// TestAdminListenLiveFigures: the dashboard served on admin_listen reads
// /metrics from its own origin and shows a held-open connection's figures
// while it runs: one active connection, its bytes, and a bytes/s point
// once it sends more.
func TestAdminListenLiveFigures(t *testing.T) {
	listen := e2e.HostPort("127.0.0.1", e2e.FreePorts(t, 1)[0])
	g := startGateway(t, map[string]any{"admin_listen": listen})
	be := newBackend(t)
	g.api(t, http.MethodPut, "/apisix/admin/stream_routes/1", map[string]any{
		"upstream": map[string]any{"nodes": map[string]int{be.Addr(): 1}}}, http.StatusCreated)
	b := newBrowser(t)
	b.run(chromedp.Navigate("http://"+listen+"/apisix/dashboard/"), chromedp.WaitVisible(chromedp.ID("key")))
	b.run(chromedp.SendKeys(chromedp.ID("key"), adminKey+"\r"))
	b.waitPage("overview")
	b.goTo("#/stream_routes", "stream_routes")
	b.js(`import('/apisix/dashboard/js/prom.js').then((m) => { window.promModule = m })`)
	// the figures the page polled, for route 1
	now := `(window.promModule && window.promModule.live.now.get('1') || {})`

	c := clients(t, g.stream, 1)[0]
	b.waitJS("1 active connection", `document.querySelector('tr[data-id="1"] [data-live="active"]').textContent === '1'`)
	// "hello 0\n" in and back: 8 bytes in each of the four series
	b.waitJS("the open connection's bytes", now+`.bytes === 32`)
	echo(t, c, "more bytes\n")
	b.waitJS("the bytes sent since", now+`.bytes === 32 + 4 * 11`)
	b.waitJS("a bytes/s point", `window.promModule.live.history.get('1').some((p) => p.bps > 0)`)
	b.waitJS("still 1 active connection", now+`.active === 1`)
}

// echo sends msg on c and reads it back.
func echo(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
		t.Fatalf("echo: %q, %v", buf, err)
	}
}
