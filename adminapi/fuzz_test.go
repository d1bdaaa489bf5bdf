package adminapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/caddy-apisix/stream/registry"
)

// FuzzAdminBody sends arbitrary bodies to every write of every kind: the
// handler must never panic, never answer 5xx, and always answer JSON it
// can itself decode (or one of the plain-text APISIX answers).
func FuzzAdminBody(f *testing.F) {
	seeds := []string{
		seedRoute, upstreamBody, `{}`, `null`, `[]`, `"x"`, `1`, `{"id":1}`, `{"id":{"a":1}}`,
		`{"upstream_id":"1"}`, `{"plugins":{"ip-restriction":{"whitelist":["127.0.0.1"]}}}`,
		`{"nodes":[{"host":"::1","port":80,"weight":1}]}`, `{"sni":"a.com","cert":"x","key":"y"}`,
		`{"create_time":1}`, `{"upstream":{"nodes":{"127.0.0.1:80":1},"tls":{"client_cert_id":1}}}`,
		`{"labels":{"a":"b"},"name":"n","remote_addr":"::/0","server_port":0}`,
		`{"log_format":{"a":"$remote_addr"}}`, `{"hosts":["a"],"upstream_id":1}`,
	}
	for i, s := range seeds {
		f.Add(uint8(i), uint8(i/3), []byte(s))
	}
	// httptest.NewRequest comes from 192.0.2.1.
	cfg := &Config{StreamEnabled: true, AllowAdmin: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}
	// newHandler gives each input a fresh registry holding something to
	// refer to, update and patch (a shared one would grow without bound).
	newHandler := func(t testing.TB) *Handler {
		reg := registry.New()
		if err := reg.Open(newMemStore(), nil); err != nil {
			t.Fatal(err)
		}
		h := &Handler{Registry: reg, Config: func() *Config { return cfg }, State: NewState()}
		for _, p := range []string{"/apisix/admin/upstreams/1", "/apisix/admin/stream_routes/1", "/apisix/admin/services/1"} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("PUT", p, strings.NewReader(upstreamBodyFor(p))))
			if rec.Code != 201 {
				t.Fatalf("setup %s: %d %s", p, rec.Code, rec.Body)
			}
		}
		return h
	}
	newHandler(f)
	kinds := []string{"stream_routes", "upstreams", "ssls", "services", "plugin_metadata"}
	targets := []struct{ method, suffix string }{
		{"PUT", "/1"}, {"PUT", ""}, {"POST", ""}, {"PATCH", "/1"}, {"PATCH", "/1/nodes"}, {"PATCH", "/1/tls/verify"},
		{"PUT", "/syslog"}, {"PATCH", "/1/upstream/nodes"},
	}
	f.Fuzz(func(t *testing.T, target, kind uint8, body []byte) {
		tg := targets[int(target)%len(targets)]
		path := fmt.Sprintf("/apisix/admin/%s%s", kinds[int(kind)%len(kinds)], tg.suffix)
		rec := httptest.NewRecorder()
		newHandler(t).ServeHTTP(rec, httptest.NewRequest(tg.method, path, bytes.NewReader(body)))
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", tg.method, path, body, rec.Code, rec.Body)
		}
		out := rec.Body.Bytes()
		if bytes.HasPrefix(out, []byte("{")) && !json.Valid(out) {
			t.Fatalf("%s %s %q: invalid JSON answer %s", tg.method, path, body, out)
		}
		if bytes.Contains(out, []byte("PRIVATE KEY")) && !bytes.Contains(out, []byte("req_body")) {
			t.Fatalf("%s %s: answer leaks a key: %s", tg.method, path, out)
		}
	})
}

func upstreamBodyFor(path string) string {
	if strings.Contains(path, "stream_routes") || strings.Contains(path, "services") {
		return `{"upstream":` + upstreamBody + `}`
	}
	return upstreamBody
}

func TestConcurrentWriters(t *testing.T) {
	e := newEnv(t, streamCfg())
	const writers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("w%d-%d", w, i)
				req := httptest.NewRequest("PUT", e.srv.URL+"/apisix/admin/upstreams/"+id, strings.NewReader(upstreamBody))
				req.RequestURI = ""
				res, err := e.srv.Client().Do(req)
				if err != nil {
					errs <- err
					continue
				}
				res.Body.Close()
				if res.StatusCode != 201 {
					errs <- fmt.Errorf("%s: %d", id, res.StatusCode)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	ids, total := listIDs(t, e.must(200, "GET", "/apisix/admin/upstreams", ""))
	if total != writers*each || len(ids) != total {
		t.Fatalf("total %d, ids %d", total, len(ids))
	}
	for w := range writers {
		for i := range each {
			e.must(200, "GET", fmt.Sprintf("/apisix/admin/upstreams/w%d-%d", w, i), "")
		}
	}
	// Concurrent POSTs never share an id.
	seen := sync.Map{}
	var wg2 sync.WaitGroup
	for range writers {
		wg2.Go(func() {
			req := httptest.NewRequest("POST", e.srv.URL+"/apisix/admin/upstreams", strings.NewReader(upstreamBody))
			req.RequestURI = ""
			res, err := e.srv.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer res.Body.Close()
			var m struct{ Key string }
			if err := json.NewDecoder(res.Body).Decode(&m); err != nil {
				t.Error(err)
				return
			}
			if _, dup := seen.LoadOrStore(m.Key, true); dup {
				t.Errorf("duplicate POST key %s", m.Key)
			}
		})
	}
	wg2.Wait()
}
