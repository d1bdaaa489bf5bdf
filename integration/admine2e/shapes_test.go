//go:build linux

package admine2e

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// TestAdminAPISuccess checks the success answers of docs/apisix/admin-api.md#success-responses on
// the real process: statuses, headers, body shapes, create_time carried
// over, POST ids, list order, filters and paging.
func TestAdminAPISuccess(t *testing.T) {
	p := newInstance(t, "", appsConfig(apisixApp(map[string]any{
		"stream_proxy": map[string]any{"tcp": []any{hostPort("127.0.0.1", freePort(t))}},
	}))).start()
	const sr = "/apisix/admin/stream_routes"
	route := `{"server_port":2000,"name":"mysql","labels":{"env":"prod"},"upstream":{"nodes":{"127.0.0.1:1995":1},"type":"roundrobin"}}`

	st, h, body, err := p.callH("PUT", sr+"/1", adminKey, route, nil)
	if err != nil || st != 201 {
		t.Fatalf("PUT new: %v %s", err, answer(st, body))
	}
	for k, want := range map[string]string{"X-Api-Version": "v3", "Server": "APISIX/3.18.0", "Content-Type": "application/json"} {
		if got := h.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if !strings.HasSuffix(body, "}\n") {
		t.Errorf("body does not end with a newline: %q", body)
	}
	v := mustJSON(t, body)
	val := v["value"].(map[string]any)
	if v["key"] != "/apisix/stream_routes/1" || val["id"] != "1" || val["create_time"] == nil ||
		val["create_time"] != val["update_time"] || v["createdIndex"] != nil {
		t.Errorf("PUT body %s: want key, value with id \"1\" and equal create/update times, no createdIndex", body)
	}
	created := val["create_time"]

	time.Sleep(1100 * time.Millisecond) // update_time is in seconds
	body = p.must(t, "PUT", sr+"/1", route, 200)
	val = mustJSON(t, body)["value"].(map[string]any)
	if val["create_time"] != created || val["update_time"] == created {
		t.Errorf("PUT again: create_time %v update_time %v, want create_time %v kept and update_time newer", val["create_time"], val["update_time"], created)
	}

	// A PUT to the collection keeps the body id's JSON type.
	body = p.must(t, "PUT", sr, `{"id":7,"server_port":2007}`, 201)
	if !strings.Contains(body, `"id":7,`) && !strings.Contains(body, `"id":7}`) {
		t.Errorf("PUT with integer body id: %s, want \"id\":7", body)
	}

	body = p.must(t, "POST", sr, `{"server_port":2001}`, 201)
	v = mustJSON(t, body)
	pid, _ := v["value"].(map[string]any)["id"].(string)
	if !regexp.MustCompile(`^\d{20}$`).MatchString(pid) || v["key"] != "/apisix/stream_routes/"+pid {
		t.Errorf("POST: %s, want a 20-digit id and the matching key", body)
	}

	body = p.must(t, "GET", sr+"/1", "", 200)
	v = mustJSON(t, body)
	if v["key"] != "/apisix/stream_routes/1" || v["createdIndex"] == nil || v["modifiedIndex"] == nil {
		t.Errorf("GET: %s, want key, value, createdIndex, modifiedIndex", body)
	}
	if ci, mi := num(t, v["createdIndex"]), num(t, v["modifiedIndex"]); mi <= ci {
		t.Errorf("GET after an update: createdIndex %d, modifiedIndex %d; want modified > created", ci, mi)
	}

	list := func(q string) (ids []string, total int64) {
		t.Helper()
		v := mustJSON(t, p.must(t, "GET", sr+q, "", 200))
		for _, it := range v["list"].([]any) {
			m := it.(map[string]any)
			ids = append(ids, strings.TrimPrefix(m["key"].(string), "/apisix/stream_routes/"))
		}
		return ids, num(t, v["total"])
	}
	check := func(q string, want []string, total int64) {
		t.Helper()
		ids, tot := list(q)
		if strings.Join(ids, ",") != strings.Join(want, ",") || tot != total {
			t.Errorf("GET list%s: %v total %d, want %v total %d", q, ids, tot, want, total)
		}
	}
	check("", []string{pid, "1", "7"}, 3)                     // key order
	check("?page=1&page_size=10", []string{"1", "7", pid}, 3) // creation order
	check("?page=2&page_size=10", nil, 3)
	check("?name=mysql", []string{"1"}, 1)
	check("?name=n", []string{pid, "7"}, 2) // unnamed items match as "nil"; "mysql" has no n
	check("?label=env", []string{"1"}, 1)
	check("?label=", nil, 0)

	p.must(t, "PUT", "/apisix/admin/upstreams/u1", `{"nodes":{"127.0.0.1:1995":1}}`, 201)
	p.must(t, "PUT", sr+"/9", `{"upstream_id":"u1"}`, 201)
	check("?filter="+escape("upstream_id=u1"), []string{"9"}, 1)

	body = p.must(t, "DELETE", sr+"/9", "", 200)
	if body != `{"deleted":"1","key":"/apisix/stream_routes/9"}`+"\n" {
		t.Errorf("DELETE: %q", body)
	}
	p.must(t, "GET", sr+"/9", "", 404)
	p.must(t, "DELETE", "/apisix/admin/upstreams/u1", "", 200) // no longer used

	empty := p.must(t, "GET", "/apisix/admin/ssls", "", 200)
	if empty != `{"list":[],"total":0}`+"\n" {
		t.Errorf("empty list: %q", empty)
	}
}

func escape(s string) string {
	return strings.NewReplacer("=", "%3D", "&", "%26").Replace(s)
}

// num reads a JSON integer.
func num(t testing.TB, v any) int64 {
	t.Helper()
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("%v is not a number", v)
	}
	i, err := n.Int64()
	if err != nil {
		t.Fatalf("%v: %v", v, err)
	}
	return i
}

