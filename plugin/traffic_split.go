package plugin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"

	"go.uber.org/zap"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/vars"
)

// idSchema is APISIX's schema_def.id_schema.
const idSchema = `{"anyOf":[{"type":"string","minLength":1,"maxLength":64,"pattern":"^[a-zA-Z0-9-_.]+$"},{"type":"integer","minimum":1}]}`

// traffic-split (apisix/stream/plugins/traffic-split.lua, which runs
// apisix/plugins/traffic-split.lua's access in preread): rules in order;
// the first rule without match, or whose match (OR of lua-resty-expr
// vars expressions) holds, picks one of its weighted_upstreams by smooth
// weighted round-robin. An entry with only a weight is the route's own
// upstream; upstream_id names an upstream object; upstream is an inline
// upstream, of which only name, type, hash_on, pass_host, upstream_host,
// key, nodes, timeout and scheme are kept (tls, retries, checks and
// keepalive are dropped, as APISIX does).
func init() {
	Register(Unit{
		Name:     "traffic-split",
		Priority: 966,
		Schema: `{"type":"object","properties":{"rules":{"type":"array","items":{"type":"object","properties":{` +
			`"match":{"type":"array","items":{"type":"object","properties":{"vars":{"type":"array"}}}},` +
			`"weighted_upstreams":{"type":"array","minItems":1,"maxItems":20,"default":[{"weight":1}],"items":{"type":"object","properties":{` +
			`"upstream_id":` + idSchema + `,` +
			`"upstream":{"type":"object"},` +
			`"weight":{"type":"integer","minimum":0,"default":1}}}}}}}}}`,
		Check: checkTrafficSplit,
		New:   newTrafficSplit,
	})
}

// checkTrafficSplit checks what the schema above leaves to APISIX's
// nested schema_def.upstream and to expr.new.
func checkTrafficSplit(conf map[string]any) error {
	rules, _ := conf["rules"].([]any)
	for i, r := range rules {
		rule, _ := r.(map[string]any)
		matches, _ := rule["match"].([]any)
		for _, m := range matches {
			mm, _ := m.(map[string]any)
			if v, ok := mm["vars"]; ok {
				if _, err := vars.CompileExpr(v); err != nil {
					return fmt.Errorf("failed to validate the 'vars' expression: %w", err)
				}
			}
		}
		ups, _ := rule["weighted_upstreams"].([]any)
		for j, w := range ups {
			wu, _ := w.(map[string]any)
			if up, ok := wu["upstream"]; ok {
				if err := model.CheckUpstreamSchema(up); err != nil {
					return fmt.Errorf(`property "rules" validation failed: failed to validate item %d: property "weighted_upstreams" validation failed: failed to validate item %d: property "upstream" validation failed: %w`, i+1, j+1, err)
				}
			}
		}
	}
	return nil
}

type trafficSplit struct {
	env   *Env
	rules []*splitRule
}

type splitRule struct {
	// match is nil for a rule that always applies; otherwise any one
	// expression must hold
	match []*vars.Expr
	ids   []string // the rule's upstream_ids, checked before its match
	mu    sync.Mutex
	wrr   []wrrEntry
	total int
}

// wrrEntry is one weighted upstream: the route's own (all nil), an
// upstream object (id) or an inline upstream (up).
type wrrEntry struct {
	weight, current int
	id              string
	up              Upstream
}

// inlineFields are the fields of an inline upstream that APISIX copies
// into the upstream it builds (traffic-split.lua parse_domain_for_node /
// set_upstream).
var inlineFields = []string{"name", "type", "hash_on", "pass_host", "upstream_host", "key", "nodes", "timeout", "scheme"}

