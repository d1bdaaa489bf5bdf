//go:build linux

package admine2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// TestUnreadableStoredObjectIsReported: a stored file overwritten with
// garbage is, after a restart, not served, logged at ERROR with its file
// and error, counted in apisix_store_unreadable_objects, and still there.
func TestUnreadableStoredObjectIsReported(t *testing.T) {
	in := newInstance(t, "", appsConfig(apisixApp(nil)))
	p := in.start()
	p.must(t, "PUT", "/apisix/admin/upstreams/broken", `{"nodes":{"127.0.0.1:1":1}}`, 201)
	p.must(t, "PUT", "/apisix/admin/upstreams/fine", `{"nodes":{"127.0.0.1:2":1}}`, 201)
	p.Stop()

	file := filepath.Join(in.storageRoot(), "apisix", "upstreams", "broken")
	garbage := []byte("\x00garbage, not an object{")
	if err := os.WriteFile(file, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	p = in.start()
	p.must(t, "GET", "/apisix/admin/upstreams/fine", "", http.StatusOK)
	p.must(t, "GET", "/apisix/admin/upstreams/broken", "", http.StatusNotFound)

	var line string
	for _, l := range strings.Split(p.Output(), "\n") {
		if strings.Contains(l, "stored object unreadable") {
			line = l
		}
	}
	if !strings.Contains(line, `"level":"error"`) || !strings.Contains(line, `"file":"`+file+`"`) || !strings.Contains(line, `"error":"`) ||
		!strings.Contains(line, `"action":"restore the file from a backup, or delete it and write the object again"`) {
		t.Errorf("no ERROR line naming %s, the error and what to do; got %q", file, line)
	}
	st, _, body, err := e2e.Admin{Addr: in.admin}.Do(http.MethodGet, "/metrics", "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st != http.StatusOK || !strings.Contains(string(body), "\napisix_store_unreadable_objects 1\n") {
		t.Errorf("GET /metrics: %d, want apisix_store_unreadable_objects 1 in:\n%s", st, grepLines(string(body), "apisix_store"))
	}
	if got, err := os.ReadFile(file); err != nil || string(got) != string(garbage) {
		t.Errorf("the unreadable file changed or went: %q %v", got, err)
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
