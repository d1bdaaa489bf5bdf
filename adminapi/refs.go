package adminapi

import (
	"net/http"
	"slices"
	"strings"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"

	"github.com/caddy-apisix/stream/internal/lua"
)

// refsFor resolves model references inside a transaction, so a check and
// the write it guards see the same objects.
func refsFor(tx *registry.Tx) model.Refs {
	return model.Refs{
		UpstreamExists: func(id string) bool { return tx.Get(model.Upstreams, id) != nil },
		ServiceExists:  func(id string) bool { return tx.Get(model.Services, id) != nil },
		SSLType: func(id string) (string, bool) {
			o := tx.Get(model.SSLs, id)
			if o == nil {
				return "", false
			}
			obj, err := model.DecodeObject(o.Value)
			if err != nil {
				return "", false
			}
			typ, _ := obj["type"].(string)
			if typ == "" {
				typ = "server" // the schema default
			}
			return typ, true
		},
	}
}

// decodedObject is a stored object with its value decoded.
type decodedObject struct {
	id  string
	obj map[string]any
}

// decodedList returns a kind's objects in key order, decoded; values that
// do not decode are skipped (they cannot refer to anything).
func decodedList(objs []*registry.Object) []decodedObject {
	out := make([]decodedObject, 0, len(objs))
	for _, o := range objs {
		if obj, err := model.DecodeObject(o.Value); err == nil {
			out = append(out, decodedObject{id: o.ID, obj: obj})
		}
	}
	slices.SortFunc(out, func(a, b decodedObject) int { return strings.Compare(a.id, b.id) })
	return out
}

// refers reports whether the reference v (a string or a number) names id.
func refers(v any, id string) bool {
	if v == nil {
		return false
	}
	s, ok := lua.ToString(v)
	return ok && s == id
}

// clientCertID returns an upstream object's tls.client_cert_id.
func clientCertID(up any) any {
	m, _ := up.(map[string]any)
	tls, _ := m["tls"].(map[string]any)
	return tls["client_cert_id"]
}

// deleteCheck refuses to delete an object something still uses: a stream
// route that is another's protocol.superior_id, a service a stream route
// uses, an upstream a service uses directly or through traffic-split
// (APISIX: apisix/admin/stream_routes.lua, services.lua, upstreams.lua), an
// upstream a stream route uses the same ways, and a client SSL an upstream
// uses as tls.client_cert_id (this project: docs/differences.md#deleting-a-used-upstream-is-refused).
func deleteCheck(tx *registry.Tx, kind model.Kind, id string) *apiError {
	routes := decodedList(tx.List(model.StreamRoutes))
	switch kind {
	case model.Services:
		for _, r := range routes {
			if refers(r.obj["service_id"], id) {
				return errMsg(http.StatusBadRequest, "can not delete this service directly, stream_route ["+
					r.id+"] is still using it now")
			}
		}
	case model.StreamRoutes:
		for _, r := range routes {
			proto, _ := r.obj["protocol"].(map[string]any)
			if r.id != id && refers(proto["superior_id"], id) {
				return errMsg(http.StatusBadRequest, "can not delete this stream route directly, stream route ["+
					r.id+"] is still using it as superior_id")
			}
		}
	case model.Upstreams:
		for _, r := range routes {
			if refers(r.obj["upstream_id"], id) {
				return errMsg(http.StatusBadRequest, "can not delete this upstream, stream_route ["+
					r.id+"] is still using it now")
			}
		}
		for _, r := range routes {
			for _, wu := range pluginUpstreams(r.obj) {
				if refers(wu["upstream_id"], id) {
					return errMsg(http.StatusBadRequest, "can not delete this upstream, plugin in stream_route ["+
						r.id+"] is still using it now")
				}
			}
		}
		for _, s := range decodedList(tx.List(model.Services)) {
			for _, wu := range pluginUpstreams(s.obj) {
				if refers(wu["upstream_id"], id) {
					return errMsg(http.StatusBadRequest, "can not delete this upstream, plugin in service ["+
						s.id+"] is still using it now")
				}
			}
			if refers(s.obj["upstream_id"], id) {
				return errMsg(http.StatusBadRequest, "can not delete this upstream, service ["+
					s.id+"] is still using it now")
			}
		}
	case model.SSLs:
		for _, u := range decodedList(tx.List(model.Upstreams)) {
			if refers(clientCertID(u.obj), id) {
				return errMsg(http.StatusBadRequest, "can not delete this ssl, upstream ["+
					u.id+"] is still using it now")
			}
		}
		for _, r := range routes {
			if refers(clientCertID(r.obj["upstream"]), id) {
				return errMsg(http.StatusBadRequest, "can not delete this ssl, stream_route ["+
					r.id+"] is still using it now")
			}
		}
		for _, s := range decodedList(tx.List(model.Services)) {
			if refers(clientCertID(s.obj["upstream"]), id) {
				return errMsg(http.StatusBadRequest, "can not delete this ssl, service ["+
					s.id+"] is still using it now")
			}
		}
	}
	return nil
}
