package adminapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"

	"github.com/caddy-apisix/stream/internal/lua"
)

// PathPrefix is where the Admin API lives.
const PathPrefix = "/apisix/admin"

// Handler serves the APISIX Admin API under PathPrefix. It keeps no state
// of its own: objects live in Registry, settings come from Config on
// every request and what outlives a request is in State, so a Handler may
// be built per request.
type Handler struct {
	// Registry holds the stream routes, upstreams and ssls.
	Registry *registry.Registry
	// Config returns the settings of the running app. A nil result
	// fails closed: every request answers 503.
	Config func() *Config
	// State is the process's shared Admin API state (NewState); every
	// Handler of one process must be given the same one.
	State *State
	// Logger receives storage failures and rejected requests at debug
	// level; nil logs nothing. Keys and bodies are never logged.
	Logger *zap.Logger

	// now is the clock for create_time/update_time; nil means time.Now.
	now func() time.Time
}

// request is one parsed Admin API call on an object resource.
type request struct {
	cfg  *Config
	kind model.Kind
	// id is the URL id; "" when the URL names the collection.
	id string
	// subPath is the rest of the URL after the id (PATCH targets it).
	subPath []string
	// body is the decoded JSON body; hasBody is false when it was empty.
	body    any
	hasBody bool
	query   url.Values
}

// reply is a successful answer; a nil body sends none.
type reply struct {
	status int
	body   any
	// headers are extra response headers.
	headers map[string]string
}

// objectKinds are the object resources by URL segment.
var objectKinds = map[string]model.Kind{
	string(model.StreamRoutes):   model.StreamRoutes,
	string(model.Upstreams):      model.Upstreams,
	string(model.SSLs):           model.SSLs,
	string(model.Services):       model.Services,
	string(model.PluginMetadata): model.PluginMetadata,
}

// ServeHTTP implements http.Handler, in APISIX's order (docs/apisix/admin-api.md#request-order):
// allow_admin, routing, key check, stream mode, resource and method, body,
// ttl, then the resource method.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var cfg *Config
	if h.Config != nil {
		cfg = h.Config()
	}
	if cfg == nil || h.Registry == nil || h.State == nil {
		// not wired to a running app (State comes with it, from live)
		writeError(w, errMsg(http.StatusServiceUnavailable, NotRunning))
		return
	}
	if !ClientAllowed(r, cfg) {
		Forbid(w)
		return
	}
	path := r.URL.Path
	if path == PathPrefix && r.Method == http.MethodHead {
		setCommonHeaders(w)
		w.WriteHeader(http.StatusOK)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete, http.MethodPatch:
	case http.MethodHead:
		if path != PathPrefix+"/configs" || cfg.Standalone == nil {
			writeText(w, http.StatusNotFound, "text/html", nginxPage(http.StatusNotFound))
			return
		}
	default:
		writeText(w, http.StatusNotFound, "text/html", nginxPage(http.StatusNotFound))
		return
	}
	if !strings.HasPrefix(path, PathPrefix+"/") {
		writeText(w, http.StatusNotFound, "text/html", nginxPage(http.StatusNotFound))
		return
	}
	rep, err := h.route(r, cfg, strings.Split(path[len(PathPrefix)+1:], "/"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	for k, v := range rep.headers {
		w.Header().Set(k, v)
	}
	h.warnOnWrite(w, r, cfg, rep)
	if raw, ok := rep.body.(rawBody); ok {
		writeText(w, rep.status, raw.contentType, string(raw.data))
		return
	}
	if rep.body == nil {
		setCommonHeaders(w)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rep.status)
		return
	}
	writeJSON(w, rep.status, rep.body)
}

