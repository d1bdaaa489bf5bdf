package adminapi

import (
	"net/http"
	"strings"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"

	"github.com/caddy-apisix/stream/internal/lua"
)

// patch updates part of an upstream or SSL (APISIX resource.lua patch):
// without a sub-path the body is merged into the stored object; with one
// (PATCH /upstreams/1/nodes) the body replaces that field. The result is
// validated in full, as a PUT would be.
func (h *Handler) patch(q *request) (reply, error) {
	noun := q.kind.Noun()
	if q.kind == model.StreamRoutes {
		return reply{}, errMsg(http.StatusMethodNotAllowed, "not supported `PATCH` method for "+noun)
	}
	if q.id == "" {
		return reply{}, errMsg(http.StatusBadRequest, "missing "+noun+" id")
	}
	if !q.hasBody {
		return reply{}, errMsg(http.StatusBadRequest, "missing new configuration")
	}
	patchObj, isObj := q.body.(map[string]any)
	if len(q.subPath) == 0 && !isObj {
		return reply{}, errMsg(http.StatusBadRequest, "invalid configuration")
	}
	var rep reply
	err := h.Registry.Update(func(tx *registry.Tx) error {
		prev, err := existingWritable(tx, q.kind, q.id)
		if err != nil {
			return err
		}
		// APISIX merges into the value etcd holds, defaults left out
		node, err := model.DecodeObject(prev.AsStored())
		if err != nil {
			return errMsg(http.StatusBadRequest, "invalid configuration: stored value is not an object")
		}
		now := h.clock()
		if len(q.subPath) > 0 {
			if aerr := patchPath(node, q.subPath, q.body); aerr != nil {
				return aerr
			}
			node["update_time"] = now
		} else {
			mergePatch(node, patchObj)
			if _, ok := patchObj["update_time"]; !ok {
				node["update_time"] = now
			}
		}
		if _, ok := node["create_time"]; !ok {
			node["create_time"] = now
		}
		// check_conf with the URL id and timestamps allowed.
		if bodyID, ok := node["id"]; ok {
			if s, _ := lua.ToString(bodyID); s != q.id {
				return errMsg(http.StatusBadRequest, "wrong "+noun+" id")
			}
		}
		node["id"] = q.id
		if aerr := q.check(tx, node); aerr != nil {
			return aerr
		}
		// a compare-and-swap on the read revision (apisix/core/etcd.lua
		// atomic_set): a concurrent write makes it fail with 503
		rep, err = h.write(tx, q, q.id, node, registry.PutOptions{IfModified: prev.ModifiedIndex}) // 200: the object exists
		return err
	})
	return rep, err
}

// mergePatch merges patch into node: objects merge recursively, null
// removes a field, anything else (arrays included) replaces it.
func mergePatch(node, patch map[string]any) {
	for k, v := range patch {
		switch v := v.(type) {
		case nil:
			delete(node, k)
		case map[string]any:
			if cur, ok := node[k].(map[string]any); ok {
				mergePatch(cur, v)
				continue
			}
			fresh := map[string]any{}
			mergePatch(fresh, v)
			node[k] = fresh
		default:
			node[k] = v
		}
	}
}

// patchPath sets node at the path to value (null removes the field),
// creating intermediate objects, as APISIX's core.table.patch does.
func patchPath(node map[string]any, path []string, value any) *apiError {
	cur := node
	for i, seg := range path[:len(path)-1] {
		next, ok := cur[seg]
		if !ok || next == nil {
			m := map[string]any{}
			cur[seg] = m
			cur = m
			continue
		}
		m, ok := next.(map[string]any)
		if !ok {
			return errMsg(http.StatusBadRequest, "invalid sub-path: /"+strings.Join(path[:i+1], "/"))
		}
		cur = m
	}
	last := path[len(path)-1]
	if value == nil {
		delete(cur, last)
	} else {
		cur[last] = value
	}
	return nil
}
