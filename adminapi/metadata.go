package adminapi

import (
	"net/http"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"
)

// putMetadata stores /apisix/admin/plugin_metadata/<name> (APISIX's
// apisix/admin/plugin_metadata.lua through resource.lua): the body must be
// present, create_time/update_time are forbidden, the name must be a
// plugin and the body must pass its metadata_schema. The object is stored
// as sent, plus "id": the plugin name, and without timestamps. 201 when
// new, else 200. GET and DELETE are the generic ones; POST and PATCH
// answer 405 (ServeHTTP).
func (h *Handler) putMetadata(q *request) (reply, error) {
	if !q.hasBody || q.body == nil {
		return reply{}, errMsg(http.StatusBadRequest, "missing configurations")
	}
	obj, isObj := q.body.(map[string]any)
	if isObj {
		if msg := forbiddenTimes(obj); msg != "" {
			return reply{}, errMsg(http.StatusBadRequest, msg)
		}
	}
	if q.id == "" {
		return reply{}, errMsg(http.StatusBadRequest, "missing plugin name")
	}
	if err := model.CheckPluginMetadata(q.id, q.body); err != nil {
		return reply{}, errMsg(http.StatusBadRequest, err.Error())
	}
	if !validID(q.id) {
		return reply{}, errMsg(http.StatusBadRequest, "invalid plugin name")
	}
	if obj == nil {
		obj = map[string]any{} // [] passed as the empty Lua table
	}
	obj["id"] = q.id
	var rep reply
	err := h.Registry.Update(func(tx *registry.Tx) error {
		if prev := tx.Get(q.kind, q.id); prev != nil && prev.Static {
			return staticError(q.kind, q.id)
		}
		var err error
		rep, err = h.write(tx, q, q.id, obj, registry.PutOptions{})
		return err
	})
	return rep, err
}
