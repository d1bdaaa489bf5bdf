package adminapi

import (
	"cmp"
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"

	"github.com/caddy-apisix/stream/internal/lua"
)

// listBody is the GET-collection answer.
type listBody struct {
	// List is the page of objects.
	List []itemBody `json:"list"`
	// Total counts the objects after filtering, before paging.
	Total int `json:"total"`
}

// listFilterFields are the reference fields ?filter= may test, per kind
// (APISIX's list_filter_fields).
var listFilterFields = map[model.Kind][]string{
	model.StreamRoutes: {"service_id", "upstream_id"},
}

// listEntry is an object being listed.
type listEntry struct {
	o   *registry.Object
	obj map[string]any
}

// list answers GET on a collection (docs/apisix/admin-api.md#success-responses, docs/apisix/admin-api.md#lists): key order,
// then the name/label/filter filters, total, and paging.
func (h *Handler) list(q *request) (reply, error) {
	var objs []*registry.Object
	h.Registry.View(func(v registry.View) { objs = v.List(q.kind) })
	slices.SortFunc(objs, func(a, b *registry.Object) int { return strings.Compare(a.ID, b.ID) })

	// Objects are decoded only where something reads them: every one
	// for a filter, else only the page's (10,000 routes cost one page).
	_, byName := q.query["name"]
	_, byLabel := q.query["label"]
	_, byRef := q.query["filter"]
	filtered := byName || byLabel || byRef
	entries := make([]listEntry, 0, len(objs))
	for _, o := range objs {
		e := listEntry{o: o}
		if filtered {
			e.obj = decodeListed(o)
		}
		entries = append(entries, e)
	}
	if filtered {
		match := matchFilters(q)
		entries = slices.DeleteFunc(entries, func(e listEntry) bool { return !match(e.obj) })
	}
	total := len(entries)
	entries, aerr := paginate(q.query, entries)
	if aerr != nil {
		return reply{}, aerr
	}

	items := make([]itemBody, 0, len(entries))
	for _, e := range entries {
		if e.obj == nil {
			e.obj = decodeListed(e.o)
		}
		stripSecrets(q.kind, e.obj)
		val, err := model.EncodeObject(e.obj)
		if err != nil {
			val = []byte("{}")
		}
		items = append(items, itemBody{
			Key: objectKey(q.cfg, q.kind, e.o.ID), Value: json.RawMessage(val),
			CreatedIndex: e.o.CreatedIndex, ModifiedIndex: e.o.ModifiedIndex,
		})
	}
	return reply{status: http.StatusOK, body: listBody{List: items, Total: total}}, nil
}

// decodeListed decodes a stored value; one that does not decode lists as
// an empty object.
func decodeListed(o *registry.Object) map[string]any {
	obj, err := model.DecodeObject(o.AsStored())
	if err != nil {
		return map[string]any{}
	}
	return obj
}

// matchFilters returns the test of ?name= (a regex on value.name; an unnamed object
// is matched as the string "nil", as lua's tostring(nil) gives), ?label=
// (the labels have that key; an empty value matches nothing) and
// ?filter=k=v&... (exact, type-sensitive equality on the kind's
// reference fields; other keys are ignored).
func matchFilters(q *request) func(obj map[string]any) bool {
	var nameRE *regexp.Regexp
	badName := false
	if names, ok := q.query["name"]; ok {
		re, err := regexp.Compile(names[0])
		nameRE, badName = re, err != nil
	}
	var conds url.Values
	badFilter := false
	if f, ok := q.query["filter"]; ok {
		var err error
		conds, err = url.ParseQuery(f[0])
		badFilter = err != nil
	}
	return func(obj map[string]any) bool {
		if badName || badFilter {
			return false
		}
		if nameRE != nil {
			name := "nil"
			if v, present := obj["name"]; present {
				name, _ = lua.ToString(v)
			}
			if !nameRE.MatchString(name) {
				return false
			}
		}
		if labels, ok := q.query["label"]; ok {
			m, _ := obj["labels"].(map[string]any)
			if _, has := m[labels[0]]; !has || labels[0] == "" {
				return false
			}
		}
		for _, field := range listFilterFields[q.kind] {
			want, ok := conds[field]
			if !ok {
				continue
			}
			if got, isStr := obj[field].(string); !isStr || got != want[0] {
				return false
			}
		}
		return true
	}
}

// paginate pages only when page and page_size are both numbers:
// page_size must be within [10, 500] (a plain-text 400 otherwise), page
// below 1 is 1, and paged lists are in creation order.
func paginate(query url.Values, entries []listEntry) ([]listEntry, *apiError) {
	page, ok1 := lua.ToNumber(query.Get("page"))
	size, ok2 := lua.ToNumber(query.Get("page_size"))
	if !ok1 || !ok2 {
		return entries, nil
	}
	if size < 10 || size > 500 {
		return nil, &apiError{status: http.StatusBadRequest, body: "page_size must be between 10 and 500"}
	}
	if page < 1 {
		page = 1
	}
	slices.SortStableFunc(entries, func(a, b listEntry) int {
		return cmp.Compare(a.o.CreatedIndex, b.o.CreatedIndex)
	})
	// Lua's for i = from, to over list[i]: only integral positions exist.
	to := page * size
	from := to - size + 1
	var out []listEntry
	if from == math.Trunc(from) {
		for i := from; i <= to && i <= float64(len(entries)); i++ {
			if i >= 1 {
				out = append(out, entries[int(i)-1])
			}
		}
	}
	return out, nil
}
