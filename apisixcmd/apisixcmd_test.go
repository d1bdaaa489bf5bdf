package apisixcmd

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddy-apisix/stream/standalone"
)

func TestParseConnectionTotals(t *testing.T) {
	tests := []struct {
		name, in string
		want     map[string]float64
		wantErr  bool
	}{
		{"counter", "# HELP apisix_stream_connection_total x\n# TYPE apisix_stream_connection_total counter\n" +
			`apisix_stream_connection_total{route="1"} 3` + "\n" + `apisix_stream_connection_total{route="b"} 1` + "\n",
			map[string]float64{"1": 3, "b": 1}, false},
		{"untyped, other metrics", `other_total 5` + "\n" + `apisix_stream_connection_total{route="1",node="x"} 2` + "\n",
			map[string]float64{"1": 2}, false},
		{"absent", "up 1\n", map[string]float64{}, false},
		{"garbage", "{{{\n", nil, true},
	}
	for _, tt := range tests {
		got, err := parseConnectionTotals([]byte(tt.in))
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: err %v", tt.name, err)
			continue
		}
		if tt.wantErr {
			continue
		}
		if len(got) != len(tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
		for k, v := range tt.want {
			if got[k] != v {
				t.Errorf("%s: route %s = %v, want %v", tt.name, k, got[k], v)
			}
		}
	}
}

// TestDocumentRoundTrip encodes a document as export does and reads it
// back with the standalone parser import uses, in both formats.
func TestDocumentRoundTrip(t *testing.T) {
	doc := standalone.Document{
		"stream_routes": []any{map[string]any{"id": "1", "server_port": json.Number("9101"), "upstream_id": json.Number("2")}},
		"upstreams":     []any{map[string]any{"id": json.Number("2"), "nodes": map[string]any{"127.0.0.1:1995": json.Number("1")}, "retry_timeout": json.Number("1.5")}},
	}
	for _, format := range []string{"yaml", "json"} {
		b, err := encodeDocument(doc, format)
		if err != nil {
			t.Fatal(err)
		}
		if format == "yaml" && !strings.HasSuffix(string(b), "\n#END\n") {
			t.Errorf("yaml without #END:\n%s", b)
		}
		back, err := standalone.Parse(b, standalone.Format(format), func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatalf("%s: %v\n%s", format, err, b)
		}
		want, _ := json.Marshal(doc)
		got, _ := json.Marshal(back)
		if string(got) != string(want) {
			t.Errorf("%s round trip:\ngot  %s\nwant %s", format, got, want)
		}
	}
	if _, err := encodeDocument(doc, "toml"); err == nil {
		t.Error("unknown format accepted")
	}
}

func TestFormatOf(t *testing.T) {
	for in, want := range map[string]string{"a.json": "json", "a.JSON": "json", "a.yaml": "yaml", "apisix.yml": "yaml", "": "yaml", "-": "yaml"} {
		if got := formatOf(in); got != want {
			t.Errorf("formatOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseConnectionTotals(f *testing.F) {
	f.Add(`apisix_stream_connection_total{route="1"} 3` + "\n")
	f.Add("# TYPE apisix_stream_connection_total counter\napisix_stream_connection_total 1\n")
	f.Fuzz(func(t *testing.T, in string) {
		_, _ = parseConnectionTotals([]byte(in))
	})
}
