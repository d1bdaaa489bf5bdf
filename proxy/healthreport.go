package proxy

import (
	"sort"
	"strings"

	"github.com/caddy-apisix/stream/health"
)

// HealthReport is one upstream's health, in the shape of APISIX's control
// API (GET /v1/healthcheck/stream_routes/1).
type HealthReport struct {
	// Name is the object the upstream belongs to: /apisix/upstreams/<id>
	// or /apisix/stream_routes/<id> for an inline upstream.
	Name  string              `json:"name"`
	Nodes []health.NodeStatus `json:"nodes"`
	Type  string              `json:"type"`
}

func (u *Upstream) report(name string) *HealthReport {
	if u == nil || u.checker == nil {
		return nil
	}
	return &HealthReport{Name: name, Nodes: u.checker.Status(), Type: u.checker.Type()}
}

// Health returns the health of the upstream of a stream route
// ("stream_routes", id) or of an upstream object ("upstreams", id), or nil
// when it has no health checks.
func (rt *Runtime) Health(kind, id string) *HealthReport {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	switch kind {
	case "upstreams":
		return rt.upstreams["upstreams/"+id].report("/apisix/upstreams/" + id)
	case "stream_routes":
		if u := rt.upstreams["stream_routes/"+id]; u != nil {
			return u.report("/apisix/stream_routes/" + id)
		}
		if e := rt.snap.Load().table.Get(id); e != nil {
			return e.Target.Upstream.report("/apisix/stream_routes/" + id)
		}
	}
	return nil
}

// AllHealth lists every checked upstream, sorted by name.
func (rt *Runtime) AllHealth() []*HealthReport {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	var out []*HealthReport
	for key, u := range rt.upstreams {
		if r := u.report("/apisix/" + key); r != nil {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return strings.Compare(out[i].Name, out[j].Name) < 0 })
	return out
}
