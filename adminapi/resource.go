package adminapi

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"

	"github.com/caddy-apisix/stream/internal/lua"
)

// valueBody is the PUT/POST/PATCH answer (docs/apisix/admin-api.md#success-responses).
type valueBody struct {
	// Key is the etcd-style key, "/apisix/<kind>/<id>".
	Key string `json:"key"`
	// Value is the stored object without its private keys.
	Value json.RawMessage `json:"value"`
}

// itemBody is the GET answer and a list entry: valueBody plus the store
// revisions.
type itemBody struct {
	// Key is the etcd-style key, "/apisix/<kind>/<id>".
	Key string `json:"key"`
	// Value is the stored object without its private keys.
	Value json.RawMessage `json:"value"`
	// CreatedIndex is the store revision that created the object.
	CreatedIndex int64 `json:"createdIndex"`
	// ModifiedIndex is the store revision of its latest write.
	ModifiedIndex int64 `json:"modifiedIndex"`
}

// deletedBody is the DELETE answer.
type deletedBody struct {
	// Deleted is etcd's count of deleted keys, always "1".
	Deleted string `json:"deleted"`
	// Key is the deleted key.
	Key string `json:"key"`
}

func objectKey(cfg *Config, kind model.Kind, id string) string {
	return cfg.keyPrefix() + "/" + string(kind) + "/" + id
}

// staticError refuses a write to an object from the Caddy config.
func staticError(kind model.Kind, id string) *apiError {
	return errMsg(http.StatusBadRequest, kind.Noun()+" ["+id+"] is defined in the Caddy config and is read-only;"+
		" change it there")
}

// existingWritable returns the stored object that a PATCH or DELETE
// changes: 404 when there is none, 400 when it comes from the Caddy config.
func existingWritable(tx *registry.Tx, kind model.Kind, id string) (*registry.Object, error) {
	prev := tx.Get(kind, id)
	if prev == nil {
		return nil, keyNotFound()
	}
	if prev.Static {
		return nil, staticError(kind, id)
	}
	return prev, nil
}

// checkConf is APISIX's resource check_conf steps 1-3 (docs/apisix/admin-api.md#validation-order):
// body present, id rules, forbidden timestamps. It returns the object,
// with "id" set to the URL id when there is one, and the id to store it
// under (for POST, "").
func checkConf(q *request, needID bool) (map[string]any, string, *apiError) {
	noun := q.kind.Noun()
	if !q.hasBody || q.body == nil {
		return nil, "", errMsg(http.StatusBadRequest, "missing configurations")
	}
	obj, ok := q.body.(map[string]any)
	if !ok {
		return nil, "", errMsg(http.StatusBadRequest,
			"invalid configuration: wrong type: expected object, got "+lua.Type(q.body))
	}
	bodyID, hasBodyID := obj["id"]
	id := q.id
	if !needID {
		if id != "" || hasBodyID {
			return nil, "", errMsg(http.StatusBadRequest, "wrong "+noun+" id, do not need it")
		}
	} else {
		if id == "" && !hasBodyID {
			return nil, "", errMsg(http.StatusBadRequest, "missing "+noun+" id")
		}
		if hasBodyID {
			s, _ := lua.ToString(bodyID)
			if id != "" && s != id {
				return nil, "", errMsg(http.StatusBadRequest, "wrong "+noun+" id")
			}
			if id == "" {
				id = s // the body's id keeps its JSON type in the value
			}
		}
		if q.id != "" {
			obj["id"] = q.id
		}
	}
	if msg := forbiddenTimes(obj); msg != "" {
		return nil, "", errMsg(http.StatusBadRequest, msg)
	}
	return obj, id, nil
}

// forbiddenTimes is APISIX's check_forbidden_properties. The text has two
// spaces after the colon, as APISIX's has.
func forbiddenTimes(obj map[string]any) string {
	const prefix = "the property is forbidden: "
	fields := []string{"create_time", "update_time"}
	for _, f := range fields {
		if luaTruthy(obj, f) {
			return prefix + " " + f
		}
	}
	for _, sub := range []string{"upstream", "plugins"} {
		m, ok := obj[sub].(map[string]any)
		if !ok {
			continue
		}
		for _, f := range fields {
			if luaTruthy(m, f) {
				return prefix + " " + sub + "." + f
			}
		}
	}
	return ""
}

// luaTruthy reports whether m[k] is neither absent nor false (JSON null
// decodes to a truthy userdata in cjson).
func luaTruthy(m map[string]any, k string) bool {
	v, ok := m[k]
	if !ok {
		return false
	}
	b, isBool := v.(bool)
	return !isBool || b
}

// validID guards the store key: model validation already limits ids to
// [a-zA-Z0-9-_.] or positive integers.
func validID(id string) bool {
	return id != "" && !strings.ContainsAny(id, "/?#")
}

// validate runs the model checks (docs/apisix/admin-api.md#validation-order, docs/apisix/upstreams.md#upstream-resource-checks, docs/apisix/tls.md#ssl-object-schema)
// with references resolved inside the transaction.
func validate(tx *registry.Tx, kind model.Kind, obj map[string]any) *apiError {
	return validateWith(refsFor(tx), kind, obj)
}

