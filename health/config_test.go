package health

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/model"
)

func checks(t testing.TB, js string) *model.HealthChecks {
	t.Helper()
	var c model.HealthChecks
	if err := json.Unmarshal([]byte(js), &c); err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return &c
}

func TestNewConfigDefaults(t *testing.T) {
	c, err := NewConfig(checks(t, `{"active":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Type: "http", Timeout: time.Second, Concurrency: 10, HTTPPath: "/", VerifyCertificate: true,
		HealthyInterval: time.Second, HealthySuccesses: 2,
		UnhealthyInterval: time.Second, UnhealthyTCPFailures: 2, UnhealthyTimeouts: 3, UnhealthyHTTPFailures: 5,
	}
	if !equalConfig(c, want) {
		t.Fatalf("defaults = %+v\nwant %+v", c, want)
	}
	c, err = NewConfig(checks(t, `{"active":{"type":"tcp","timeout":0.5,"healthy":{"interval":2,"successes":1},
		"unhealthy":{"interval":0.25,"tcp_failures":3,"timeouts":4}},"passive":{"unhealthy":{"tcp_failures":1}}}`))
	if err != nil {
		t.Fatal(err)
	}
	want = Config{
		Type: "tcp", Timeout: 500 * time.Millisecond, Concurrency: 10, HTTPPath: "/", VerifyCertificate: true,
		HealthyInterval: 2 * time.Second, HealthySuccesses: 1,
		UnhealthyInterval: 250 * time.Millisecond, UnhealthyTCPFailures: 3, UnhealthyTimeouts: 4, UnhealthyHTTPFailures: 5,
		Passive: true, PassiveSuccesses: 5, PassiveTCPFailures: 1, PassiveTimeouts: 7,
	}
	if !equalConfig(c, want) {
		t.Fatalf("config = %+v\nwant %+v", c, want)
	}
}

func equalConfig(a, b Config) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func TestNewConfigErrors(t *testing.T) {
	tests := []struct {
		name, js, want string
	}{
		{"no checks", `null`, "checks.active is required"},
		{"passive only", `{"passive":{}}`, "checks.active is required"},
		{"bad type", `{"active":{"type":"udp"}}`, `invalid active.type "udp"`},
		{"negative timeout", `{"active":{"timeout":-1}}`, "invalid active.timeout -1"},
		{"negative interval", `{"active":{"healthy":{"interval":-2}}}`, "invalid active.healthy.interval -2"},
		{"successes too big", `{"active":{"healthy":{"successes":255}}}`, "invalid active.healthy.successes 255 (want 1-254)"},
		{"negative tcp failures", `{"active":{"unhealthy":{"tcp_failures":-1}}}`, "invalid active.unhealthy.tcp_failures -1"},
		{"bad concurrency", `{"active":{"concurrency":-3}}`, "invalid active.concurrency -3"},
		{"bad port", `{"active":{"port":70000}}`, "invalid active.port 70000"},
		{"bad status", `{"active":{"healthy":{"http_statuses":[99]}}}`, "invalid http status 99"},
		{"path injection", `{"active":{"http_path":"/\r\nX: y"}}`, "invalid active.http_path"},
		{"header injection", `{"active":{"req_headers":["A: b\nC: d"]}}`, "invalid active.req_headers"},
		{"bad passive type", `{"active":{},"passive":{"type":"x"}}`, `invalid passive.type "x"`},
		{"bad passive timeouts", `{"active":{},"passive":{"unhealthy":{"timeouts":300}}}`, "invalid passive.unhealthy.timeouts 300"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hc *model.HealthChecks
			if tt.js != "null" {
				hc = checks(t, tt.js)
			}
			_, err := NewConfig(hc)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestNewCheckerBadAddress(t *testing.T) {
	for _, addr := range []string{"127.0.0.1", "127.0.0.1:x", "127.0.0.1:70000", "::1:80"} {
		if _, err := NewChecker(checks(t, `{"active":{"type":"tcp"}}`), []string{addr}, "1", nil); err == nil {
			t.Errorf("%q: no error", addr)
		}
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		js     string
		status int
		want   event
	}{
		{`{}`, 200, evSuccess},
		{`{}`, 302, evSuccess},
		{`{}`, 404, evHTTPFailure},
		{`{}`, 503, evHTTPFailure},
		{`{"healthy":{"http_statuses":[204]}}`, 200, evHTTPFailure},
		{`{"healthy":{"http_statuses":[204]}}`, 204, evSuccess},
		{`{"unhealthy":{"http_statuses":[503]}}`, 404, evNone},
		{`{"unhealthy":{"http_statuses":[503]}}`, 503, evHTTPFailure},
		{`{"unhealthy":{"http_statuses":[503]}}`, 301, evSuccess},
	}
	for _, tt := range tests {
		c, err := NewConfig(checks(t, `{"active":`+tt.js+`}`))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.classify(tt.status); got != tt.want {
			t.Errorf("%s status %d: %v, want %v", tt.js, tt.status, got, tt.want)
		}
	}
}

func TestParseStatusLine(t *testing.T) {
	tests := []struct {
		line string
		want int
	}{
		{"HTTP/1.1 200 OK\r\n", 200},
		{"HTTP/1.0 302\r\n", 302},
		{"HTTP/1.1 503 Service Unavailable\n", 503},
		{"HTTP/2 204 x\r\n", 204},
		{"SSH-2.0-OpenSSH\r\n", 0},
		{"HTTP/1.1 20 OK\r\n", 0},
		{"HTTP/1.1 2000 OK\r\n", 0},
		{"HTTP/1.1 abc\r\n", 0},
		{"HTTP/1.1 099\r\n", 0},
		{"\r\n", 0},
	}
	for _, tt := range tests {
		got, err := parseStatusLine(tt.line)
		if got != tt.want || (err == nil) != (tt.want != 0) {
			t.Errorf("parseStatusLine(%q) = %d, %v; want %d", tt.line, got, err, tt.want)
		}
	}
}

func FuzzParseStatusLine(f *testing.F) {
	for _, s := range []string{"HTTP/1.1 200 OK\r\n", "HTTP/1.0 5", "garbage", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		n, err := parseStatusLine(line)
		if err == nil && (n < 100 || n > 999 || !strings.HasPrefix(line, "HTTP/")) {
			t.Fatalf("%q: status %d accepted", line, n)
		}
		if err != nil && n != 0 {
			t.Fatalf("%q: status %d with error %v", line, n, err)
		}
	})
}
