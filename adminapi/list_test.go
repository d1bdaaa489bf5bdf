package adminapi

import (
	"fmt"
	"net/url"
	"slices"
	"testing"
)

// listIDs returns the ids of a list answer and its total.
func listIDs(t *testing.T, r resp) ([]string, int) {
	t.Helper()
	m := r.json(t)
	var ids []string
	for _, it := range m["list"].([]any) {
		item := it.(map[string]any)
		if _, ok := item["createdIndex"]; !ok {
			t.Fatalf("list item without createdIndex: %v", item)
		}
		ids = append(ids, fmt.Sprint(item["value"].(map[string]any)["id"]))
	}
	return ids, int(m["total"].(float64))
}

func TestListFilters(t *testing.T) {
	e := newEnv(t, streamCfg())
	e.must(201, "PUT", "/apisix/admin/upstreams/2", `{"name":"redis","labels":{"env":"prod"},"nodes":{"127.0.0.1:6379":1}}`)
	e.must(201, "PUT", "/apisix/admin/upstreams/10", `{"labels":{"team":"a"},"nodes":{"127.0.0.1:80":1}}`)
	e.must(201, "PUT", "/apisix/admin/upstreams/1", `{"name":"mysql-a","labels":{"env":"dev"},"nodes":{"127.0.0.1:3306":1}}`)
	e.must(201, "PUT", "/apisix/admin/stream_routes/r1", `{"upstream_id":"1"}`)
	e.must(201, "PUT", "/apisix/admin/stream_routes/r2", `{"upstream_id":1}`)
	e.must(201, "PUT", "/apisix/admin/stream_routes/r3", `{"server_port":9100}`)

	tests := []struct {
		name, path string
		ids        []string
	}{
		{"key order", "/apisix/admin/upstreams", []string{"1", "10", "2"}},
		{"name regex", "/apisix/admin/upstreams?name=^my", []string{"1"}},
		{"unnamed matches nil", "/apisix/admin/upstreams?name=n", []string{"10"}},
		{"bad regex matches nothing", "/apisix/admin/upstreams?name=(", nil},
		{"label", "/apisix/admin/upstreams?label=env", []string{"1", "2"}},
		{"empty label matches nothing", "/apisix/admin/upstreams?label=", nil},
		{"name and label", "/apisix/admin/upstreams?label=env&name=redis", []string{"2"}},
		{"filter is type sensitive", "/apisix/admin/stream_routes?filter=" + url.QueryEscape("upstream_id=1"), []string{"r1"}},
		{"filter unknown key ignored", "/apisix/admin/stream_routes?filter=" + url.QueryEscape("foo=bar"), []string{"r1", "r2", "r3"}},
		{"filter missing field", "/apisix/admin/stream_routes?filter=" + url.QueryEscape("service_id=1"), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ids, total := listIDs(t, e.must(200, "GET", tc.path, ""))
			if !slices.Equal(ids, tc.ids) || total != len(tc.ids) {
				t.Fatalf("ids %v total %d, want %v", ids, total, tc.ids)
			}
		})
	}
}

func TestListPagination(t *testing.T) {
	e := newEnv(t, streamCfg())
	// Created in reverse key order: paging (creation order) and the plain
	// list (key order) differ.
	var created []string
	for i := 25; i >= 1; i-- {
		id := fmt.Sprintf("u%02d", i)
		created = append(created, id)
		e.must(201, "PUT", "/apisix/admin/upstreams/"+id, upstreamBody)
	}
	sorted := slices.Sorted(slices.Values(created))
	tests := []struct {
		name  string
		query string
		ids   []string
		total int
	}{
		{"no paging", "", sorted, 25},
		{"page 1", "?page=1&page_size=10", created[:10], 25},
		{"page 2", "?page=2&page_size=10", created[10:20], 25},
		{"last page", "?page=3&page_size=10", created[20:], 25},
		{"past the end", "?page=4&page_size=10", nil, 25},
		{"page below 1", "?page=0&page_size=10", created[:10], 25},
		{"page alone", "?page=2", sorted, 25},
		{"page_size not a number", "?page=1&page_size=ten", sorted, 25},
		{"total after filter, before paging", "?page=1&page_size=10&name=nil", created[:10], 25},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ids, total := listIDs(t, e.must(200, "GET", "/apisix/admin/upstreams"+tc.query, ""))
			if !slices.Equal(ids, tc.ids) || total != tc.total {
				t.Fatalf("ids %v total %d, want %v %d", ids, total, tc.ids, tc.total)
			}
		})
	}
	for _, size := range []string{"9", "501"} {
		r := e.must(400, "GET", "/apisix/admin/upstreams?page=1&page_size="+size, "")
		if r.body != "page_size must be between 10 and 500" {
			t.Fatalf("page_size %s: %q", size, r.body)
		}
	}
}

func TestListEmpty(t *testing.T) {
	e := newEnv(t, streamCfg())
	for _, kind := range []string{"stream_routes", "upstreams", "ssls"} {
		if r := e.must(200, "GET", "/apisix/admin/"+kind, ""); r.body != `{"list":[],"total":0}`+"\n" {
			t.Fatalf("%s: %q", kind, r.body)
		}
	}
}
