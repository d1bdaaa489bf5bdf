package adminapi

import (
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/caddy-apisix/stream/registry"
)

// TestHandlerNotWired: a Handler missing any part of its wiring (no
// running app's config, no registry, no shared State) answers 503 with
// APISIX-shaped text instead of panicking on the first write.
func TestHandlerNotWired(t *testing.T) {
	cfg := &Config{StreamEnabled: true, AllowAdmin: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}
	reg := registry.New()
	if err := reg.Open(newMemStore(), nil); err != nil {
		t.Fatal(err)
	}
	conf := func() *Config { return cfg }
	for name, h := range map[string]*Handler{
		"no config":   {Registry: reg, State: NewState()},
		"no registry": {Config: conf, State: NewState()},
		"no state":    {Registry: reg, Config: conf},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("PUT", "/apisix/admin/upstreams/1", strings.NewReader(`{"nodes":{"127.0.0.1:1":1}}`)))
		if rec.Code != 503 || !strings.Contains(rec.Body.String(), NotRunning) {
			t.Errorf("%s: %d %s", name, rec.Code, rec.Body)
		}
	}
}
