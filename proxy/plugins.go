package proxy

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"go.uber.org/zap"

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
			// only a stored value read from etcd names one (the Admin API
			// rejects it): APISIX runs the plugins its node has and skips
			// the others (apisix/plugin.lua stream_plugin_checker, filter)
			continue
		}
		units = append(units, u)
	}
	sort.Slice(units, func(i, j int) bool { return units[i].Priority > units[j].Priority })
	// inline collects the upstreams the instance being built compiles
	var inline []*Upstream
	env := &plugin.Env{
		RouteID: r.ID, ServiceID: r.ServiceID, Logger: c.logger, Shared: c.shared,
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
			cu, err := c.upstream("stream_routes/"+r.ID+"/"+key, u, raw)
			if err == nil {
				inline = append(inline, cu)
			}
			return cu, err
		},
	}
	for _, u := range units {
		raw := confs[u.Name]
		key := "stream_routes/" + r.ID + "/" + u.Name + "/" + string(raw)
		bp, ok := c.prevPlugins[key]
		if ok {
			// the instance holds its inline upstreams: they stay in
			// the runtime's set, so that the instance built when this
			// configuration changes finds them with their balancer
			// state
			for _, cu := range bp.inline {
				c.next[cu.key] = cu
			}
		} else {
			inline = nil
			p, err := u.New(raw, env)
			if err != nil {
				return fmt.Errorf("plugin %s: %w", u.Name, err)
			}
			bp = builtPlugin{inst: p, inline: inline}
		}
		for _, cu := range bp.inline {
			r.ownUpstreams = append(r.ownUpstreams, cu.key)
		}
		r.reaches = append(r.reaches, bp.inline...)
		if ref, ok := bp.inst.(plugin.UpstreamReferrer); ok {
			r.reachIDs = append(r.reachIDs, ref.UpstreamIDs()...)
		}
		c.nextPlugins[key] = bp
		r.ownPlugins = append(r.ownPlugins, key)
		p := bp.inst
		if pm, ok := p.(*plugin.Prometheus); ok && pm.PreferName && name != "" {
			if strings.HasPrefix(name, StaticPrefix) {
				// the label space of layer4.handlers.apisix_proxy
				// handlers: labelled by the route id instead
				c.logger.Warn("prometheus prefer_name: the route's name starts with "+StaticPrefix+", which labels layer4.handlers.apisix_proxy handlers; its series are labelled by the route id",
					zap.String("route", r.ID), zap.String("name", name))
			} else {
				r.metrics = c.metrics.route(name)
			}
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

// builtPlugin is a plugin instance and the inline upstreams it compiled
// (traffic-split's), kept together across snapshots.
type builtPlugin struct {
	inst   any
	inline []*Upstream
}
