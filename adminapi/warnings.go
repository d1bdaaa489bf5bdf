package adminapi

import (
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"
	"github.com/caddy-apisix/stream/router"
)

// WarningHeader carries one warning per value on a stream route write that
// APISIX accepts but that will not do what its writer likely wants: the
// route is shadowed by another on every connection it could match, or no
// listener can ever hand it a connection. Status and body stay APISIX's.
const WarningHeader = "X-APISIX-Warning"

// RouteWarnings returns the warnings for the stream route id in the view:
// who shadows it, whom it shadows, and why it can match nothing. Routes
// that fail to parse are skipped (the data path refuses them anyway).
func RouteWarnings(v registry.View, cfg *Config, id string) []string {
	routes, at := matchRoutes(v, id)
	if at < 0 {
		return nil
	}
	var out []string
	me := routes[at]
	out = append(out, ownWarnings(routes, at, cfg)...)
	var victims []string
	for i, r := range routes {
		if i != at && router.Shadower(routes, i, cfg.FallbackSNI) == me {
			victims = append(victims, r.ID)
		}
	}
	if len(victims) > 0 {
		out = append(out, "stream route "+id+" shadows stream route(s) "+strings.Join(victims, ", ")+
			" on every connection they could match: they never match")
	}
	return out
}

// AllRouteWarnings returns the warnings about each stream route itself
// (shadowed, can never match), in match order.
func AllRouteWarnings(v registry.View, cfg *Config) []string {
	routes, _ := matchRoutes(v, "")
	var out []string
	for i := range routes {
		out = append(out, ownWarnings(routes, i, cfg)...)
	}
	return out
}

// ownWarnings are the warnings about routes[at] itself.
func ownWarnings(routes []*router.Route, at int, cfg *Config) []string {
	var out []string
	me := routes[at]
	if by := router.Shadower(routes, at, cfg.FallbackSNI); by != nil {
		out = append(out, "stream route "+me.ID+" is shadowed by stream route "+by.ID+
			" on every connection it could match: it never matches")
	}
	if cfg.Listeners != nil {
		if why := router.Unreachable(me, cfg.Listeners, cfg.LocalNets, cfg.FallbackSNI); why != "" {
			out = append(out, "stream route "+me.ID+" can never match: "+why)
		}
	}
	return out
}

// matchRoutes returns the stream routes in match order, and the position
// of id among them (-1 when absent).
func matchRoutes(v registry.View, id string) ([]*router.Route, int) {
	var routes []*router.Route
	at := -1
	for _, o := range v.List(model.StreamRoutes) {
		sr, err := model.ParseStreamRoute(o.Value)
		if err != nil {
			continue
		}
		r, sub, err := router.FiltersOf(o.ID, sr)
		if err != nil || sub {
			continue
		}
		if id != "" && o.ID == id {
			at = len(routes)
		}
		routes = append(routes, &r)
	}
	return routes, at
}

// warnOnWrite adds the warnings of a successful stream route write to the
// answer and logs them. A GET of the stream route list carries the
// warnings about every route (not logged): caddy apisix routes shows them.
func (h *Handler) warnOnWrite(w http.ResponseWriter, r *http.Request, cfg *Config, rep reply) {
	if r.Method == http.MethodGet && strings.TrimSuffix(r.URL.Path, "/") == PathPrefix+"/"+string(model.StreamRoutes) {
		h.Registry.View(func(v registry.View) {
			for _, msg := range AllRouteWarnings(v, cfg) {
				w.Header().Add(WarningHeader, msg)
			}
		})
		return
	}
	if r.Method != http.MethodPut && r.Method != http.MethodPost && r.Method != http.MethodPatch {
		return
	}
	vb, ok := rep.body.(valueBody)
	prefix := objectKey(cfg, model.StreamRoutes, "")
	if !ok || !strings.HasPrefix(vb.Key, prefix) {
		return
	}
	id := strings.TrimPrefix(vb.Key, prefix)
	var warnings []string
	h.Registry.View(func(v registry.View) { warnings = RouteWarnings(v, cfg, id) })
	for _, msg := range warnings {
		w.Header().Add(WarningHeader, msg)
		if h.Logger != nil {
			h.Logger.Warn(msg, zap.String("stream_route", id))
		}
	}
}