func newTrafficSplit(raw json.RawMessage, env *Env) (any, error) {
	var conf struct {
		Rules []struct {
			Match []struct {
				Vars json.RawMessage `json:"vars"`
			} `json:"match"`
			WeightedUpstreams []struct {
				UpstreamID json.RawMessage            `json:"upstream_id"`
				Upstream   map[string]json.RawMessage `json:"upstream"`
				Weight     *int                       `json:"weight"`
			} `json:"weighted_upstreams"`
		} `json:"rules"`
	}
	if err := json.Unmarshal(raw, &conf); err != nil {
		return nil, err
	}
	if env.Logger == nil {
		env.Logger = zap.NewNop()
	}
	p := &trafficSplit{env: env}
	for i, r := range conf.Rules {
		rule := &splitRule{}
		for _, m := range r.Match {
			var v any
			dec := json.NewDecoder(bytes.NewReader(m.Vars))
			dec.UseNumber()
			if len(m.Vars) > 0 {
				if err := dec.Decode(&v); err != nil {
					return nil, err
				}
			} else {
				v = []any{}
			}
			e, err := vars.CompileExpr(v)
			if err != nil {
				return nil, fmt.Errorf("failed to validate the 'vars' expression: %w", err)
			}
			rule.match = append(rule.match, e)
		}
		ups := r.WeightedUpstreams
		if len(ups) == 0 {
			rule.wrr = []wrrEntry{{weight: 1}}
		}
		for j, w := range ups {
			e := wrrEntry{weight: 1}
			if w.Weight != nil {
				e.weight = *w.Weight
			}
			switch {
			case len(w.UpstreamID) > 0 && string(w.UpstreamID) != "null":
				var id any
				_ = json.Unmarshal(w.UpstreamID, &id)
				e.id = model.IDString(id)
				rule.ids = append(rule.ids, e.id)
			case w.Upstream != nil:
				kept := map[string]json.RawMessage{}
				for _, f := range inlineFields {
					if v, ok := w.Upstream[f]; ok {
						kept[f] = v
					}
				}
				b, _ := json.Marshal(kept)
				up, err := env.InlineUpstream(fmt.Sprintf("traffic-split/%d/%d", i, j), b)
				if err != nil {
					return nil, err
				}
				e.up = up
			}
			rule.wrr = append(rule.wrr, e)
			rule.total += e.weight
		}
		p.rules = append(p.rules, rule)
	}
	return p, nil
}

// ChooseUpstream picks the session's upstream: nil for the route's own.
func (p *trafficSplit) ChooseUpstream(s *Session) (Upstream, error) {
	for _, r := range p.rules {
		for _, id := range r.ids {
			if p.env.Upstream(id) == nil {
				p.env.Logger.Error("failed to fetch upstream info by upstream id: " + id)
				return nil, Close(500)
			}
		}
		if !r.matches(&s.Set) {
			continue
		}
		e := r.pick()
		switch {
		case e == nil:
			return nil, nil
		case e.id != "":
			return p.env.Upstream(e.id), nil
		}
		return e.up, nil
	}
	return nil, nil
}

// UpstreamIDs are the upstream objects the rules may pick.
func (p *trafficSplit) UpstreamIDs() []string {
	var ids []string
	for _, r := range p.rules {
		ids = append(ids, r.ids...)
	}
	return ids
}

func (r *splitRule) matches(s *vars.Set) bool {
	if r.match == nil {
		return true
	}
	for _, e := range r.match {
		if e.Eval(s) {
			return true
		}
	}
	return false
}

// pick is one smooth weighted round-robin step (nginx's): every entry
// gains its weight, the largest wins and loses the total. Over any
// total-weight picks each entry is chosen exactly weight times.
func (r *splitRule) pick() *wrrEntry {
	if r.total <= 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var best *wrrEntry
	for i := range r.wrr {
		e := &r.wrr[i]
		if e.weight == 0 {
			continue
		}
		e.current += e.weight
		if best == nil || e.current > best.current {
			best = e
		}
	}
	best.current -= r.total
	return best
}

// Interface guards
var (
	_ UpstreamChooser  = (*trafficSplit)(nil)
	_ UpstreamReferrer = (*trafficSplit)(nil)
)
