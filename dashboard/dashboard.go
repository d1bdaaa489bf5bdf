// Package dashboard serves the gateway's web dashboard: a single page,
// embedded in the binary, that shows and changes stream routes, services,
// upstreams, SSLs and plugin metadata through the Admin API, with live
// health from the control API (/v1/healthcheck) and live connections and
// bandwidth from Caddy's /metrics.
//
// The page is plain JavaScript modules and CSS (static/), with no build
// step and no third-party code; it calls nothing but the endpoint that
// serves it. Handler is a plain http.Handler: the Caddy module
// admin.api.apisix mounts it at PathPrefix behind the Admin API's
// allow_admin, and the page sends the admin key the user typed (kept in
// the browser's sessionStorage) with every Admin API call, so the Admin
// API enforces keys and roles as it does for any client.
package dashboard

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net/http"
	"strings"

	"github.com/caddy-apisix/stream/adminapi"
)

// PathPrefix is where the dashboard lives; the page is PathPrefix + "/".
const PathPrefix = "/apisix/dashboard"

// infoPath answers the overview's facts that no Admin API call gives.
const infoPath = PathPrefix + "/api/info"

//go:embed static
var static embed.FS

// files are the page's files; etags their content digests, by URL path
// below PathPrefix, so that a browser revalidates with 304s (embedded
// files have no modification time for Last-Modified).
var files, etags = func() (fs.FS, map[string]string) {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err)
	}
	tags := map[string]string{}
	_ = fs.WalkDir(sub, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		url := "/" + path
		if path == "index.html" {
			url = "/"
		}
		tags[url] = `"` + hex.EncodeToString(sum[:8]) + `"`
		return nil
	})
	return sub, tags
}()

// Handler serves the dashboard's files and its info endpoint. It keeps no
// state: settings and facts are read on every request.
type Handler struct {
	// Config returns the running app's Admin API settings (allow_admin,
	// keys). A nil result answers 503: no apisix app is running.
	Config func() *adminapi.Config
	// Info returns the facts of the overview page; nil gives none.
	Info func() Info
}

// Info is what the overview page shows besides the objects themselves.
type Info struct {
	// Listeners are the stream_proxy addresses being served.
	Listeners []Listener `json:"listeners"`
	// Store describes where the objects live.
	Store Store `json:"store"`
	// StreamEnabled is false when the app has no stream_proxy.
	StreamEnabled bool `json:"stream_enabled"`
}

// Listener is one stream_proxy address.
type Listener struct {
	// Network is "tcp" or "udp".
	Network string `json:"network"`
	// Addr is the address as bound, e.g. "127.0.0.1:9101" or ":9100".
	Addr string `json:"addr"`
	// TLS, TLSPassthrough and ProxyProtocol are the entry's options.
	TLS            bool `json:"tls,omitempty"`
	TLSPassthrough bool `json:"tls_passthrough,omitempty"`
	ProxyProtocol  bool `json:"proxy_protocol,omitempty"`
}

// Store describes the object store.
type Store struct {
	// Provider is "embedded" (Caddy storage), "etcd", "yaml" or "json".
	Provider string `json:"provider"`
	// Status is "ok" or the store's last error.
	Status string `json:"status"`
}

// infoBody is the answer of the info endpoint.
type infoBody struct {
	Info
	// Role is the role of the key the request carried: the page hides
	// write controls for "viewer".
	Role string `json:"role"`
}

// securityHeaders keep the page to its own files and endpoint: no
// inline script, no framing, and a same-origin Referer, which Caddy's
// admin endpoint checks on every browser request.
var securityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
	"X-Content-Type-Options": "nosniff",
	"Referrer-Policy":        "same-origin",
	"X-Frame-Options":        "DENY",
	"Cache-Control":          "no-cache",
}

// ServeHTTP serves GET and HEAD: PathPrefix redirects to the page,
// infoPath answers JSON for a valid key, anything else is a static file.
func (h Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var cfg *adminapi.Config
	if h.Config != nil {
		cfg = h.Config()
	}
	if cfg == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error_msg": "apisix app is not running"})
		return
	}
	if !adminapi.ClientAllowed(r, cfg) {
		adminapi.Forbid(w)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error_msg": "method not allowed"})
		return
	}
	for k, v := range securityHeaders {
		w.Header().Set(k, v)
	}
	switch {
	case r.URL.Path == PathPrefix:
		http.Redirect(w, r, PathPrefix+"/", http.StatusMovedPermanently)
	case r.URL.Path == infoPath:
		h.serveInfo(w, r, cfg)
	case strings.HasPrefix(r.URL.Path, PathPrefix+"/"):
		if tag, ok := etags[strings.TrimPrefix(r.URL.Path, PathPrefix)]; ok {
			w.Header().Set("ETag", tag)
		}
		http.StripPrefix(PathPrefix, http.FileServerFS(files)).ServeHTTP(w, r)
	default:
		http.NotFound(w, r)
	}
}

// serveInfo answers the info endpoint with the Admin API's key check and
// its 401 body (apisix/admin/init.lua check_token).
func (h Handler) serveInfo(w http.ResponseWriter, r *http.Request, cfg *adminapi.Config) {
	role, reason := adminapi.KeyRole(r, cfg)
	if reason != "" {
		writeJSON(w, http.StatusUnauthorized, struct {
			ErrorMsg    string `json:"error_msg"`
			Description string `json:"description"`
		}{"failed to check token", reason})
		return
	}
	body := infoBody{Role: role}
	if h.Info != nil {
		body.Info = h.Info()
	}
	if body.Listeners == nil {
		body.Listeners = []Listener{}
	}
	writeJSON(w, http.StatusOK, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