// check validates obj for q's kind. With Config.StoreBody the checks run
// on a copy, so the schema defaults they fill in stay out of the stored
// value, as APISIX's check_conf (apisix/admin/resource.lua conf_for_check).
func (q *request) check(tx *registry.Tx, obj map[string]any) *apiError {
	if !q.cfg.StoreBody {
		return validate(tx, q.kind, obj)
	}
	b, err := model.EncodeObject(obj)
	if err != nil {
		return errMsg(http.StatusBadRequest, "invalid configuration: "+err.Error())
	}
	cp, err := model.DecodeObject(b)
	if err != nil {
		return errMsg(http.StatusBadRequest, "invalid configuration: "+err.Error())
	}
	return validate(tx, q.kind, cp)
}

// validateWith runs the model checks with the given references.
func validateWith(refs model.Refs, kind model.Kind, obj map[string]any) *apiError {
	if err := model.Check(kind, obj, refs); err != nil {
		return errMsg(http.StatusBadRequest, err.Error())
	}
	return nil
}

// storeObject stamps, encodes and writes obj, and builds the answer.
// createTime is carried over from prev when it has one (APISIX's
// inject_conf_with_prev_conf).
func (h *Handler) storeObject(tx *registry.Tx, q *request, id string, obj map[string]any, prev *registry.Object) (reply, error) {
	now := h.clock()
	obj["create_time"] = now
	if prev != nil {
		if old, err := model.DecodeObject(prev.Value); err == nil && old["create_time"] != nil {
			obj["create_time"] = old["create_time"]
		}
	}
	obj["update_time"] = now
	return h.write(tx, q, id, obj, registry.PutOptions{TTL: ttlOf(q)})
}

// ttlOf is the ?ttl= of a PUT or POST, in whole seconds: the object's
// etcd lease (apisix/core/etcd.lua set, push). It was checked to be a
// number; values below one second mean none.
func ttlOf(q *request) int64 {
	v, ok := q.query["ttl"]
	if !ok {
		return 0
	}
	n, _ := lua.ToNumber(v[0])
	return int64(n)
}

// write encodes and stores obj; 201 when it is new, else 200.
func (h *Handler) write(tx *registry.Tx, q *request, id string, obj map[string]any, opts registry.PutOptions) (reply, error) {
	val, err := model.EncodeObject(obj)
	if err != nil {
		return reply{}, errMsg(http.StatusBadRequest, "invalid configuration: "+err.Error())
	}
	o, created, err := tx.PutWith(q.kind, id, val, opts)
	if err != nil {
		return reply{}, err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return reply{status: status, body: valueBody{
		Key: objectKey(q.cfg, q.kind, id), Value: publicValue(q.kind, o.Value)}}, nil
}

// put creates or replaces an object (docs/apisix/admin-api.md#validation-order, docs/apisix/admin-api.md#success-responses).
func (h *Handler) put(q *request) (reply, error) {
	obj, id, aerr := checkConf(q, true)
	if aerr != nil {
		return reply{}, aerr
	}
	var rep reply
	err := h.Registry.Update(func(tx *registry.Tx) error {
		prev := tx.Get(q.kind, id)
		if prev != nil && prev.Static {
			return staticError(q.kind, id)
		}
		if aerr := q.check(tx, obj); aerr != nil {
			return aerr
		}
		if !validID(id) {
			return errMsg(http.StatusBadRequest,
				`invalid configuration: property "id" validation failed: object matches none of the required`)
		}
		var err error
		rep, err = h.storeObject(tx, q, id, obj, prev)
		return err
	})
	return rep, err
}

// post creates an object under a new 20-digit id.
func (h *Handler) post(q *request) (reply, error) {
	obj, _, aerr := checkConf(q, false)
	if aerr != nil {
		return reply{}, aerr
	}
	var rep reply
	err := h.Registry.Update(func(tx *registry.Tx) error {
		if aerr := q.check(tx, obj); aerr != nil {
			return aerr
		}
		id, err := tx.NextID()
		if err != nil {
			return err
		}
		obj["id"] = id
		rep, err = h.storeObject(tx, q, id, obj, nil)
		return err
	})
	return rep, err
}

// get answers one object with its store revisions.
func (h *Handler) get(q *request) (reply, error) {
	var o *registry.Object
	h.Registry.View(func(v registry.View) { o = v.Get(q.kind, q.id) })
	if o == nil {
		return reply{}, keyNotFound()
	}
	return reply{status: http.StatusOK, body: itemBody{
		Key: objectKey(q.cfg, q.kind, o.ID), Value: publicValue(q.kind, o.AsStored()),
		CreatedIndex: o.CreatedIndex, ModifiedIndex: o.ModifiedIndex,
	}}, nil
}

// del deletes an object unless something still refers to it
// (docs/apisix/admin-api.md#delete-reference-rules; ?force=true skips the reference checks as in APISIX).
func (h *Handler) del(q *request) (reply, error) {
	if q.id == "" {
		return reply{}, errMsg(http.StatusBadRequest, "missing "+q.kind.Noun()+" id")
	}
	var rep reply
	err := h.Registry.Update(func(tx *registry.Tx) error {
		if _, err := existingWritable(tx, q.kind, q.id); err != nil {
			return err
		}
		if q.query.Get("force") != "true" {
			if aerr := deleteCheck(tx, q.kind, q.id); aerr != nil {
				return aerr
			}
		}
		if _, err := tx.Delete(q.kind, q.id); err != nil {
			return err
		}
		rep = reply{status: http.StatusOK, body: deletedBody{Deleted: "1", Key: objectKey(q.cfg, q.kind, q.id)}}
		return nil
	})
	return rep, err
}
