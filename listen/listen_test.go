package listen

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	tests := []struct {
		in      string // JSON
		want    []string
		wantErr string
	}{
		{`9100`, []string{":9100"}, ""},
		{`"9100"`, []string{":9100"}, ""},
		{`"127.0.0.1:9101"`, []string{"127.0.0.1:9101"}, ""},
		{`"[::1]:9100"`, []string{"[::1]:9100"}, ""},
		{`"2000-2002"`, []string{":2000", ":2001", ":2002"}, ""},
		{`"127.0.0.1:4000-4001"`, []string{"127.0.0.1:4000", "127.0.0.1:4001"}, ""},
		{`{"addr": 9102, "tls": true}`, []string{":9102"}, ""},
		{`{"addr": "127.0.0.1:9443", "tls_passthrough": true}`, []string{"127.0.0.1:9443"}, ""},
		{`70000`, nil, "port out of range (1-65535): 70000"},
		{`0`, nil, "port out of range (1-65535): 0"},
		{`"2005-2000"`, nil, "invalid port range (start > end): 2005-2000"},
		{`"127.0.0.1:"`, nil, "missing port: 127.0.0.1:"},
		{`"abc"`, nil, "invalid port format: abc"},
		{`"::1:9100"`, nil, "IPv6 addresses must be bracketed"},
		{`"[::1]"`, nil, "missing port: [::1]"},
		{`"300.0.0.1:80"`, nil, "invalid IP address: 300.0.0.1:80"},
		{`""`, nil, "missing port"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var e Entry
			if err := json.Unmarshal([]byte(tt.in), &e); err != nil {
				t.Fatalf("unmarshal: %v", err)
			}
			addrs, err := e.Expand()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range addrs {
				got = append(got, a.String())
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestUnmarshalErrors(t *testing.T) {
	for in, want := range map[string]string{
		`1.5`:                           "port must be an integer, got: 1.5",
		`true`:                          "invalid port value type: boolean",
		`[9100]`:                        "invalid port value type: table",
		`{"tls": true}`:                 "missing addr",
		`{"addr": 9100, "bogus": true}`: "unknown field",
	} {
		var e Entry
		err := json.Unmarshal([]byte(in), &e)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", in, err, want)
		}
	}
}

// Entries marshal back in the form they were written in.
func TestRoundTrip(t *testing.T) {
	for _, in := range []string{`9100`, `"127.0.0.1:9101"`, `{"addr":9102,"tls":true}`, `{"addr":"127.0.0.1:9443","tls_passthrough":true}`} {
		var e Entry
		if err := json.Unmarshal([]byte(in), &e); err != nil {
			t.Fatal(err)
		}
		out, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != in {
			t.Errorf("%s marshals to %s", in, out)
		}
	}
}

func FuzzEntry(f *testing.F) {
	for _, s := range []string{`9100`, `"1-2"`, `"[::1]:1"`, `{"addr":"127.0.0.1:1-3","tls":true}`, `"a:b:c"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var e Entry
		if json.Unmarshal([]byte(in), &e) != nil {
			return
		}
		addrs, err := e.Expand()
		if err == nil && len(addrs) == 0 {
			t.Fatalf("%s: no addresses and no error", in)
		}
		for _, a := range addrs {
			if a.Port == 0 {
				t.Fatalf("%s: port 0", in)
			}
		}
	})
}