// route runs everything after the nginx-level checks.
func (h *Handler) route(r *http.Request, cfg *Config, segs []string) (reply, error) {
	if reason := checkToken(r, cfg); reason != "" {
		return reply{}, &apiError{status: http.StatusUnauthorized,
			body: errorBody{ErrorMsg: "failed to check token", Description: reason}}
	}
	if rep, ok, err := h.routeConfigs(r, cfg, segs); ok {
		return rep, err
	}
	if rep, ok, err := routeHTTPOnly(r, segs); ok {
		return rep, err
	}
	query := r.URL.Query()
	switch {
	case len(segs) == 2 && segs[0] == "plugins" && segs[1] == "list" && r.Method == http.MethodGet:
		return pluginsList(query)
	case len(segs) >= 3 && segs[0] == "schema" && segs[1] == "validate" && r.Method == http.MethodPost:
		return schemaValidate(r, segs[2])
	}

	res := segs[0]
	if res == string(model.StreamRoutes) && !cfg.StreamEnabled {
		return reply{}, errMsg(http.StatusBadRequest, "stream mode is disabled, can not add stream routes")
	}
	kind, isObject := objectKinds[res]
	switch {
	case res == "plugins":
		if r.Method != http.MethodGet {
			return reply{}, errMsg(http.StatusNotFound, "not found")
		}
	case !isObject:
		return reply{}, errMsg(http.StatusNotFound, "Unsupported resource type: "+res)
	}

	if cfg.ReadOnly != "" && isObject && r.Method != http.MethodGet {
		return reply{}, errMsg(http.StatusMethodNotAllowed, cfg.ReadOnly)
	}
	if r.Method != http.MethodGet {
		release, busy := h.State.acquireWrite()
		if busy != nil {
			return reply{}, busy
		}
		defer release()
	}
	body, hasBody, aerr := readBody(r)
	if aerr != nil {
		return reply{}, aerr
	}
	if ttl, ok := query["ttl"]; ok {
		// ttl puts an etcd lease on the object (the embedded store has
		// no leases: there objects never expire).
		if _, num := lua.ToNumber(ttl[0]); !num {
			return reply{}, errMsg(http.StatusBadRequest, "invalid argument ttl: should be a number")
		}
	}

	var id string
	var sub []string
	if len(segs) > 1 {
		id = segs[1]
	}
	for _, s := range segs[min(len(segs), 2):] {
		if s != "" { // a trailing or doubled slash names nothing
			sub = append(sub, s)
		}
	}
	if res == "plugins" {
		return pluginSchema(id, query)
	}

	q := &request{cfg: cfg, kind: kind, id: id, subPath: sub, body: body, hasBody: hasBody, query: query}
	if kind == model.PluginMetadata {
		switch r.Method {
		case http.MethodPost, http.MethodPatch:
			return reply{}, errMsg(http.StatusMethodNotAllowed,
				"not supported `"+r.Method+"` method for "+kind.Noun())
		case http.MethodPut:
			return h.putMetadata(q)
		}
	}
	switch r.Method {
	case http.MethodGet:
		if id == "" {
			return h.list(q)
		}
		return h.get(q)
	case http.MethodPut:
		return h.put(q)
	case http.MethodPost:
		return h.post(q)
	case http.MethodDelete:
		return h.del(q)
	default:
		return h.patch(q)
	}
}

// fail maps an error to APISIX's answer: storage failures are 503, writes
// to static objects and changes the data path rejects are 400.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var aerr *apiError
	switch {
	case errors.As(err, &aerr):
	case errors.Is(err, registry.ErrChanged):
		aerr = errMsg(http.StatusServiceUnavailable, registry.ErrChanged.Error())
	case errors.Is(err, registry.ErrPersist):
		aerr = errMsg(http.StatusServiceUnavailable, err.Error())
		if h.Logger != nil {
			h.Logger.Error("admin api storage failure",
				zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
		}
	default:
		// ErrStatic (caught earlier with a better text) or the compile
		// hook refusing the new state: nothing was changed.
		aerr = errMsg(http.StatusBadRequest, err.Error())
	}
	if h.Logger != nil && aerr.status != http.StatusServiceUnavailable {
		h.Logger.Debug("admin api request rejected",
			zap.String("method", r.Method), zap.String("path", r.URL.Path),
			zap.Int("status", aerr.status)) // the text may quote a secret
	}
	writeError(w, aerr)
}

// clock is the current epoch second, typed as decoded JSON numbers are
// (the model checks take json.Number).
func (h *Handler) clock() json.Number {
	now := time.Now
	if h.now != nil {
		now = h.now
	}
	return json.Number(strconv.FormatInt(now().Unix(), 10))
}
