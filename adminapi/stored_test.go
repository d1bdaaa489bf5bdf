package adminapi

import (
	"strings"
	"testing"

	"github.com/caddy-apisix/stream/model"
)

// A value from etcd naming a plugin this build does not have is accepted
// (APISIX's watcher skips the plugins its node lacks: apisix/plugin.lua
// stream_plugin_checker and plugin_checker); a known plugin's bad conf is
// still rejected.
func TestCheckStoredUnknownPlugin(t *testing.T) {
	for _, c := range []struct {
		kind model.Kind
		body string
	}{
		{model.StreamRoutes, `{"id":"1","server_port":9100,"upstream_id":"1","plugins":{"kafka-logger":{}}}`},
		{model.Services, `{"id":"1","upstream_id":"1","plugins":{"proxy-rewrite":{"uri":"/x"}}}`},
	} {
		if _, err := CheckStored(c.kind, []byte(c.body)); err != nil {
			t.Errorf("%s %s: %v", c.kind, c.body, err)
		}
	}
	_, err := CheckStored(model.StreamRoutes, []byte(`{"id":"1","upstream_id":"1","plugins":{"kafka-logger":{},"limit-conn":{"conn":"x"}}}`))
	if err == nil || !strings.Contains(err.Error(), "failed to check the configuration of stream plugin [limit-conn]") {
		t.Fatalf("bad limit-conn conf: %v", err)
	}
}
