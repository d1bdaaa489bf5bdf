package vars

import (
	"fmt"
	"net/netip"
	"testing"
)

func TestParseTemplate(t *testing.T) {
	tests := []struct {
		tpl  string
		want string
	}{
		{"$remote_addr$server_port", "[v1remote_addr v4server_port]"},
		{"${remote_addr}-${server_port}", "[v1remote_addr L- v4server_port]"},
		{"id:$mqtt_client_id", "[Lid: v0mqtt_client_id]"},
		{"$arg_x", "[v9arg_x]"},
		{"plain", "[Lplain]"},
		{"", "[]"},
		{"$", "[L$]"},
		{"${", "[L${]"},
		{"${}x", "[L${}x]"},
		{"${a", "[L${a]"},
		{`\$remote_addr`, `[L\$remote_addr]`},
		{"$$server_name", "[L$ v5server_name]"},
		{"a$-b", "[La$-b]"},
		{"$route_id/$service_id", "[v6route_id L/ v7service_id]"},
	}
	for _, tt := range tests {
		var parts []string
		for _, s := range ParseTemplate(tt.tpl).segs {
			if !s.isVar {
				parts = append(parts, "L"+s.lit)
			} else {
				parts = append(parts, fmt.Sprintf("v%d%s", s.v.Kind, s.v.Name))
			}
		}
		if got := fmt.Sprint(parts); got != tt.want {
			t.Errorf("ParseTemplate(%q) = %s, want %s", tt.tpl, got, tt.want)
		}
	}
}

func TestSetValues(t *testing.T) {
	s := &Set{
		Remote: netip.MustParseAddrPort("[::ffff:127.0.0.5]:40001"), Local: netip.MustParseAddrPort("[::1]:9100"),
		ServerName: "a.test", RouteID: "r1", ServiceID: "s1", Protocol: "TCP",
	}
	s.Put("mqtt_client_id", "c1")
	s.Put("mqtt_client_id", "c2")
	tests := []struct{ tpl, want string }{
		{"$remote_addr", "127.0.0.5"},
		{"$remote_port", "40001"},
		{"$server_addr", "::1"},
		{"$server_port", "9100"},
		{"$server_name", "a.test"},
		{"$route_id", "r1"},
		{"$service_id", "s1"},
		{"$protocol", "TCP"},
		{"$mqtt_client_id", "c2"},
		{"$arg_x", ""},
		{"$remote_port $server_addr", "40001 ::1"},
		{"${route_id}x", "r1x"},
		{"$nope", ""},
	}
	for _, tt := range tests {
		if got := ParseTemplate(tt.tpl).Render(s); got != tt.want {
			t.Errorf("%s = %q, want %q", tt.tpl, got, tt.want)
		}
	}
	if ParseTemplate("$nope$arg_x").Resolved(s) {
		t.Error("a template of unset variables resolved")
	}
	if (&Set{}).Get("remote_addr") != "" {
		t.Error("remote_addr of an empty set is not empty")
	}
}

func TestAppendAllocatesNothing(t *testing.T) {
	s := &Set{Remote: netip.MustParseAddrPort("127.0.0.1:5"), Local: netip.MustParseAddrPort("127.0.0.1:9")}
	tpl := ParseTemplate("$remote_addr:$remote_port-$server_addr:$server_port")
	var buf [128]byte
	if n := testing.AllocsPerRun(100, func() { _ = tpl.Append(buf[:0], s) }); n != 0 {
		t.Fatalf("%v allocations per Append", n)
	}
}

func FuzzParseTemplate(f *testing.F) {
	for _, s := range []string{"$remote_addr$server_port", "${a}b", `\$x`, "${", "$$", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tpl string) {
		p := ParseTemplate(tpl)
		lit, n := 0, 0
		for _, s := range p.segs {
			if !s.isVar {
				if s.lit == "" {
					t.Fatal("empty literal segment")
				}
				lit += len(s.lit)
			} else {
				n++
			}
		}
		if lit > len(tpl) || n > len(tpl)/2 {
			t.Fatalf("%q: %d literal bytes, %d variables", tpl, lit, n)
		}
		_ = p.Render(&Set{Remote: netip.MustParseAddrPort("127.0.0.1:1")})
	})
}