// TestSecretsNeverReturned: private keys of SSL objects and upstream
// client certificates, dynamic or static, appear in no Admin API answer
// and not in Caddy's log.
func TestSecretsNeverReturned(t *testing.T) {
	ca := e2e.NewCA(t, "admine2e test CA")
	sCert, sKey, _ := leaf(t, ca, "static.test")
	cert, key, _ := leaf(t, ca, "dyn.test")
	ccert, ckey, _ := leaf(t, ca, "client.test")
	p := newInstance(t, "", appsConfig(apisixApp(map[string]any{
		"stream_proxy": map[string]any{"tcp": []any{hostPort("127.0.0.1", freePort(t))}},
		"ssls":         []any{map[string]any{"id": "static-ssl", "cert": sCert, "key": sKey, "sni": "static.test"}},
	}))).start()
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
	}
	tls := map[string]any{"client_cert": ccert, "client_key": ckey}
	writes := []struct{ method, path, body string }{
		{"PUT", "/apisix/admin/ssls/1", enc(map[string]any{"cert": cert, "key": key, "sni": "dyn.test"})},
		{"POST", "/apisix/admin/ssls", enc(map[string]any{"cert": cert, "key": key, "snis": []string{"dyn2.test"}})},
		{"PUT", "/apisix/admin/ssls/2", enc(map[string]any{"cert": cert, "key": key, "sni": "dyn3.test",
			"certs": []string{ccert}, "keys": []string{ckey}})},
		{"PUT", "/apisix/admin/upstreams/1", enc(map[string]any{"nodes": map[string]any{"127.0.0.1:1": 1}, "tls": tls})},
		{"PUT", "/apisix/admin/stream_routes/1", enc(map[string]any{"upstream": map[string]any{
			"nodes": map[string]any{"127.0.0.1:1": 1}, "tls": tls}})},
		{"PATCH", "/apisix/admin/ssls/1", `{"desc":"patched"}`},
		{"PATCH", "/apisix/admin/upstreams/1", `{"desc":"patched"}`},
	}
	var answers []string
	for _, w := range writes {
		st, body, err := p.call(w.method, w.path, adminKey, w.body, nil)
		if err != nil || st/100 != 2 {
			t.Fatalf("%s %s: %v %s", w.method, w.path, err, answer(st, body))
		}
		answers = append(answers, w.method+" "+w.path+": "+body)
	}
	for _, path := range []string{"/apisix/admin/ssls", "/apisix/admin/ssls/1", "/apisix/admin/ssls/2",
		"/apisix/admin/ssls/static-ssl", "/apisix/admin/upstreams", "/apisix/admin/upstreams/1",
		"/apisix/admin/stream_routes", "/apisix/admin/stream_routes/1", "/apisix/admin/ssls?page=1&page_size=10"} {
		answers = append(answers, "GET "+path+": "+p.must(t, "GET", path, "", 200))
	}
	secret := regexp.MustCompile(`"(key|keys|client_key)":|PRIVATE KEY`)
	for _, a := range answers {
		// the answers' own "key" fields name the object, not a secret
		if m := secret.FindString(strings.ReplaceAll(a, `"key":"/apisix/`, "")); m != "" {
			head, _, _ := strings.Cut(a, ": ")
			t.Errorf("%s returns a private key (%s)", head, m)
		}
	}
	// The certificates themselves are returned.
	if !strings.Contains(answers[len(answers)-3], `"client_cert":`) {
		t.Errorf("client_cert missing from %s", answers[len(answers)-3])
	}
	p.Stop()
	if strings.Contains(p.Output(), "PRIVATE KEY") {
		t.Errorf("a private key appears in Caddy's log")
	}
}

