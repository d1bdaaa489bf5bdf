package stream

import (
	"net/http"
	"runtime/debug"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-apisix/stream/adminapi"
	"github.com/caddy-apisix/stream/dashboard"
	"github.com/caddy-apisix/stream/live"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// AdminAPI is the Caddy module admin.api.apisix: it serves the
// APISIX-compatible Admin API (/apisix/admin/stream_routes, /upstreams,
// /ssls, /plugins/list, /schema/validate/...) on Caddy's admin endpoint.
//
// Admin modules are provisioned before apps and again on every config
// load, even one that fails, so this module holds no state of its own: it
// resolves the process-global registry and the running app's settings on
// every request. With no apisix app running it answers 503.
type AdminAPI struct {
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.apisix",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// Provision keeps the logger and binds nothing. Caddy provisions this
// module while it builds the admin endpoint of a new config, before it
// binds the endpoint's address; so this is where an admin endpoint beyond
// loopback is refused when the config has an apisix app (adminaccess.go):
// the failed load then leaves the running endpoint in place.
func (a *AdminAPI) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	live.ProtectDefaultLog()
	cfg, err := loadedConfig(ctx)
	if err != nil {
		return err
	}
	if cfg != nil && cfg.AppsRaw["apisix"] != nil {
		return checkAdminAccess(cfg, nil)
	}
	return nil
}

// Routes returns the Admin API routes: the /apisix/admin/ subtree, and
// /apisix/admin itself for APISIX's HEAD liveness probe (without it
// Caddy's mux would redirect to the subtree).
func (a *AdminAPI) Routes() []caddy.AdminRoute {
	h := caddy.AdminHandlerFunc(a.serve)
	return []caddy.AdminRoute{
		{Pattern: adminapi.PathPrefix + "/", Handler: h},
		{Pattern: adminapi.PathPrefix, Handler: h},
		{Pattern: "/v1/healthcheck", Handler: caddy.AdminHandlerFunc(a.serveHealth)},
		{Pattern: "/v1/healthcheck/", Handler: caddy.AdminHandlerFunc(a.serveHealth)},
		{Pattern: "/v1/cluster", Handler: caddy.AdminHandlerFunc(a.serveCluster)},
		{Pattern: "/v1/gc", Handler: caddy.AdminHandlerFunc(a.serveGC)},
		{Pattern: dashboard.PathPrefix + "/", Handler: caddy.AdminHandlerFunc(a.serveDashboard)},
	}
}

// controlRequest answers what every read-only control API endpoint
// refuses (no app running, a client outside allow_admin, a method other
// than GET) and reports whether the request may go on.
func controlRequest(w http.ResponseWriter, r *http.Request) bool {
	return controlRequestFor(w, r, http.MethodGet)
}

// controlRequestFor is controlRequest for an endpoint whose method is
// method.
func controlRequestFor(w http.ResponseWriter, r *http.Request, method string) bool {
	cfg := live.AdminConfig()
	switch {
	case cfg == nil:
		adminapi.WriteErrorMsg(w, http.StatusServiceUnavailable, adminapi.NotRunning)
		return false
	case !adminapi.ClientAllowed(r, cfg):
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		return false
	case r.Method != method:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusMethodNotAllowed)
		return false
	}
	return true
}

// serveHealth is APISIX's control API for health checks, read-only and
// keyless like APISIX's (which listens on 127.0.0.1:9090), but limited to
// allow_admin clients: GET /v1/healthcheck lists every checked upstream,
// /v1/healthcheck/stream_routes/<id> and /v1/healthcheck/upstreams/<id>
// one of them.
func (a *AdminAPI) serveHealth(w http.ResponseWriter, r *http.Request) error {
	if !controlRequest(w, r) {
		return nil
	}
	rt := live.Runtime()
	rest := strings.Trim(strings.TrimPrefix(r.URL.Path, "/v1/healthcheck"), "/")
	if rest == "" {
		adminapi.WriteJSON(w, http.StatusOK, rt.AllHealth())
		return nil
	}
	kind, id, _ := strings.Cut(rest, "/")
	report := rt.Health(kind, id)
	if report == nil || (kind != "stream_routes" && kind != "upstreams") {
		adminapi.WriteErrorMsg(w, http.StatusNotFound, "no health checker found")
		return nil
	}
	adminapi.WriteJSON(w, http.StatusOK, report)
	return nil
}

// serveGC is APISIX's POST /v1/gc (apisix/control/v1.lua trigger_gc): a
// full garbage collection, here followed by returning the freed memory to
// the operating system, so that RSS read right after shows what the
// process holds rather than what the Go runtime kept for reuse. It
// answers 200 with no body, as APISIX.
func (a *AdminAPI) serveGC(w http.ResponseWriter, r *http.Request) error {
	if !controlRequestFor(w, r, http.MethodPost) {
		return nil
	}
	debug.FreeOSMemory()
	w.WriteHeader(http.StatusOK)
	return nil
}

// serve answers one request through adminapi.Handler, which writes every
// error as APISIX does (503 while no app runs), never returning one to
// Caddy, whose error log would otherwise record it.
func (a *AdminAPI) serve(w http.ResponseWriter, r *http.Request) error {
	// read once: the app may stop mid-request and the request must see
	// one consistent config
	cfg := live.AdminConfig()
	h := adminapi.Handler{
		Registry: live.Registry(),
		Config:   func() *adminapi.Config { return cfg },
		State:    live.AdminState(),
		Logger:   a.logger,
	}
	h.ServeHTTP(w, r)
	return nil
}

// Interface guards
var (
	_ caddy.Module      = (*AdminAPI)(nil)
	_ caddy.Provisioner = (*AdminAPI)(nil)
	_ caddy.AdminRouter = (*AdminAPI)(nil)
)
