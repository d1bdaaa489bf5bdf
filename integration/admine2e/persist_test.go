//go:build linux

package admine2e

import (
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
	"github.com/caddy-apisix/stream/store"
)

// storedItem is one object as a GET list shows it.
type storedItem struct {
	value                       string
	createdIndex, modifiedIndex int64
}

// listAll returns every object of a kind by id, failing the test unless
// the list answers 200 and every item parses.
func listAll(t testing.TB, p *caddyProc, kind string) map[string]storedItem {
	t.Helper()
	body := p.must(t, http.MethodGet, "/apisix/admin/"+kind, "", http.StatusOK)
	var v struct {
		List []struct {
			Key           string          `json:"key"`
			Value         json.RawMessage `json:"value"`
			CreatedIndex  int64           `json:"createdIndex"`
			ModifiedIndex int64           `json:"modifiedIndex"`
		} `json:"list"`
		Total int `json:"total"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("GET %s: %v: %q", kind, err, body)
	}
	if v.Total != len(v.List) {
		t.Fatalf("GET %s: total %d for %d items", kind, v.Total, len(v.List))
	}
	out := map[string]storedItem{}
	for _, it := range v.List {
		id, ok := strings.CutPrefix(it.Key, "/apisix/"+kind+"/")
		if !ok {
			t.Fatalf("GET %s: key %q", kind, it.Key)
		}
		obj := mustJSON(t, string(it.Value))
		if fmt.Sprint(obj["id"]) != id {
			t.Fatalf("GET %s: item %s has id %v", kind, it.Key, obj["id"])
		}
		out[id] = storedItem{value: string(it.Value), createdIndex: it.CreatedIndex, modifiedIndex: it.ModifiedIndex}
	}
	return out
}

// pagedOrder is the ids of a kind in creation order (paged lists sort by
// createdIndex).
func pagedOrder(t testing.TB, p *caddyProc, kind string) []string {
	t.Helper()
	v := mustJSON(t, p.must(t, http.MethodGet, "/apisix/admin/"+kind+"?page=1&page_size=500", "", http.StatusOK))
	var ids []string
	for _, it := range v["list"].([]any) {
		ids = append(ids, strings.TrimPrefix(it.(map[string]any)["key"].(string), "/apisix/"+kind+"/"))
	}
	return ids
}

// TestPersistenceAcrossRestart: objects written with PUT, POST and PATCH
// come back after a restart with the same ids, values (create_time
// included), createdIndex/modifiedIndex and creation order; deleted ones
// stay deleted; POST ids keep increasing; restored routes route traffic.
func TestPersistenceAcrossRestart(t *testing.T) {
	be := startBackend(t, "be", "127.0.0.1:0", false, nil)
	lport := freePort(t)
	listen := hostPort("127.0.0.1", lport)
	ca := e2e.NewCA(t, "admine2e test CA")
	cert, key, _ := leaf(t, ca, "p.test")
	in := newInstance(t, "", appsConfig(apisixApp(map[string]any{
		"stream_proxy":  map[string]any{"tcp": []any{listen}},
		"upstreams":     []any{map[string]any{"id": "static-up", "nodes": map[string]any{"127.0.0.1:1": 1}}},
		"stream_routes": []any{map[string]any{"id": "static-r", "server_port": 1, "upstream_id": "static-up"}},
	})))
	p := in.start()
	sslBody, _ := json.Marshal(map[string]any{"cert": cert, "key": key, "sni": "p.test"})
	p.must(t, "PUT", "/apisix/admin/upstreams/u1", `{"nodes":{"`+be.addr()+`":1}}`, 201)
	p.must(t, "PUT", "/apisix/admin/stream_routes/r1", fmt.Sprintf(`{"server_port":%d,"upstream_id":"u1"}`, lport), 201)
	var postIDs []string
	for i := range 3 {
		body := p.must(t, "POST", "/apisix/admin/stream_routes", fmt.Sprintf(`{"server_port":%d,"desc":"post %d"}`, 3000+i, i), 201)
		postIDs = append(postIDs, mustJSON(t, body)["value"].(map[string]any)["id"].(string))
	}
	body := p.must(t, "POST", "/apisix/admin/upstreams", `{"nodes":{"127.0.0.1:2":1}}`, 201)
	postIDs = append(postIDs, mustJSON(t, body)["value"].(map[string]any)["id"].(string))
	p.must(t, "PUT", "/apisix/admin/ssls/s1", string(sslBody), 201)
	p.must(t, "PUT", "/apisix/admin/stream_routes/10", `{"server_port":3010}`, 201)
	p.must(t, "PUT", "/apisix/admin/stream_routes/10", `{"server_port":3011}`, 200)
	p.must(t, "PATCH", "/apisix/admin/upstreams/u1", `{"desc":"patched"}`, 200)
	// ids the store must escape: dots, case, an integer body id
	for _, id := range []string{`".."`, `"."`, `"A"`, `"a"`, `"a.b-c_d"`, `77`} {
		p.must(t, "PUT", "/apisix/admin/stream_routes", `{"id":`+id+`,"server_port":3013}`, 201)
	}
	p.must(t, "PUT", "/apisix/admin/stream_routes/gone", `{"server_port":3012}`, 201)
	p.must(t, "DELETE", "/apisix/admin/stream_routes/gone", "", 200)

	kinds := []string{"stream_routes", "upstreams", "ssls"}
	before := map[string]map[string]storedItem{}
	order := map[string][]string{}
	for _, k := range kinds {
		before[k] = listAll(t, p, k)
		order[k] = pagedOrder(t, p, k)
	}
	if res := probe(t, listen, nil, false); res.answer != "be" {
		t.Fatalf("before the restart: %v", res)
	}
	p.Stop()

	p2 := in.start()
	for _, k := range kinds {
		after := listAll(t, p2, k)
		if len(after) != len(before[k]) {
			t.Errorf("%s: %d objects after the restart, %d before", k, len(after), len(before[k]))
		}
		for id, b := range before[k] {
			a, ok := after[id]
			switch {
			case !ok:
				t.Errorf("%s/%s is gone after the restart", k, id)
			case a.value != b.value:
				t.Errorf("%s/%s changed:\nbefore %s\nafter  %s", k, id, b.value, a.value)
			case strings.HasPrefix(id, "static-"):
				// Static objects are re-added from the config on every
				// start; their indexes are new, their values are not.
			case a.createdIndex != b.createdIndex || a.modifiedIndex != b.modifiedIndex:
				t.Errorf("%s/%s indexes %d/%d after the restart, %d/%d before", k, id,
					a.createdIndex, a.modifiedIndex, b.createdIndex, b.modifiedIndex)
			}
		}
		dyn := func(ids []string) []string {
			return slices.DeleteFunc(slices.Clone(ids), func(s string) bool { return strings.HasPrefix(s, "static-") })
		}
		if got := pagedOrder(t, p2, k); !slices.Equal(dyn(got), dyn(order[k])) {
			t.Errorf("%s creation order %v after the restart, %v before", k, got, order[k])
		}
	}
	if _, ok := listAll(t, p2, "stream_routes")["gone"]; ok {
		t.Errorf("a deleted route came back")
	}
	if res := probe(t, listen, nil, false); res.answer != "be" {
		t.Errorf("after the restart, route r1: %v, want the backend", res)
	}
	body = p2.must(t, "POST", "/apisix/admin/stream_routes", `{"server_port":3100}`, 201)
	newID := mustJSON(t, body)["value"].(map[string]any)["id"].(string)
	for _, old := range postIDs {
		if newID <= old {
			t.Errorf("POST after the restart gave id %s, not above the earlier %s", newID, old)
		}
	}
	v := mustJSON(t, p2.must(t, "GET", "/apisix/admin/stream_routes/"+newID, "", 200))
	var maxIdx int64
	for _, k := range kinds {
		for id, it := range before[k] {
			if !strings.HasPrefix(id, "static-") {
				maxIdx = max(maxIdx, it.modifiedIndex)
			}
		}
	}
	if ci := num(t, v["createdIndex"]); ci <= maxIdx {
		t.Errorf("createdIndex %d after the restart, not above the earlier %d", ci, maxIdx)
	}
}

// crashModel is what the client knows about route ids after a round of
// writes: the acknowledged state, and for the one write per worker that
// was in flight at the crash, both possible outcomes.
type crashModel struct {
	mu sync.Mutex
	// state is the acknowledged desc of each id; "" means deleted.
	state map[string]string
	// inflight maps an id to the desc it would have if the write landed
	// ("" for a delete); pendingPosts holds in-flight POSTs' descs.
	inflight     map[string]string
	pendingPosts map[string]bool
	// postIDs are the ids acknowledged POSTs returned.
	postIDs []string
}

// TestCrashDurability writes routes from three clients (PUT, DELETE and
// POST, at most 300 writes in at most 20 s), kills Caddy with SIGKILL at a
// random point, restarts it on the same storage and checks that every
// acknowledged write is there, every acknowledged delete is gone, nothing
// is half-written, and POST ids keep increasing. Several rounds.
func TestCrashDurability(t *testing.T) {
	const rounds, workers, maxOps = 4, 3, 300
	in := newInstance(t, "", appsConfig(apisixApp(map[string]any{
		"stream_proxy": map[string]any{"tcp": []any{hostPort("127.0.0.1", freePort(t))}},
	})))
	m := &crashModel{state: map[string]string{}}
	seq := 0
	for round := range rounds {
		p := in.start()
		m.inflight, m.pendingPosts = map[string]string{}, map[string]bool{}
		var acked atomic.Int64
		killAt := int64(10 + mrand.IntN(maxOps-60))
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var total atomic.Int64
		deadline := time.Now().Add(20 * time.Second)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					if total.Add(1) > maxOps || time.Now().After(deadline) {
						return
					}
					m.mu.Lock()
					seq++
					desc := fmt.Sprintf("r%d-w%d-%d", round, w, seq)
					m.mu.Unlock()
					if !crashOp(p, m, w, desc) {
						return // the process is gone
					}
					acked.Add(1)
				}
			}()
		}
		// The killer: SIGKILL once killAt writes were acknowledged, plus a
		// random sub-millisecond delay to land inside a write.
		func() {
			for acked.Load() < killAt && time.Now().Before(deadline) && total.Load() <= maxOps {
				time.Sleep(100 * time.Microsecond)
			}
			time.Sleep(time.Duration(mrand.IntN(1000)) * time.Microsecond)
			p.Kill()
			close(stop)
		}()
		wg.Wait()
		if acked.Load() == 0 {
			t.Fatalf("round %d: no write was acknowledged", round)
		}

		// Nothing half-written on disk: every entry the store skips is a
		// temporary file of the interrupted write.
		objs, _, skipped, err := store.New(&certmagic.FileStorage{Path: in.storageRoot()}, "apisix").Scan()
		if err != nil {
			t.Fatalf("round %d: scanning the storage: %v", round, err)
		}
		for _, sk := range skipped {
			if !strings.Contains(sk.Err.Error(), "temporary file") {
				t.Errorf("round %d: stored entry %s is damaged: %v", round, sk.Key, sk.Err)
			}
		}

		p2 := in.start()
		got := map[string]string{}
		for id, it := range listAll(t, p2, "stream_routes") {
			got[id] = fmt.Sprint(mustJSON(t, it.value)["desc"])
		}
		if len(objs) != len(got) {
			t.Errorf("round %d: %d objects on disk, %d listed", round, len(objs), len(got))
		}
		checkCrashModel(t, round, m, got)
		t.Logf("round %d: killed after %d acknowledged writes; %d routes stored", round, acked.Load(), len(got))

		// POST ids keep increasing after the crash.
		body := p2.must(t, "POST", "/apisix/admin/stream_routes", `{"server_port":1,"desc":"after"}`, 201)
		id := mustJSON(t, body)["value"].(map[string]any)["id"].(string)
		for _, old := range m.postIDs {
			if id <= old {
				t.Fatalf("round %d: POST after the crash gave %s, not above %s", round, id, old)
			}
		}
		for pid := range got {
			if len(pid) == 20 && id <= pid {
				t.Fatalf("round %d: POST after the crash gave %s, not above the stored %s", round, id, pid)
			}
		}
		m.postIDs = append(m.postIDs, id)
		got[id] = "after"
		m.state = got
		p2.Stop()
		if t.Failed() {
			return
		}
	}
}

// crashOp runs one random write of worker w and records it; false means
// the request failed (the process was killed), the write then counting as
// in flight.
func crashOp(p *caddyProc, m *crashModel, w int, desc string) bool {
	id := fmt.Sprintf("w%d-%d", w, mrand.IntN(8))
	r := mrand.IntN(10)
	var method, path, body string
	switch {
	case r < 6:
		method, path = "PUT", "/apisix/admin/stream_routes/"+id
		body = fmt.Sprintf(`{"server_port":%d,"desc":%q}`, 1+mrand.IntN(65535), desc)
	case r < 8:
		method, path = "DELETE", "/apisix/admin/stream_routes/"+id
	default:
		method, path = "POST", "/apisix/admin/stream_routes"
		body = fmt.Sprintf(`{"server_port":1,"desc":%q}`, desc)
	}
	after := desc
	if method == "DELETE" {
		after = ""
	}
	m.mu.Lock()
	if method == "POST" {
		m.pendingPosts[desc] = true
	} else {
		m.inflight[id] = after
	}
	m.mu.Unlock()
	st, resp, err := p.call(method, path, adminKey, body, nil)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		return false // stays in flight
	}
	if method == "POST" {
		delete(m.pendingPosts, desc)
	} else {
		delete(m.inflight, id)
	}
	switch {
	case method == "DELETE" && st == http.StatusNotFound:
		m.state[id] = ""
	case st/100 == 2 && method == "POST":
		var v struct {
			Value struct {
				ID string `json:"id"`
			} `json:"value"`
		}
		_ = json.Unmarshal([]byte(resp), &v)
		m.state[v.Value.ID] = desc
		m.postIDs = append(m.postIDs, v.Value.ID)
	case st/100 == 2:
		m.state[id] = after
	default:
		// An error answer changed nothing; the model records it as a
		// failure of the test through a sentinel id.
		m.state["unexpected "+method+" "+path+": "+answer(st, resp)] = "x"
	}
	return true
}

// checkCrashModel compares the routes found after a restart with what the
// client was told.
func checkCrashModel(t *testing.T, round int, m *crashModel, got map[string]string) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, want := range m.state {
		if strings.HasPrefix(id, "unexpected ") {
			t.Errorf("round %d: %s", round, id)
			continue
		}
		have, ok := got[id]
		if alt, inflight := m.inflight[id]; inflight {
			if (ok && have == alt) || (!ok && alt == "") || (ok && have == want) || (!ok && want == "") {
				continue
			}
			t.Errorf("round %d: %s is %q (present %v) after the crash; acknowledged %q, in flight %q", round, id, have, ok, want, alt)
			continue
		}
		switch {
		case want == "" && ok:
			t.Errorf("round %d: %s was deleted (acknowledged) but is back with desc %q", round, id, have)
		case want != "" && !ok:
			t.Errorf("round %d: %s (desc %q) was acknowledged but is lost", round, id, want)
		case want != "" && have != want:
			t.Errorf("round %d: %s has desc %q, the acknowledged write was %q", round, id, have, want)
		}
	}
	for id, have := range got {
		if _, known := m.state[id]; known {
			continue
		}
		if alt, ok := m.inflight[id]; ok && alt == have {
			continue // an in-flight PUT of a new id landed
		}
		if m.pendingPosts[have] {
			delete(m.pendingPosts, have) // an in-flight POST landed, once
			continue
		}
		t.Errorf("round %d: unexpected route %s (desc %q) after the crash", round, id, have)
	}
	for id, want := range m.state {
		if want == "" {
			delete(m.state, id)
		}
	}
}
