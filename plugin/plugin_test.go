package plugin

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/model"
)

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// The error texts of bad confs, through a stream route as the Admin API
// checks them.
func TestConfErrors(t *testing.T) {
	tests := []struct{ name, plugins, want string }{
		{"ip-restriction ok", `{"ip-restriction":{"whitelist":["127.0.0.0/24","::1"]}}`, ""},
		{"ip-restriction none", `{"ip-restriction":{}}`, "failed to check the configuration of stream plugin [ip-restriction]: value should match only one schema, but matches none"},
		{"ip-restriction semantic", `{"ip-restriction":{"blacklist":["127.0.0.1",":/8"]}}`, "failed to check the configuration of stream plugin [ip-restriction]: invalid ip address: :/8"},
		{"limit-conn var_combination", `{"limit-conn":{"conn":1,"burst":0,"default_conn_delay":1,"key":"$remote_port $server_addr","key_type":"var_combination"}}`, ""},
		{"limit-conn key_type", `{"limit-conn":{"conn":1,"burst":0,"default_conn_delay":1,"key":"remote_addr","key_type":"x"}}`, `failed to check the configuration of stream plugin [limit-conn]: property "key_type" validation failed: matches none of the enum values`},
		{"disabled", `{"limit-conn":{"_meta":{"disable":true}},"traffic-split":{"_meta":{"disable":true},"rules":1}}`, ""},
		{"traffic-split ok", `{"traffic-split":{"rules":[{"match":[{"vars":[["route_id","==","3"]]}],"weighted_upstreams":[{"upstream":{"nodes":{"127.0.0.1:1":1},"type":"roundrobin"},"weight":9},{"weight":1}]}]}}`, ""},
		{"traffic-split weight", `{"traffic-split":{"rules":[{"weighted_upstreams":[{"weight":-1}]}]}}`, `failed to check the configuration of stream plugin [traffic-split]: property "rules" validation failed: failed to validate item 1: property "weighted_upstreams" validation failed: failed to validate item 1: property "weight" validation failed: expected -1 to be at least 0`},
		{"traffic-split too many", `{"traffic-split":{"rules":[{"weighted_upstreams":[` + strings.Repeat(`{"weight":1},`, 20) + `{"weight":1}]}]}}`, `failed to check the configuration of stream plugin [traffic-split]: property "rules" validation failed: failed to validate item 1: property "weighted_upstreams" validation failed: expect array to have at most 20 items`},
		{"traffic-split vars", `{"traffic-split":{"rules":[{"match":[{"vars":[["route_id","=~","3"]]}]}]}}`, `failed to check the configuration of stream plugin [traffic-split]: failed to validate the 'vars' expression: invalid operator '=~'`},
		{"traffic-split inline", `{"traffic-split":{"rules":[{"weighted_upstreams":[{"upstream":{"type":"roundrobin"}}]}]}}`, `failed to check the configuration of stream plugin [traffic-split]: property "rules" validation failed: failed to validate item 1: property "weighted_upstreams" validation failed: failed to validate item 1: property "upstream" validation failed: value should match only one schema, but matches none`},
		{"traffic-split id", `{"traffic-split":{"rules":[{"weighted_upstreams":[{"upstream_id":"a b"}]}]}}`, `failed to check the configuration of stream plugin [traffic-split]: property "rules" validation failed: failed to validate item 1: property "weighted_upstreams" validation failed: failed to validate item 1: property "upstream_id" validation failed: object matches none of the required`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := model.CheckStreamRoute(decode(t, `{"plugins":`+tt.plugins+`}`), model.Refs{})
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// fakeUpstream is a plugin.Upstream with a name.
type fakeUpstream string

func (fakeUpstream) StreamUpstream() {}

func testEnv(ups map[string]Upstream) *Env {
	return &Env{
		Upstream: func(id string) Upstream { return ups[id] },
		InlineUpstream: func(key string, raw json.RawMessage) (Upstream, error) {
			return fakeUpstream("inline:" + key + ":" + string(raw)), nil
		},
	}
}

func newUnit(t *testing.T, name, conf string, env *Env) any {
	t.Helper()
	u, ok := Lookup(name)
	if !ok {
		t.Fatalf("no unit %s", name)
	}
	p, err := u.New(json.RawMessage(conf), env)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func session(remote, local string) *Session {
	s := &Session{}
	s.Remote, s.Local = netip.MustParseAddrPort(remote), netip.MustParseAddrPort(local)
	return s
}

func TestTrafficSplitNineToOne(t *testing.T) {
	p := newUnit(t, "traffic-split", `{"rules":[{"weighted_upstreams":[
		{"upstream":{"nodes":{"127.0.0.1:1":1},"type":"roundrobin","retries":3,"tls":{"verify":true}},"weight":9},
		{"weight":1}]}]}`, testEnv(nil)).(UpstreamChooser)
	counts := map[string]int{}
	for range 3 {
		for range 10 {
			u, err := p.ChooseUpstream(session("127.0.0.1:1000", "127.0.0.1:9100"))
			if err != nil {
				t.Fatal(err)
			}
			name := "route"
			if u != nil {
				name = string(u.(fakeUpstream))
			}
			counts[name]++
		}
	}
	want := `inline:traffic-split/0/0:{"nodes":{"127.0.0.1:1":1},"type":"roundrobin"}`
	if counts[want] != 27 || counts["route"] != 3 || len(counts) != 2 {
		t.Fatalf("30 sessions: %v; want 27 on the inline upstream (retries and tls dropped) and 3 on the route's", counts)
	}
}

func TestTrafficSplitRules(t *testing.T) {
	ups := map[string]Upstream{"2": fakeUpstream("u2"), "3": fakeUpstream("u3")}
	p := newUnit(t, "traffic-split", `{"rules":[
		{"match":[{"vars":[["route_id","==","r3"]]},{"vars":[["remote_addr","ipmatch",["10.0.0.0/8"]]]}],"weighted_upstreams":[{"upstream_id":3}]},
		{"match":[{"vars":[["server_port",">=",9200],["server_port","<",9300]]}],"weighted_upstreams":[{"upstream_id":"2"}]}]}`,
		testEnv(ups)).(UpstreamChooser)
	tests := []struct {
		route, remote, local string
		want                 string
	}{
		{"r3", "127.0.0.1:1", "127.0.0.1:9100", "u3"},
		{"r1", "10.1.2.3:1", "127.0.0.1:9100", "u3"},
		{"r1", "127.0.0.1:1", "127.0.0.1:9250", "u2"},
		{"r1", "127.0.0.1:1", "127.0.0.1:9300", "route"},
	}
	for _, tt := range tests {
		s := session(tt.remote, tt.local)
		s.RouteID = tt.route
		u, err := p.ChooseUpstream(s)
		if err != nil {
			t.Fatal(err)
		}
		got := "route"
		if u != nil {
			got = string(u.(fakeUpstream))
		}
		if got != tt.want {
			t.Errorf("%+v: %s, want %s", tt, got, tt.want)
		}
	}
	// a missing upstream_id closes the session with 500
	delete(ups, "3")
	var exit *Exit
	if _, err := p.ChooseUpstream(session("127.0.0.1:1", "127.0.0.1:9100")); !errors.As(err, &exit) || exit.Code != 500 {
		t.Fatalf("missing upstream_id: %v, want status 500", err)
	}
}

func TestLimitConnKeys(t *testing.T) {
	tests := []struct {
		name, conf string
		// sessions: remote, local; want: admitted
		sessions [][2]string
		want     []bool
	}{
		{"remote_port server_addr", `{"conn":1,"burst":0,"default_conn_delay":0.01,"key":"$remote_port $server_addr","key_type":"var_combination"}`,
			[][2]string{{"127.0.0.1:1000", "127.0.0.2:9"}, {"127.0.0.9:1000", "127.0.0.2:8"}, {"127.0.0.1:1000", "127.0.0.3:9"}, {"127.0.0.1:1001", "127.0.0.2:9"}},
			[]bool{true, false, true, true}},
		{"server_port", `{"conn":1,"burst":1,"default_conn_delay":0.01,"key":"server_port"}`,
			[][2]string{{"127.0.0.1:1", "127.0.0.1:9"}, {"127.0.0.2:1", "127.0.0.1:9"}, {"127.0.0.3:1", "127.0.0.1:9"}},
			[]bool{true, true, false}},
		{"empty key falls back to remote_addr", `{"conn":1,"burst":0,"default_conn_delay":0.01,"key":"mqtt_client_id"}`,
			[][2]string{{"127.0.0.1:1", "127.0.0.1:9"}, {"127.0.0.1:2", "127.0.0.1:9"}, {"127.0.0.2:1", "127.0.0.1:9"}},
			[]bool{true, false, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newUnit(t, "limit-conn", tt.conf, &Env{}).(Prereader)
			var live []*Session
			for i, sv := range tt.sessions {
				s := session(sv[0], sv[1])
				err := p.Preread(s)
				if (err == nil) != tt.want[i] {
					t.Fatalf("session %d %v: %v, want admitted %v", i, sv, err, tt.want[i])
				}
				live = append(live, s)
			}
			for _, s := range live {
				s.RunEnds()
			}
			if n := len(p.(*limitConn).active); n != 0 {
				t.Fatalf("%d keys still counted after every session ended", n)
			}
		})
	}
}

// clientConn is a ClientReader over a buffer.
type clientConn struct{ r io.Reader }

func (c clientConn) Read(p []byte) (int, error)    { return c.r.Read(p) }
func (clientConn) SetReadDeadline(time.Time) error { return nil }

func TestReadClientCaptures(t *testing.T) {
	s := &Session{}
	s.BindClient(clientConn{bytes.NewReader([]byte("CONNECT rest"))}, nil)
	buf := make([]byte, 7)
	if _, err := io.ReadFull(readerFunc(s.ReadClient), buf); err != nil || string(buf) != "CONNECT" {
		t.Fatalf("read %q %v", buf, err)
	}
	if string(s.Captured()) != "CONNECT" {
		t.Fatalf("captured %q", s.Captured())
	}
	d := &Session{}
	d.BindClient(nil, []byte("dgram"))
	got, _ := io.ReadAll(readerFunc(d.ReadClient))
	if string(got) != "dgram" || len(d.Captured()) != 0 {
		t.Fatalf("datagram read %q, captured %q", got, d.Captured())
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
