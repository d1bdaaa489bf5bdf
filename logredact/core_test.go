package logredact

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func TestQuery(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/apisix/admin/routes", "/apisix/admin/routes"},
		{"/apisix/admin/routes?api_key=SECRET", "/apisix/admin/routes?api_key=REDACTED"},
		{"/a?x=1&api_key=SECRET&y=2", "/a?x=1&api_key=REDACTED&y=2"},
		{"/a?api%5Fkey=SECRET", "/a?api%5Fkey=REDACTED"},
		{"/a?API_KEY=SECRET", "/a?API_KEY=REDACTED"},
		{"/a?x=1;api_key=SECRET", "/a?x=1;api_key=REDACTED"},
		{"/a?api_key=SECRET#frag", "/a?api_key=REDACTED#frag"},
		{"/a?api_key", "/a?api_key"}, // no value, nothing to hide
		{"api_key=SECRET", "api_key=REDACTED"},
		{"/a?api_keys=1", "/a?api_keys=1"},
		{"/a?api_key=REDACTED", "/a?api_key=REDACTED"},
		{"/a?%zz=1&api_key=S", "/a?%zz=1&api_key=REDACTED"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Query(tt.in); got != tt.want {
			t.Errorf("Query(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzQuery: whatever the input, no api_key argument that Go's query
// parser accepts keeps its value, and an input without one is unchanged.
func FuzzQuery(f *testing.F) {
	for _, s := range []string{"/a?api_key=S", "/a?x=1&api%5Fkey=S", "/a?;api_key=S#x", "a=b", "?&&;="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Query(s)
		_, q, _ := strings.Cut(out, "?")
		q, _, _ = strings.Cut(q, "#")
		vals, _ := url.ParseQuery(q)
		for k, vs := range vals {
			if strings.EqualFold(k, secretArg) {
				for _, v := range vs {
					if v != Redacted && v != "" {
						t.Fatalf("Query(%q) = %q keeps %s=%q", s, out, k, v)
					}
				}
			}
		}
		if Query(out) != out {
			t.Fatalf("Query is not idempotent on %q", out)
		}
	})
}

// headers mimics Caddy's LoggableHTTPHeader (caddy internal/logmarshalers.go).
type headers http.Header

func (h headers) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	for k, v := range h {
		_ = enc.AddArray(k, zapcore.ArrayMarshalerFunc(func(ae zapcore.ArrayEncoder) error {
			for _, s := range v {
				ae.AppendString(s)
			}
			return nil
		}))
	}
	return nil
}

// TestCore logs as Caddy's admin server does (caddy admin.go
// adminHandler.ServeHTTP) and finds no key in the output.
func TestCore(t *testing.T) {
	var buf bytes.Buffer
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	base := zapcore.NewCore(enc, zapcore.AddSync(&buf), zapcore.DebugLevel)
	log := zap.New(Core(base)).Named("admin.api")
	h := http.Header{}
	h.Set("X-API-KEY", "SECRET1")
	h.Set("Accept", "*/*")
	log.With(
		zap.String("uri", "/apisix/admin/upstreams?api_key=SECRET2"),
		zap.Object("headers", headers(h)),
	).Info("received request", zap.String("X-Api-Key", "SECRET3"),
		zap.Strings("args", []string{"api_key=SECRET4"}))
	log.Info("nested", zap.Object("request", zapcore.ObjectMarshalerFunc(func(enc zapcore.ObjectEncoder) error {
		enc.AddString("uri", "/x?api_key=SECRET5")
		return enc.AddObject("headers", headers(h))
	})))
	out := buf.String()
	if strings.Contains(out, "SECRET") {
		t.Fatalf("a key is logged:\n%s", out)
	}
	for _, want := range []string{`"X-Api-Key":["REDACTED"]`, `"Accept":["*/*"]`, `api_key=REDACTED`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
	if !IsWrapped(Core(Core(base))) || IsWrapped(base) {
		t.Error("Core must wrap once")
	}
}

// TestCoreKeepsLevels: the wrapped core's level and filters still apply.
func TestCoreKeepsLevels(t *testing.T) {
	var buf bytes.Buffer
	base := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&buf), zapcore.WarnLevel)
	log := zap.New(Core(base))
	log.Info("dropped")
	log.Warn("kept")
	if strings.Contains(buf.String(), "dropped") || !strings.Contains(buf.String(), "kept") {
		t.Fatalf("levels not kept: %s", buf.String())
	}
}
