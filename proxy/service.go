package proxy

import (
	"encoding/json"
	"fmt"

	"github.com/caddy-apisix/stream/model"
)

// compiledService is a service as the stream routes that name it use it.
type compiledService struct {
	sv *model.Service
	// upstream is the compiled inline upstream, nil when it has none. It is
	// shared by every route that takes it, under the key "services/<id>",
	// so its balancer and health state survive unrelated changes.
	upstream *Upstream
}

// serviceTable is a snapshot's services by id.
type serviceTable map[string]*compiledService

// services compiles the view's services. A route's compiled form depends
// on its service's value through the merge below: the merged plugins are
// cached by their conf, the service's inline upstream by its JSON, so a
// changed service rebuilds exactly what changed in the routes using it.
func (c *compiler) services() (serviceTable, error) {
	objs := c.view.List(model.Services)
	if len(objs) == 0 {
		return nil, nil
	}
	out := make(serviceTable, len(objs))
	for _, o := range objs {
		sv, err := model.ParseService(o.Value)
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", o.ID, err)
		}
		cs := &compiledService{sv: sv}
		if sv.Upstream != nil {
			raw, _ := json.Marshal(sv.Upstream)
			if cs.upstream, err = c.upstream("services/"+o.ID, sv.Upstream, raw); err != nil {
				return nil, err
			}
		}
		out[o.ID] = cs
	}
	return out, nil
}

// merge is model.EffectiveRoute with the service looked up: eff is the
// route sessions run with; svcUp is the service's compiled inline
// upstream when the merge took it, else nil. ok is false when the route
// names a service that does not exist (it was force-deleted): APISIX
// closes such sessions ("failed to fetch service configuration by id").
func (t serviceTable) merge(sr *model.StreamRoute) (eff *model.StreamRoute, svcUp *Upstream, ok bool) {
	if sr.ServiceID == "" || sr.UpstreamID != "" {
		return sr, nil, true
	}
	cs := t[string(sr.ServiceID)]
	if cs == nil {
		return nil, nil, false
	}
	eff, _ = model.EffectiveRoute(sr, cs.sv)
	if sr.Upstream == nil && cs.sv.Upstream != nil {
		svcUp = cs.upstream
	}
	return eff, svcUp, true
}
