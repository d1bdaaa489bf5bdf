package adminapi

import (
	"testing"

	"github.com/caddy-apisix/stream/internal/testcert"
	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"
)

// putRaw stores a value without validation, for references the model may
// not accept yet (xRPC protocols, plugin confs).
func (e *env) putRaw(kind model.Kind, id, value string) {
	e.t.Helper()
	err := e.reg.Update(func(tx *registry.Tx) error {
		_, _, err := tx.Put(kind, id, []byte(value))
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

func TestDeleteReferenceRules(t *testing.T) {
	cert, key := testcert.SelfSigned(t, "client")
	clientSSL := `{"type":"client","cert":` + jsonStr(cert) + `,"key":` + jsonStr(key) + `}`
	tests := []struct {
		name   string
		setup  func(e *env)
		target string // what is deleted
		msg    string
		unref  string // deleting this makes target deletable
	}{
		{
			name: "upstream used by upstream_id",
			setup: func(e *env) {
				e.must(201, "PUT", "/apisix/admin/upstreams/1", upstreamBody)
				e.must(201, "PUT", "/apisix/admin/stream_routes/r1", `{"upstream_id":1}`)
			},
			target: "/apisix/admin/upstreams/1",
			msg:    "can not delete this upstream, stream_route [r1] is still using it now",
			unref:  "/apisix/admin/stream_routes/r1",
		},
		{
			name: "upstream used by traffic-split",
			setup: func(e *env) {
				e.must(201, "PUT", "/apisix/admin/upstreams/1", upstreamBody)
				e.putRaw(model.StreamRoutes, "r2", `{"id":"r2","plugins":{"traffic-split":{"rules":[`+
					`{"weighted_upstreams":[{"upstream_id":"1","weight":1},{"weight":1}]}]}}}`)
			},
			target: "/apisix/admin/upstreams/1",
			msg:    "can not delete this upstream, plugin in stream_route [r2] is still using it now",
			unref:  "/apisix/admin/stream_routes/r2",
		},
		{
			name: "stream route used as superior_id",
			setup: func(e *env) {
				e.putRaw(model.StreamRoutes, "sup", `{"id":"sup","protocol":{"name":"redis"}}`)
				e.putRaw(model.StreamRoutes, "sub", `{"id":"sub","protocol":{"name":"redis","superior_id":"sup"}}`)
			},
			target: "/apisix/admin/stream_routes/sup",
			msg:    "can not delete this stream route directly, stream route [sub] is still using it as superior_id",
			unref:  "/apisix/admin/stream_routes/sub",
		},
		{
			name: "client ssl used by an upstream",
			setup: func(e *env) {
				e.must(201, "PUT", "/apisix/admin/ssls/c1", clientSSL)
				e.must(201, "PUT", "/apisix/admin/upstreams/1",
					`{"nodes":{"127.0.0.1:80":1},"scheme":"tls","tls":{"client_cert_id":"c1"}}`)
			},
			target: "/apisix/admin/ssls/c1",
			msg:    "can not delete this ssl, upstream [1] is still using it now",
			unref:  "/apisix/admin/upstreams/1",
		},
		{
			name: "client ssl used by an inline upstream",
			setup: func(e *env) {
				e.must(201, "PUT", "/apisix/admin/ssls/c1", clientSSL)
				e.must(201, "PUT", "/apisix/admin/stream_routes/r1",
					`{"upstream":{"nodes":{"127.0.0.1:80":1},"scheme":"tls","tls":{"client_cert_id":"c1"}}}`)
			},
			target: "/apisix/admin/ssls/c1",
			msg:    "can not delete this ssl, stream_route [r1] is still using it now",
			unref:  "/apisix/admin/stream_routes/r1",
		},
		{
			name: "service used by a stream route",
			setup: func(e *env) {
				e.must(201, "PUT", "/apisix/admin/services/s1", `{"upstream":`+upstreamBody+`}`)
				e.must(201, "PUT", "/apisix/admin/stream_routes/r1", `{"service_id":"s1"}`)
			},
			target: "/apisix/admin/services/s1",
			msg:    "can not delete this service directly, stream_route [r1] is still using it now",
			unref:  "/apisix/admin/stream_routes/r1",
		},
		{
			name: "service used by an integer service_id",
			setup: func(e *env) {
				e.must(201, "PUT", "/apisix/admin/services/7", `{"upstream":`+upstreamBody+`}`)
				e.must(201, "PUT", "/apisix/admin/stream_routes/r1", `{"service_id":7}`)
			},
			target: "/apisix/admin/services/7",
			msg:    "can not delete this service directly, stream_route [r1] is still using it now",
			unref:  "/apisix/admin/stream_routes/r1",
		},
		{
			name: "upstream used by a service",
			setup: func(e *env) {
				e.must(201, "PUT", "/apisix/admin/upstreams/1", upstreamBody)
				e.must(201, "PUT", "/apisix/admin/services/s1", `{"upstream_id":"1"}`)
			},
			target: "/apisix/admin/upstreams/1",
			msg:    "can not delete this upstream, service [s1] is still using it now",
			unref:  "/apisix/admin/services/s1",
		},
		{
			name: "upstream used by traffic-split on a service",
			setup: func(e *env) {
				e.must(201, "PUT", "/apisix/admin/upstreams/1", upstreamBody)
				e.putRaw(model.Services, "s2", `{"id":"s2","plugins":{"traffic-split":{"rules":[`+
					`{"weighted_upstreams":[{"upstream_id":"1","weight":1}]}]}}}`)
			},
			target: "/apisix/admin/upstreams/1",
			msg:    "can not delete this upstream, plugin in service [s2] is still using it now",
			unref:  "/apisix/admin/services/s2",
		},
		{
			name: "client ssl used by a service's upstream",
			setup: func(e *env) {
				e.must(201, "PUT", "/apisix/admin/ssls/c1", clientSSL)
				e.must(201, "PUT", "/apisix/admin/services/s1",
					`{"upstream":{"nodes":{"127.0.0.1:80":1},"scheme":"tls","tls":{"client_cert_id":"c1"}}}`)
			},
			target: "/apisix/admin/ssls/c1",
			msg:    "can not delete this ssl, service [s1] is still using it now",
			unref:  "/apisix/admin/services/s1",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, streamCfg())
			tc.setup(e)
			r := e.must(400, "DELETE", tc.target, "")
			if r.body != `{"error_msg":"`+tc.msg+`"}`+"\n" {
				t.Fatalf("body %q", r.body)
			}
			e.must(200, "GET", tc.target, "")
			e.must(200, "DELETE", tc.unref, "")
			e.must(200, "DELETE", tc.target, "")
		})
		t.Run(tc.name+" force", func(t *testing.T) {
			e := newEnv(t, streamCfg())
			tc.setup(e)
			e.must(400, "DELETE", tc.target+"?force=yes", "")
			e.must(200, "DELETE", tc.target+"?force=true", "")
		})
	}
}

func TestUpstreamClientCertMustBeClientSSL(t *testing.T) {
	e := newEnv(t, streamCfg())
	cert, key := testcert.SelfSigned(t, "test.com")
	e.must(201, "PUT", "/apisix/admin/ssls/s1", `{"cert":`+jsonStr(cert)+`,"key":`+jsonStr(key)+`,"sni":"test.com"}`)
	tests := []struct{ ref, msg string }{
		{"s1", "failed to fetch ssl info by ssl id [s1], wrong ssl type"},
		{"nope", "failed to fetch ssl info by ssl id [nope], response code: 404"},
	}
	for _, tc := range tests {
		r := e.must(400, "PUT", "/apisix/admin/upstreams/1",
			`{"nodes":{"127.0.0.1:80":1},"tls":{"client_cert_id":"`+tc.ref+`"}}`)
		if got := r.json(t)["error_msg"]; got != tc.msg {
			t.Fatalf("%s: %v", tc.ref, got)
		}
	}
}
