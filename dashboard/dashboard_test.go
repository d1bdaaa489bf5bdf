package dashboard

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/caddy-apisix/stream/adminapi"
)

func testHandler(cfg *adminapi.Config) Handler {
	return Handler{
		Config: func() *adminapi.Config { return cfg },
		Info: func() Info {
			return Info{Listeners: []Listener{{Network: "tcp", Addr: "127.0.0.1:9100"}},
				Store: Store{Provider: "embedded", Status: "ok"}, StreamEnabled: true}
		},
	}
}

func TestHandler(t *testing.T) {
	cfg := &adminapi.Config{
		Keys:       []adminapi.Key{{Name: "a", Key: "admin-key", Role: "admin"}, {Name: "v", Key: "viewer-key", Role: "viewer"}},
		AllowAdmin: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
	}
	tests := []struct {
		name, method, path, remote, key string
		cfg                             *adminapi.Config
		status                          int
		body                            string // a substring of the body
		ctype                           string // a prefix of Content-Type
	}{
		{"page", "GET", "/apisix/dashboard/", "127.0.0.1:5000", "", cfg, 200, `<script type="module" src="js/main.js">`, "text/html"},
		{"script", "GET", "/apisix/dashboard/js/main.js", "127.0.0.1:5000", "", cfg, 200, "import", "text/javascript"},
		{"style", "GET", "/apisix/dashboard/style.css", "127.0.0.1:5000", "", cfg, 200, ":root", "text/css"},
		{"head", "HEAD", "/apisix/dashboard/", "127.0.0.1:5000", "", cfg, 200, "", "text/html"},
		{"redirect", "GET", "/apisix/dashboard", "127.0.0.1:5000", "", cfg, 301, "", ""},
		{"missing file", "GET", "/apisix/dashboard/nope.js", "127.0.0.1:5000", "", cfg, 404, "", ""},
		{"outside allow_admin", "GET", "/apisix/dashboard/", "127.0.0.2:5000", "", cfg, 403, "403 Forbidden", "text/html"},
		{"outside allow_admin, info", "GET", "/apisix/dashboard/api/info", "127.0.0.2:5000", "admin-key", cfg, 403, "403 Forbidden", "text/html"},
		{"post", "POST", "/apisix/dashboard/", "127.0.0.1:5000", "", cfg, 405, "method not allowed", "application/json"},
		{"no app", "GET", "/apisix/dashboard/", "127.0.0.1:5000", "", nil, 503, "apisix app is not running", "application/json"},
		{"info admin", "GET", "/apisix/dashboard/api/info", "127.0.0.1:5000", "admin-key", cfg, 200, `"role":"admin"`, "application/json"},
		{"info viewer", "GET", "/apisix/dashboard/api/info", "127.0.0.1:5000", "viewer-key", cfg, 200, `"role":"viewer"`, "application/json"},
		{"info wrong key", "GET", "/apisix/dashboard/api/info", "127.0.0.1:5000", "nope", cfg, 401,
			`{"error_msg":"failed to check token","description":"wrong apikey"}`, "application/json"},
		{"info no key", "GET", "/apisix/dashboard/api/info", "127.0.0.1:5000", "", cfg, 401, `"description":"missing apikey"`, "application/json"},
		{"info keyless gateway", "GET", "/apisix/dashboard/api/info", "127.0.0.1:5000", "", &adminapi.Config{}, 200, `"role":"admin"`, "application/json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.path, nil)
			r.RemoteAddr = tc.remote
			if tc.key != "" {
				r.Header.Set("X-API-KEY", tc.key)
			}
			w := httptest.NewRecorder()
			testHandler(tc.cfg).ServeHTTP(w, r)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if !strings.Contains(w.Body.String(), tc.body) {
				t.Errorf("body %q lacks %q", w.Body, tc.body)
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, tc.ctype) {
				t.Errorf("Content-Type %q, want %q…", ct, tc.ctype)
			}
			if tc.status == 200 && !strings.Contains(w.Header().Get("Content-Security-Policy"), "connect-src 'self'") {
				t.Errorf("no CSP: %v", w.Header())
			}
		})
	}
}

// TestETag: a browser's revalidation of an unchanged file gets a 304.
func TestETag(t *testing.T) {
	h := testHandler(&adminapi.Config{})
	for _, path := range []string{"/apisix/dashboard/", "/apisix/dashboard/js/main.js", "/apisix/dashboard/style.css"} {
		r := httptest.NewRequest("GET", path, nil)
		r.RemoteAddr = "127.0.0.1:1"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		tag := w.Header().Get("ETag")
		if w.Code != 200 || tag == "" {
			t.Fatalf("%s: %d, ETag %q", path, w.Code, tag)
		}
		r = httptest.NewRequest("GET", path, nil)
		r.RemoteAddr = "127.0.0.1:1"
		r.Header.Set("If-None-Match", tag)
		w = httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusNotModified {
			t.Errorf("%s revalidated: %d, want 304", path, w.Code)
		}
	}
}

// TestInfoBody checks the info endpoint's shape, which the overview reads.
func TestInfoBody(t *testing.T) {
	r := httptest.NewRequest("GET", infoPath, nil)
	r.RemoteAddr = "127.0.0.1:1"
	w := httptest.NewRecorder()
	testHandler(&adminapi.Config{}).ServeHTTP(w, r)
	var got map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := `{"listeners":[{"addr":"127.0.0.1:9100","network":"tcp"}],"role":"admin","store":{"provider":"embedded","status":"ok"},"stream_enabled":true}`
	if b, _ := json.Marshal(got); string(b) != want {
		t.Errorf("info %s\nwant %s", b, want)
	}
}

// TestNoThirdPartyOrigins keeps the page self-contained: no file names
// another origin (no CDN, no remote fonts).
func TestNoThirdPartyOrigins(t *testing.T) {
	entries, err := static.ReadDir("static/js")
	if err != nil {
		t.Fatal(err)
	}
	files := []string{"static/index.html", "static/style.css"}
	for _, e := range entries {
		files = append(files, "static/js/"+e.Name())
	}
	for _, f := range files {
		b, err := static.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"http://", "https://", "//cdn", "@import url("} {
			s := strings.ReplaceAll(string(b), "http://www.w3.org/2000/svg", "")
			if strings.Contains(s, bad) {
				t.Errorf("%s names another origin (%q)", f, bad)
			}
		}
	}
}
