package standalone

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"

	"github.com/caddy-apisix/stream/internal/lua"
)

// ItemError is one problem of a document, in the shape of APISIX's
// POST /apisix/admin/configs/validate errors[] entries.
type ItemError struct {
	// ResourceType is the top-level key ("stream_routes").
	ResourceType string `json:"resource_type"`
	// ResourceID is the item's id as written, "" when it has none; absent
	// for errors of the collection itself.
	ResourceID any `json:"resource_id,omitempty"`
	// Index is the 0-based position of the item; absent for errors of the
	// collection itself.
	Index *int `json:"index,omitempty"`
	// Error is the text the Admin API gives for the same object.
	Error string `json:"error"`

	// short is the text of a refused PUT, when it differs from Error.
	short string
}

// Message names the object: "invalid stream_routes[2]: <error>".
func (e ItemError) Message() string {
	if e.Index == nil {
		return e.Error
	}
	return "invalid " + e.ResourceType + "[" + strconv.Itoa(*e.Index) + "]: " + e.Error
}

// Checked is a valid document: the objects to publish, by kind in
// document order, each as the Admin API would store it.
type Checked struct {
	Objects []*registry.Object
}

// Check validates every object of doc as an Admin API body of its kind
// (apisix/admin/config_validate.lua validate_configuration), references
// resolved inside the document. It reports every problem, in a fixed
// order: collections as listed in resources, items in order.
func Check(doc Document) (*Checked, []ItemError) { return check(doc, true) }

// Validate is Check without the reference checks, as APISIX's
// validate_configuration (skip_references_check): a client validates the
// objects it changes, which may refer to objects it does not send.
func Validate(doc Document) []ItemError {
	_, errs := check(doc, false)
	return errs
}

func check(doc Document, resolveRefs bool) (*Checked, []ItemError) {
	var errs []ItemError
	for _, r := range resources {
		if v, ok := doc[confVersionKey(r.key)]; ok {
			if _, isNum := number(v); !isNum {
				msg := confVersionKey(r.key) + " must be a number"
				errs = append(errs, ItemError{ResourceType: r.key, Error: msg + ", got " + lua.Type(v), short: msg})
			}
		}
	}
	items := map[string][]any{}
	for _, r := range resources {
		list, err := collection(doc, r.key)
		if err != "" {
			errs = append(errs, ItemError{ResourceType: r.key, Error: err})
			continue
		}
		items[r.key] = list
	}
	// references resolve against the whole document, whatever its order
	ids := map[string]map[string]bool{}
	sslTypes := map[string]string{}
	for _, r := range resources {
		ids[r.key] = map[string]bool{}
		for i, it := range items[r.key] {
			obj, ok := it.(map[string]any)
			if !ok {
				continue
			}
			id := itemID(obj, i)
			ids[r.key][id] = true
			if r.kind == model.SSLs {
				t, _ := obj["type"].(string)
				if t == "" {
					t = "server"
				}
				sslTypes[id] = t
			}
		}
	}
	refs := model.Refs{
		UpstreamExists: func(id string) bool { return ids["upstreams"][id] },
		SSLType: func(id string) (string, bool) {
			t, ok := sslTypes[id]
			return t, ok
		},
		ServiceExists: func(id string) bool { return ids["services"][id] },
	}
	if !resolveRefs {
		refs = model.Refs{
			UpstreamExists: func(string) bool { return true },
			SSLType: func(id string) (string, bool) {
				if t, ok := sslTypes[id]; ok {
					return t, true
				}
				return "client", true
			},
			ServiceExists: func(string) bool { return true },
		}
	}

	out := &Checked{}
	for _, r := range resources {
		seen := map[string]bool{}
		for i, it := range items[r.key] {
			fail := func(msg string) {
				errs = append(errs, ItemError{ResourceType: r.key, ResourceID: rawID(it), Index: &i, Error: msg})
			}
			if r.httpOnly {
				fail("this gateway serves stream routes only: " + r.key + " are not supported")
				continue
			}
			obj, ok := it.(map[string]any)
			if !ok {
				fail("invalid configuration: wrong type: expected object, got " + lua.Type(it))
				continue
			}
			if r.kind == "" { // plugins: not checked, as APISIX
				continue
			}
			obj = model.DeepCopy(obj).(map[string]any)
			if msg := checkModifiedIndex(obj); msg != "" {
				fail(msg)
				continue
			}
			// the document's version of the object, not part of it
			delete(obj, "modifiedIndex")
			id := itemID(obj, i)
			if err := checkObject(r.kind, obj, refs); err != nil {
				fail(err.Error())
				continue
			}
			if seen[id] {
				fail("found duplicate id " + id + " in " + r.key)
				continue
			}
			seen[id] = true
			if _, has := obj["id"]; !has {
				obj["id"] = id
			}
			val, err := model.EncodeObject(obj)
			if err != nil {
				fail("invalid configuration: " + err.Error())
				continue
			}
			out.Objects = append(out.Objects, &registry.Object{Kind: r.kind, ID: id, Value: val})
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

// collection returns the items of a top-level key: absent, null and
// empty (an empty Lua table encodes as {}) are no items.
func collection(doc Document, key string) ([]any, string) {
	switch v := doc[key].(type) {
	case nil:
		return nil, ""
	case []any:
		return v, ""
	case map[string]any:
		if len(v) == 0 {
			return nil, ""
		}
	}
	return nil, key + " must be an array, got " + lua.Type(doc[key])
}

// itemID is the id an item is stored under: its id, the plugin name for
// plugin_metadata, else "arr_<n>" as config_yaml.lua names unnamed items.
func itemID(obj map[string]any, i int) string {
	if id := model.IDString(obj["id"]); id != "" {
		return id
	}
	return "arr_" + strconv.Itoa(i+1)
}

// rawID is the item's id as written, for errors[].resource_id (APISIX's
// item.id or item.username or "").
func rawID(it any) any {
	obj, ok := it.(map[string]any)
	if !ok {
		return ""
	}
	if id, ok := obj["id"]; ok && id != nil {
		return id
	}
	if u, ok := obj["username"]; ok && u != nil {
		return u
	}
	return ""
}

// checkModifiedIndex is the integer modifiedIndex that
// apisix/admin/standalone.lua patch_schema adds to every resource schema.
func checkModifiedIndex(obj map[string]any) string {
	v, ok := obj["modifiedIndex"]
	if !ok {
		return ""
	}
	if n, isNum := v.(json.Number); isNum {
		if _, err := strconv.ParseInt(string(n), 10, 64); err == nil {
			return ""
		}
	}
	return `invalid configuration: property "modifiedIndex" validation failed: wrong type: expected integer, got ` + lua.Type(v)
}

// checkObject runs the Admin API check of kind.
func checkObject(kind model.Kind, obj map[string]any, refs model.Refs) error {
	check, ok := checkers[kind]
	if !ok {
		return fmt.Errorf("%s are not supported by this build", kind)
	}
	return check(obj, refs)
}
