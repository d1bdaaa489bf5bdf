package model

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"
)

func TestEffectiveRoute(t *testing.T) {
	svcUp := &Upstream{Nodes: Nodes{{Host: "127.0.0.1", Port: 2, Weight: 1}}}
	routeUp := &Upstream{Nodes: Nodes{{Host: "127.0.0.1", Port: 1, Weight: 1}}}
	svcPlugins := map[string]json.RawMessage{
		"ip-restriction": json.RawMessage(`{"whitelist":["10.0.0.1"]}`),
		"limit-conn":     json.RawMessage(`{"conn":1}`),
	}
	routePlugins := map[string]json.RawMessage{"ip-restriction": json.RawMessage(`{"blacklist":["10.0.0.2"]}`)}
	full := &Service{Upstream: svcUp, UpstreamID: "su", Plugins: svcPlugins}
	tests := []struct {
		name         string
		route        StreamRoute
		svc          *Service
		ok           bool
		upstream     *Upstream
		upstreamID   ID
		ipRestrict   string // the ip-restriction conf that wins
		pluginsNames []string
	}{
		{"no service", StreamRoute{Upstream: routeUp, Plugins: routePlugins}, nil, true, routeUp, "",
			`{"blacklist":["10.0.0.2"]}`, []string{"ip-restriction"}},
		{"route upstream_id ignores the service", StreamRoute{ServiceID: "s", UpstreamID: "ru"}, full, true, nil, "ru",
			"", nil},
		{"route upstream_id with a missing service", StreamRoute{ServiceID: "s", UpstreamID: "ru"}, nil, true, nil, "ru",
			"", nil},
		{"missing service", StreamRoute{ServiceID: "s"}, nil, false, nil, "", "", nil},
		{"route inline upstream wins, route plugin wins", StreamRoute{ServiceID: "s", Upstream: routeUp, Plugins: routePlugins},
			full, true, routeUp, "", `{"blacklist":["10.0.0.2"]}`, []string{"ip-restriction", "limit-conn"}},
		{"service inline upstream before its upstream_id", StreamRoute{ServiceID: "s"}, full, true, svcUp, "",
			`{"whitelist":["10.0.0.1"]}`, []string{"ip-restriction", "limit-conn"}},
		{"service upstream_id", StreamRoute{ServiceID: "s"}, &Service{UpstreamID: "su"}, true, nil, "su", "", nil},
		{"service without upstream", StreamRoute{ServiceID: "s", Plugins: routePlugins}, &Service{}, true, nil, "",
			`{"blacklist":["10.0.0.2"]}`, []string{"ip-restriction"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.route
			beforePlugins := maps.Clone(tc.route.Plugins)
			eff, ok := EffectiveRoute(&tc.route, tc.svc)
			if ok != tc.ok {
				t.Fatalf("ok = %v", ok)
			}
			if !ok {
				return
			}
			if eff.Upstream != tc.upstream || eff.UpstreamID != tc.upstreamID {
				t.Errorf("upstream %v / %q, want %v / %q", eff.Upstream, eff.UpstreamID, tc.upstream, tc.upstreamID)
			}
			if got := string(eff.Plugins["ip-restriction"]); got != tc.ipRestrict {
				t.Errorf("ip-restriction %s, want %s", got, tc.ipRestrict)
			}
			if names := slices.Sorted(maps.Keys(eff.Plugins)); !slices.Equal(names, tc.pluginsNames) {
				t.Errorf("plugins %v, want %v", names, tc.pluginsNames)
			}
			if eff.ServiceID != tc.route.ServiceID {
				t.Errorf("service_id %q lost", eff.ServiceID)
			}
			if tc.route.Upstream != before.Upstream || !maps.EqualFunc(tc.route.Plugins, beforePlugins,
				func(a, b json.RawMessage) bool { return string(a) == string(b) }) {
				t.Error("the route was modified")
			}
		})
	}
}

func TestParseService(t *testing.T) {
	s, err := ParseService([]byte(`{"id":1,"upstream":{"nodes":{"127.0.0.1:80":1}},"upstream_id":"u",` +
		`"plugins":{"limit-conn":{"conn":1}},"hosts":["a.test"],"enable_websocket":true,"create_time":1.0}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != "1" || s.UpstreamID != "u" || len(s.Upstream.Nodes) != 1 || string(s.Plugins["limit-conn"]) != `{"conn":1}` ||
		s.CreateTime != 1 {
		t.Fatalf("%+v", s)
	}
}
