package standalone

import (
	"strings"
	"testing"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

const upstreamYAML = `upstreams:
  - id: u1
    type: roundrobin
    nodes:
      "127.0.0.1:1980": 1
stream_routes:
  - id: r1
    server_port: ${{PORT:=9100}}
    upstream_id: u1
#END
`

func TestParseAndCheck(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		format  Format
		env     map[string]string
		objects int
		err     string // substring of the first error, "" for none
	}{
		{name: "yaml default var", data: upstreamYAML, format: YAML, objects: 2},
		{name: "yaml var set", data: upstreamYAML, format: YAML, env: map[string]string{"PORT": "9101"}, objects: 2},
		{name: "yaml without end flag", data: strings.TrimSuffix(upstreamYAML, "#END\n"), format: YAML,
			err: "missing valid end flag"},
		{name: "unset var", data: "stream_routes:\n  - server_port: ${{NOPE}}\n#END", format: YAML,
			err: "failed to handle configuration: can't find environment variable NOPE"},
		{name: "json var typed", data: `{"upstreams":[{"id":"u","nodes":{"127.0.0.1:1":1}}],` +
			`"stream_routes":[{"id":1,"server_port":"${{PORT}}","upstream_id":"u"}]}`,
			format: JSON, env: map[string]string{"PORT": "9100"}, objects: 2},
		{name: "bad route names its index", data: `{"stream_routes":[{"id":1},{"id":2,"server_port":"x"}]}`,
			format: JSON, err: "invalid stream_routes[1]: invalid configuration: property \"server_port\" validation failed"},
		{name: "dangling upstream", data: `{"stream_routes":[{"id":1,"upstream_id":"nope"}]}`, format: JSON,
			err: "invalid stream_routes[0]: failed to fetch upstream info by upstream id [nope], response code: 404"},
		{name: "duplicate id", data: `{"stream_routes":[{"id":1},{"id":1}]}`, format: JSON,
			err: "invalid stream_routes[1]: found duplicate id 1 in stream_routes"},
		{name: "http only", data: `{"routes":[{"id":1,"uri":"/"}]}`, format: JSON,
			err: "invalid routes[0]: this gateway serves stream routes only: routes are not supported"},
		{name: "empty http collections", data: `{"routes":[],"consumers":{},"stream_routes":[{"id":1}]}`, format: JSON, objects: 1},
		{name: "bad version", data: `{"stream_routes_conf_version":"x"}`, format: JSON,
			err: "stream_routes_conf_version must be a number, got string"},
		{name: "modifiedIndex", data: `{"stream_routes":[{"id":1,"modifiedIndex":17}]}`, format: JSON, objects: 1},
		{name: "bad modifiedIndex", data: `{"stream_routes":[{"id":1,"modifiedIndex":"x"}]}`, format: JSON,
			err: `property "modifiedIndex" validation failed`},
		{name: "yaml anchors and merge", format: YAML, objects: 2, data: `base: &b
  type: roundrobin
  nodes: {"127.0.0.1:1": 1}
upstreams:
  - <<: *b
    id: a
  - <<: *b
    id: b
#END`},
		{name: "yaml not a mapping", data: "- 1\n#END", format: YAML, err: "not a mapping"},
		{name: "json not an object", data: `[1]`, format: JSON, err: "not an object"},
		{name: "json trailing", data: `{} {}`, format: JSON, err: "trailing data"},
		{name: "the README example", format: YAML, objects: 2, data: `upstreams:
  - id: mysql
    type: roundrobin
    nodes:
      "${{MYSQL_HOST:=127.0.0.1}}:3306": 1
stream_routes:
  - id: mysql
    server_port: 9100
    upstream_id: mysql
#END
`},
		{name: "id-less route", data: `{"stream_routes":[{"server_port":1}]}`, format: JSON, objects: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := Parse([]byte(tc.data), tc.format, env(tc.env))
			var msg string
			var n int
			if err != nil {
				msg = err.Error()
			} else if c, errs := Check(doc); len(errs) > 0 {
				msg = errs[0].Message()
			} else {
				n = len(c.Objects)
			}
			if tc.err == "" && msg != "" {
				t.Fatalf("unexpected error %q", msg)
			}
			if !strings.Contains(msg, tc.err) {
				t.Fatalf("error %q, want it to contain %q", msg, tc.err)
			}
			if n != tc.objects {
				t.Fatalf("%d objects, want %d", n, tc.objects)
			}
		})
	}
}

func TestSubstitute(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{in: "a ${{X}} b", want: "a x b"},
		{in: "${{ X }}", want: "x"},
		{in: "${{Y:=  d  }}", want: "d"},
		{in: "${{X:=d}}", want: "x"},
		{in: "${{E}}", want: ""},
		{in: "${{Y}}", err: "can't find environment variable Y"},
		{in: "$X ${X} plain", want: "$X ${X} plain"},
	}
	for _, tc := range tests {
		got, _, err := substitute(tc.in, env(map[string]string{"X": "x", "E": ""}))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: got %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(upstreamYAML), true)
	f.Add([]byte(`{"stream_routes":[{"id":1,"server_port":"${{P:=1}}"}]}`), false)
	f.Add([]byte("a: &a [*a]\n#END"), true)
	f.Fuzz(func(t *testing.T, data []byte, yaml bool) {
		format := JSON
		if yaml {
			format = YAML
		}
		doc, err := Parse(data, format, env(nil))
		if err != nil {
			return
		}
		if c, errs := Check(doc); len(errs) == 0 {
			for _, o := range c.Objects {
				if o.ID == "" || len(o.Value) == 0 {
					t.Fatalf("object without id or value: %+v", o)
				}
			}
		}
	})
}
