package model

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"

	"github.com/caddy-apisix/stream/internal/lua"
)

// fuzzDecode turns fuzz input into an object the way the admin layer would;
// ok=false for input the admin layer rejects before validation.
func fuzzDecode(b []byte) (map[string]any, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, false
	}
	return m, true
}

// checkResult fails unless err is nil or a non-empty *Error, and checks
// that an accepted body parses into its typed form.
func checkResult(t *testing.T, obj map[string]any, err error, parse func([]byte) error) {
	if err != nil {
		e, ok := err.(*Error)
		if !ok || e.Msg == "" {
			t.Fatalf("bad error %T %v", err, err)
		}
		return
	}
	b, merr := json.Marshal(obj)
	if merr != nil {
		t.Fatalf("accepted object does not encode: %v", merr)
	}
	// The one body APISIX accepts that the typed forms cannot hold: an
	// integer beyond ±2^53 (Lua holds a double; the typed forms an int).
	if perr := parse(b); perr != nil && !hugeInteger(obj) {
		t.Fatalf("accepted object does not parse: %v\n%s", perr, b)
	}
}

// hugeInteger finds an integral number outside ±2^53 anywhere in v.
func hugeInteger(v any) bool {
	switch t := v.(type) {
	case map[string]any:
		for _, x := range t {
			if hugeInteger(x) {
				return true
			}
		}
	case []any:
		for _, x := range t {
			if hugeInteger(x) {
				return true
			}
		}
	case json.Number:
		f, ok := lua.Number(t)
		return ok && math.Mod(f, 1) == 0 && math.Abs(f) > 1<<53
	}
	return false
}

func FuzzCheckStreamRoute(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"server_port":70000}`, `{"remote_addr":":/8"}`, `{"sni":"a","snis":["b"]}`,
		`{"upstream":{"nodes":[{"host":"::1","port":1,"weight":1}],"type":"chash"}}`,
		`{"plugins":{"ip-restriction":{"whitelist":["1.1.1.1"]}}}`, `{"labels":{"a":"b c"}}`,
		`{"protocol":{"name":"redis","logger":[{"name":"x"}]}}`, `{"upstream_id":1,"id":[]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		obj, ok := fuzzDecode(b)
		if !ok {
			return
		}
		err := CheckStreamRoute(obj, testRefs)
		checkResult(t, obj, err, func(b []byte) error { _, err := ParseStreamRoute(b); return err })
	})
}

func FuzzCheckUpstream(f *testing.F) {
	for _, s := range []string{
		`{"nodes":{"127.0.0.1:70000":1}}`, `{"nodes":[{"host":"::1","port":80,"weight":1}]}`,
		`{"nodes":{},"type":"chash","key":"x"}`, `{"nodes":{},"tls":{"client_cert_id":"c1"}}`,
		`{"nodes":{},"checks":{"active":{"healthy":{"http_statuses":[200,200]}}}}`,
		`{"service_name":"a","discovery_type":"dns","timeout":{"connect":1,"send":1,"read":0}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		obj, ok := fuzzDecode(b)
		if !ok {
			return
		}
		err := CheckUpstream(obj, testRefs)
		checkResult(t, obj, err, func(b []byte) error { _, err := ParseUpstream(b); return err })
	})
}

func FuzzCheckSSL(f *testing.F) {
	testCerts(f)
	for _, s := range []string{
		`{}`, `{"type":"client"}`, `{"snis":[]}`,
		`{"cert":` + js(ecPair.cert) + `,"key":` + js(ecPair.key) + `,"sni":"ec.test"}`,
		`{"cert":` + js(rsaPair.cert) + `,"key":` + js(rsaPair.key) + `,"snis":["a"],"certs":[` + js(ecPair.cert) + `],"keys":[]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		obj, ok := fuzzDecode(b)
		if !ok {
			return
		}
		err := CheckSSL(obj)
		checkResult(t, obj, err, func(b []byte) error { _, err := ParseSSL(b); return err })
	})
}

func FuzzCheckService(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"upstream":{"nodes":{"127.0.0.1:1":1},"type":"chash"}}`, `{"upstream_id":"u1"}`,
		`{"plugins":{"ip-restriction":{"whitelist":["1.1.1.1"]},"mqtt-proxy":{}}}`,
		`{"hosts":["a","a"],"script":"short","enable_websocket":1}`, `{"plugins":{"limit-conn":1}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		obj, ok := fuzzDecode(b)
		if !ok {
			return
		}
		err := CheckService(obj, testRefs)
		checkResult(t, obj, err, func(b []byte) error {
			s, err := ParseService(b)
			if err == nil {
				// the merge of any valid service with any route is total
				EffectiveRoute(&StreamRoute{ServiceID: "s"}, s)
			}
			return err
		})
	})
}

func FuzzCheckPluginMetadata(f *testing.F) {
	for _, s := range []string{
		`{"log_format":{"a":"$remote_addr"}}`, `{"max_pending_entries":0}`, `{"log_format":[]}`, `[]`,
	} {
		f.Add("syslog", []byte(s))
	}
	f.Add("prometheus", []byte(`{"disabled_labels":1}`))
	f.Add("nope", []byte(`{}`))
	f.Fuzz(func(t *testing.T, name string, b []byte) {
		var v any
		if json.Unmarshal(b, &v) != nil {
			return
		}
		if err := CheckPluginMetadata(name, v); err != nil {
			if e, ok := err.(*Error); !ok || e.Msg == "" {
				t.Fatalf("bad error %T %v", err, err)
			}
		}
	})
}