// TestConcurrentWrites: parallel PUTs of one new id create it once (one
// 201, the rest 200, create_time kept); parallel POSTs get distinct ids.
func TestConcurrentWrites(t *testing.T) {
	p := newInstance(t, "", appsConfig(apisixApp(map[string]any{
		"stream_proxy": map[string]any{"tcp": []any{hostPort("127.0.0.1", freePort(t))}},
	}))).start()
	const n = 16
	type res struct {
		st   int
		body string
		err  error
	}
	run := func(method, path string) []res {
		out := make([]res, n)
		done := make(chan int, n)
		for i := range n {
			go func() {
				st, b, err := p.call(method, path, adminKey, `{"server_port":5}`, nil)
				out[i] = res{st, b, err}
				done <- i
			}()
		}
		for range n {
			<-done
		}
		return out
	}
	created := 0
	times := map[string]bool{}
	for _, r := range run("PUT", "/apisix/admin/stream_routes/same") {
		if r.err != nil || r.st/100 != 2 {
			t.Fatalf("PUT: %v %s", r.err, answer(r.st, r.body))
		}
		if r.st == 201 {
			created++
		}
		times[string(mustJSON(t, r.body)["value"].(map[string]any)["create_time"].(json.Number))] = true
	}
	if created != 1 || len(times) != 1 {
		t.Errorf("%d parallel PUTs of a new id: %d answered 201 and %d create_times, want 1 and 1", n, created, len(times))
	}
	ids := map[string]bool{}
	for _, r := range run("POST", "/apisix/admin/stream_routes") {
		if r.err != nil || r.st != 201 {
			t.Fatalf("POST: %v %s", r.err, answer(r.st, r.body))
		}
		ids[mustJSON(t, r.body)["value"].(map[string]any)["id"].(string)] = true
	}
	if len(ids) != n {
		t.Errorf("%d parallel POSTs gave %d distinct ids", n, len(ids))
	}
	if total := num(t, mustJSON(t, p.must(t, "GET", "/apisix/admin/stream_routes", "", 200))["total"]); total != n+1 {
		t.Errorf("%d routes listed, want %d", total, n+1)
	}
}
