package plugin

import (
	"encoding/json"
	"net/netip"

	"github.com/caddy-apisix/stream/model"
)

// ipDef is APISIX's core.schema.ip_def.
const ipDef = `[{"title":"IPv4","type":"string","format":"ipv4"},` +
	`{"title":"IPv4/CIDR","type":"string","pattern":"^([0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])\\.([0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])\\.([0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])\\.([0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])/([12]?[0-9]|3[0-2])$"},` +
	`{"title":"IPv6","type":"string","format":"ipv6"},` +
	`{"title":"IPv6/CIDR","type":"string","pattern":"^([a-fA-F0-9]{0,4}:){1,8}(:[a-fA-F0-9]{0,4}){0,8}([a-fA-F0-9]{0,4})?/[0-9]{1,3}$"}]`

// ip-restriction (apisix/stream/plugins/ip-restriction.lua, the shared
// apisix/plugins/ip-restriction/init.lua): a whitelist or a blacklist of
// IPs and CIDRs checked against $remote_addr. message and response_code
// are accepted but unused in stream: a blocked session is closed.
func init() {
	Register(Unit{
		Name:     "ip-restriction",
		Priority: 3000,
		Schema: `{"type":"object","properties":{` +
			`"message":{"type":"string","minLength":1,"maxLength":1024,"default":"Your IP address is not allowed"},` +
			`"response_code":{"type":"integer","minimum":403,"maximum":404,"default":403},` +
			`"whitelist":{"type":"array","items":{"anyOf":` + ipDef + `},"minItems":1},` +
			`"blacklist":{"type":"array","items":{"anyOf":` + ipDef + `},"minItems":1}},` +
			`"oneOf":[{"required":["whitelist"]},{"required":["blacklist"]}]}`,
		// the schema's patterns let some bad IPv6 forms through, so the
		// plugin parses every entry again
		Check: func(conf map[string]any) error {
			for _, list := range []string{"whitelist", "blacklist"} {
				arr, _ := conf[list].([]any)
				for _, item := range arr {
					s, _ := item.(string)
					if _, err := model.ParseCIDROrIP(s); err != nil {
						return err
					}
				}
			}
			return nil
		},
		New: newIPRestriction,
	})
}

type ipRestriction struct {
	allow    bool
	prefixes []netip.Prefix
}

func newIPRestriction(raw json.RawMessage, _ *Env) (any, error) {
	var conf struct {
		Whitelist []string `json:"whitelist"`
		Blacklist []string `json:"blacklist"`
	}
	if err := json.Unmarshal(raw, &conf); err != nil {
		return nil, err
	}
	p := &ipRestriction{allow: conf.Whitelist != nil}
	list := conf.Blacklist
	if p.allow {
		list = conf.Whitelist
	}
	for _, s := range list {
		pfx, err := model.ParseCIDROrIP(s)
		if err != nil {
			return nil, err
		}
		p.prefixes = append(p.prefixes, pfx)
	}
	return p, nil
}

func (p *ipRestriction) Preread(s *Session) error {
	ip := s.Remote.Addr().Unmap()
	hit := false
	for _, pfx := range p.prefixes {
		if pfx.Contains(ip) {
			hit = true
			break
		}
	}
	if hit != p.allow {
		return Close(403)
	}
	return nil
}

// Interface guards
var _ Prereader = (*ipRestriction)(nil)
