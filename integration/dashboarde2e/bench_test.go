//go:build linux

package dashboarde2e

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// benchRoutes is how many stream routes the benchmark's gateway holds.
const benchRoutes = 10000

// BenchmarkPageLoad10kRoutes measures full page loads in Chromium (a new
// document: the embedded files, the key check, the Admin API calls and
// the rendering, until the router marks the page ready) on a gateway
// holding 10,000 stream routes, static objects of its config:
//
//	unshare -n sh -c 'ip link set lo up && go test ./integration/dashboarde2e/ -run ^$ -bench . -benchtime 20x'
func BenchmarkPageLoad10kRoutes(b *testing.B) {
	routes := make([]any, benchRoutes)
	for i := range routes {
		routes[i] = map[string]any{
			"id": fmt.Sprintf("r%05d", i), "name": fmt.Sprintf("route-%05d", i),
			"server_port": 20000 + i%40000, "remote_addr": fmt.Sprintf("10.%d.%d.0/24", i/256%256, i%256),
			"upstream": map[string]any{"type": "roundrobin", "nodes": map[string]int{"127.0.0.1:1": 1}},
		}
	}
	g := startGateway(b, map[string]any{"stream_routes": routes})
	// the calls the pages make, without the browser
	for _, p := range []string{"/apisix/admin/stream_routes?page=1&page_size=20",
		"/apisix/admin/stream_routes?page=1&page_size=20&name=route%5C-0999", "/v1/healthcheck", "/apisix/dashboard/api/info"} {
		b.Run("api"+p, func(b *testing.B) {
			for b.Loop() {
				g.status(b, p)
			}
		})
	}
	br := newBrowser(b)
	br.login(g, adminKey)
	for _, c := range []struct {
		name, hash, page string
		rows             int // the rows the page must show; 0: no table
	}{
		{"overview", "#/overview", "overview", 0},
		{"routes/page_size=20", "#/stream_routes", "stream_routes", 20},
		{"routes/page_size=100", "#/stream_routes?size=100", "stream_routes", 100},
		{"routes/last_page", "#/stream_routes?page=100&size=100", "stream_routes", 100},
		{"routes/search", "#/stream_routes?q=route-0999", "stream_routes", 10},
	} {
		b.Run(c.name, func(b *testing.B) {
			br.t = b
			ready := fmt.Sprintf(`document.querySelector('main').dataset.page === %q && document.querySelector('main').dataset.ready !== ''`, c.page)
			if c.rows > 0 {
				ready += fmt.Sprintf(` && document.querySelectorAll('#list tbody tr[data-id]').length === %d`, c.rows)
			}
			var total time.Duration
			for i := 0; b.Loop(); i++ {
				start := time.Now()
				// a new document each time: the query string differs
				br.run(chromedp.Navigate(g.baseURL() + "?load=" + url.QueryEscape(fmt.Sprint(i)) + c.hash))
				br.waitJS(c.name+" ready", ready)
				total += time.Since(start)
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/load")
			// where the last load spent its time: the document's phases
			// and each request, in ms since navigation start
			var timings string
			br.eval(`(() => {
				const n = performance.getEntriesByType('navigation')[0];
				const r = performance.getEntriesByName('dashboard-ready').pop();
				const phases = 'document ' + Math.round(n.responseEnd) + ', DOMContentLoaded ' + Math.round(n.domContentLoadedEventEnd) +
					', load ' + Math.round(n.loadEventEnd) + ', ready ' + (r ? Math.round(r.startTime) : '?');
				const reqs = performance.getEntriesByType('resource').map(e => e.name.replace(location.origin, '') + ' ' + Math.round(e.startTime) + '+' + Math.round(e.duration));
				return phases + '; ' + reqs.join(', ');
			})()`, &timings)
			b.Logf("last load (ms): %s", timings)
		})
	}
}
