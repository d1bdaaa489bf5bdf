package adminapi

import (
	"net/http"
	"strings"
	"sync"

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
func (s *State) RouteWarnings(v registry.View, cfg *Config, id string) []string {
	routes, at := s.filters.matchRoutes(v, id)
	if at < 0 {
		return nil
	}
	ix := router.NewShadowIndex(routes, cfg.FallbackSNI)
	out := ownWarnings(ix, routes, at, cfg)
	var victims []string
	for _, i := range ix.Victims(at) {
		victims = append(victims, routes[i].ID)
	}
	if len(victims) > 0 {
		out = append(out, "stream route "+id+" shadows stream route(s) "+strings.Join(victims, ", ")+
			" on every connection they could match: they never match")
	}
	return out
}

// AllRouteWarnings returns the warnings about each stream route itself
// (shadowed, can never match), in match order; none past
// listWarningLimit routes.
func (s *State) AllRouteWarnings(v registry.View, cfg *Config) []string {
	routes, _ := s.filters.matchRoutes(v, "")
	if len(routes) > listWarningLimit {
		return nil
	}
	ix := router.NewShadowIndex(routes, cfg.FallbackSNI)
	var out []string
	for i := range routes {
		out = append(out, ownWarnings(ix, routes, i, cfg)...)
	}
	return out
}

// ownWarnings are the warnings about routes[at] itself.
func ownWarnings(ix *router.ShadowIndex, routes []*router.Route, at int, cfg *Config) []string {
	var out []string
	me := routes[at]
	if by := ix.Shadower(at); by != nil {
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

// listWarningLimit bounds the routes a GET of the list analyses: every
// route against every other that may cover it is quadratic in the worst
// case (many routes without a port filter).
const listWarningLimit = 2000

// filterCache keeps the parsed filters of the stored objects between
// calls (objects are immutable: a write makes a new one), so that a write
// with many routes present parses one route, not all of them.
type filterCache struct {
	sync.Mutex
	m map[*registry.Object]*router.Route // nil value: not matchable
}

// matchRoutes returns the stream routes in match order, and the position
// of id among them (-1 when absent).
func (c *filterCache) matchRoutes(v registry.View, id string) ([]*router.Route, int) {
	c.Lock()
	defer c.Unlock()
	objs := v.List(model.StreamRoutes)
	m := c.m
	if m == nil || len(m) > 2*len(objs)+64 {
		// drop the replaced objects now and then, not on every call
		// (a write with 10,000 routes stored would copy them all)
		prev := m
		m = make(map[*registry.Object]*router.Route, len(objs))
		for _, o := range objs {
			if r, ok := prev[o]; ok {
				m[o] = r
			}
		}
		c.m = m
	}
	routes := make([]*router.Route, 0, len(objs))
	at := -1
	for _, o := range objs {
		r, cached := m[o]
		if !cached {
			r = parseFilters(o)
			m[o] = r
		}
		if r == nil {
			continue
		}
		if id != "" && o.ID == id {
			at = len(routes)
		}
		routes = append(routes, r)
	}
	return routes, at
}

// parseFilters returns the filters of a stream route object, or nil for
// one that never matches at entry (unparsable, or a subordinate xRPC route).
func parseFilters(o *registry.Object) *router.Route {
	sr, err := model.ParseStreamRoute(o.Value)
	if err != nil {
		return nil
	}
	r, sub, err := router.FiltersOf(o.ID, sr)
	if err != nil || sub {
		return nil
	}
	return &r
}

// warnOnWrite adds the warnings of a successful stream route write to the
// answer and logs them. A GET of the stream route list carries the
// warnings about every route (not logged): caddy apisix routes shows them.
func (h *Handler) warnOnWrite(w http.ResponseWriter, r *http.Request, cfg *Config, rep reply) {
	if r.Method == http.MethodGet && strings.TrimSuffix(r.URL.Path, "/") == PathPrefix+"/"+string(model.StreamRoutes) {
		h.Registry.View(func(v registry.View) {
			for _, msg := range h.State.AllRouteWarnings(v, cfg) {
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
	h.Registry.View(func(v registry.View) { warnings = h.State.RouteWarnings(v, cfg, id) })
	for _, msg := range warnings {
		w.Header().Add(WarningHeader, msg)
		if h.Logger != nil {
			h.Logger.Warn(msg, zap.String("stream_route", id))
		}
	}
}
