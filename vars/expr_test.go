package vars

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
)

func decodeJSON(t testing.TB, s string) any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestExpr(t *testing.T) {
	s := &Set{Remote: netip.MustParseAddrPort("10.1.2.3:4000"), Local: netip.MustParseAddrPort("127.0.0.1:9100"), RouteID: "3", ServerName: "A.test"}
	tests := []struct {
		expr string
		want bool
		err  string
	}{
		{`[["route_id","==","3"]]`, true, ""},
		{`[["route_id","==",3]]`, true, ""},
		{`[["route_id","~=","3"]]`, false, ""},
		{`[["route_id","!","==","3"]]`, false, ""},
		{`[["server_port",">",9000],["server_port","<=",9100]]`, true, ""},
		{`[["server_port",">=",9101]]`, false, ""},
		{`[["remote_addr","ipmatch",["10.0.0.0/8","::1"]]]`, true, ""},
		{`[["remote_addr","ipmatch","192.168.0.0/16"]]`, false, ""},
		{`[["server_name","~~","^A\\."]]`, true, ""},
		{`[["server_name","~*","^a\\."]]`, true, ""},
		{`[["remote_port","in",["1","4000"]]]`, true, ""},
		{`[["mqtt_client_id","==","x"]]`, false, ""},
		{`[["mqtt_client_id","~=","x"]]`, true, ""},
		{`["OR",["route_id","==","1"],["route_id","==","3"]]`, true, ""},
		{`["!AND",["route_id","==","3"],["server_port","==",9100]]`, false, ""},
		{`[]`, true, ""},
		{`[["route_id","=~","3"]]`, false, "invalid operator '=~'"},
		{`[["route_id","=="]]`, false, "rule too short"},
		{`"x"`, false, "rule should be wrapped inside brackets"},
		{`[["remote_addr","ipmatch",["nope"]]]`, false, "invalid ip address: nope"},
		{`[["route_id","in","3"]]`, false, "invalid operator 'in': value should be an array"},
	}
	for _, tt := range tests {
		e, err := CompileExpr(decodeJSON(t, tt.expr))
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("%s: error %v, want %q", tt.expr, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tt.expr, err)
		}
		if got := e.Eval(s); got != tt.want {
			t.Errorf("%s = %v, want %v", tt.expr, got, tt.want)
		}
	}
}

func FuzzExpr(f *testing.F) {
	for _, s := range []string{`[["route_id","==","3"]]`, `["OR",["a","~~","x"],["b","in",[1,"2"]]]`, `[["remote_addr","ipmatch",["10.0.0.0/8"]]]`, `[[]]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		dec := json.NewDecoder(strings.NewReader(in))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) != nil {
			return
		}
		e, err := CompileExpr(v)
		if err != nil {
			return
		}
		_ = e.Eval(&Set{Remote: netip.MustParseAddrPort("127.0.0.1:1"), RouteID: "1"})
	})
}
