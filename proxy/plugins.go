package proxy

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/plugin"
)

// buildPlugins compiles a route's plugins (name is the route's name) (its own, or merged with its
// service's) into r's phases, highest priority first. Confs with
// _meta.disable are skipped. Instances are shared across snapshots while
// the route's conf of the plugin is unchanged (limit-conn's counts).
func (c *compiler) buildPlugins(r *Route, name string, snap *Snapshot, confs map[string]json.RawMessage) error {
	units := make([]*plugin.Unit, 0, len(confs))
	for name, raw := range confs {
		if plugin.Disabled(raw) || (c.enabled != nil && !c.enabled[name]) {
			continue
		}
		u, ok := plugin.Lookup(name)
		if !ok {
			return fmt.Errorf("unknown plugin [%s]", name)
		}
		units = append(units, u)
	}
	sort.Slice(units, func(i, j int) bool { return units[i].Priority > units[j].Priority })
	env := &plugin.Env{
		RouteID: r.ID, ServiceID: r.ServiceID, Logger: c.logger,
		// resolved per session in the snapshot then current: an
		// instance outlives the snapshot it was built in
		Upstream: func(id string) plugin.Upstream {
			cur := snap
			if c.live != nil {
				cur = c.live()
			}
			if u := cur.upstreams[id]; u != nil {
				return u
			}
			return nil
		},
		InlineUpstream: func(key string, raw json.RawMessage) (plugin.Upstream, error) {
			u, err := model.ParseUpstream(raw)
			if err != nil {
				return nil, err
			}
			r.ownUpstreams = append(r.ownUpstreams, "stream_routes/"+r.ID+"/"+key)
			return c.upstream("stream_routes/"+r.ID+"/"+key, u, raw)
		},
	}
	for _, u := range units {
		raw := confs[u.Name]
		key := "stream_routes/" + r.ID + "/" + u.Name + "/" + string(raw)
		p, ok := c.prevPlugins[key]
		if !ok {
			var err error
			if p, err = u.New(raw, env); err != nil {
				return fmt.Errorf("plugin %s: %v", u.Name, err)
			}
		}
		c.nextPlugins[key] = p
		r.ownPlugins = append(r.ownPlugins, key)
		if pm, ok := p.(*plugin.Prometheus); ok && pm.PreferName && name != "" {
			r.metrics = Collectors.route(name)
		}
		if pr, ok := p.(plugin.Prereader); ok {
			r.prereaders = append(r.prereaders, pr)
		}
		if ch, ok := p.(plugin.UpstreamChooser); ok {
			r.choosers = append(r.choosers, ch)
		}
		if l, ok := p.(plugin.LogPhaser); ok {
			r.loggers = append(r.loggers, l)
		}
	}
	return nil
}
