package store

import (
	"strings"
	"testing"

	"github.com/caddy-apisix/stream/model"
)

func TestEscapeName(t *testing.T) {
	tests := []struct {
		id, name string
	}{
		{"1", "1"},
		{"00000000000000000042", "00000000000000000042"},
		{"route-1_a.b", "route-1_a.b"},
		{"R1", "%521"},
		{".", "%2E"},
		{"..", "%2E."},
		{".hidden", "%2Ehidden"},
		{"a/b", "a%2Fb"},
		{`a\b`, "a%5Cb"},
		{"50%", "50%25"},
		{"a b:c", "a%20b%3Ac"},
		{"é", "%C3%A9"},
		{"\x00", "%00"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			got, err := escapeName(tt.id)
			if err != nil || got != tt.name {
				t.Fatalf("escapeName(%q) = %q, %v; want %q", tt.id, got, err, tt.name)
			}
			back, err := unescapeName(got)
			if err != nil || back != tt.id {
				t.Fatalf("unescapeName(%q) = %q, %v; want %q", got, back, err, tt.id)
			}
		})
	}
	if _, err := escapeName(""); err == nil {
		t.Fatal("escapeName accepted the empty id")
	}
}

func TestUnescapeNameRejects(t *testing.T) {
	for _, name := range []string{
		"", ".", "..", ".tmp-123", "A", "%2e", "%2D", "%61", "%", "%4", "%GG", "a/b", "x%2",
	} {
		if id, err := unescapeName(name); err == nil {
			t.Errorf("unescapeName(%q) = %q, want an error", name, id)
		}
	}
}

func TestCleanPrefix(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "apisix"},
		{"apisix", "apisix"},
		{"/apisix/", "apisix"},
		{"a/b", "a/b"},
		{"../../etc", "etc"},
		{"a/../..", "apisix"},
		{`a\..\..\b`, "b"},
		{".", "apisix"},
	}
	for _, tt := range tests {
		if got := cleanPrefix(tt.in); got != tt.want {
			t.Errorf("cleanPrefix(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCheckKind(t *testing.T) {
	tests := []struct {
		kind model.Kind
		ok   bool
	}{
		{model.StreamRoutes, true},
		{model.Upstreams, true},
		{model.SSLs, true},
		{"plugin_configs2", true},
		{"", false},
		{"gen_id", false},
		{"Routes", false},
		{"2routes", false},
		{"a/b", false},
		{"..", false},
	}
	for _, tt := range tests {
		if err := checkKind(tt.kind); (err == nil) != tt.ok {
			t.Errorf("checkKind(%q) = %v, want ok=%v", tt.kind, err, tt.ok)
		}
	}
}

// FuzzUnescapeName checks that names read back from storage either fail or
// map one to one onto ids, and that escaped ids are safe file names.
func FuzzUnescapeName(f *testing.F) {
	for _, s := range []string{"1", "%2E.", "%521", "a%2Fb", ".tmp-1", "%zz", "%C3%A9", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if id, err := unescapeName(name); err == nil {
			again, err := escapeName(id)
			if err != nil || again != name {
				t.Fatalf("unescapeName(%q) = %q, which escapes to %q, %v", name, id, again, err)
			}
		}
		esc, err := escapeName(name)
		if name == "" {
			if err == nil {
				t.Fatal("empty id escaped")
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if !safeName(esc) {
			t.Fatalf("escapeName(%q) = %q is not a safe file name", name, esc)
		}
		back, err := unescapeName(esc)
		if err != nil || back != name {
			t.Fatalf("round trip of %q: %q, %v", name, back, err)
		}
	})
}

// safeName reports whether name uses only lower-case letters, digits,
// '-', '_', non-leading '.' and %XX escapes with upper-case hex digits.
func safeName(name string) bool {
	if name == "" || name[0] == '.' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		case c == '%' && i+2 < len(name) && strings.IndexByte(hexDigits, name[i+1]) >= 0 && strings.IndexByte(hexDigits, name[i+2]) >= 0:
			i += 2
		default:
			return false
		}
	}
	return true
}

const hexDigits = "0123456789ABCDEF"
