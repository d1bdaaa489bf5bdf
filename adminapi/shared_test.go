package adminapi

import (
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/registry"
)

// fakeShared is a registry.Shared whose "watch" applies each commit
// asynchronously, as etcd's does.
type fakeShared struct {
	mu      sync.Mutex
	r       *registry.Registry
	rev     int64
	created map[string]int64
	casFail atomic.Bool
}

func (f *fakeShared) Commit(c registry.Change) (int64, error) {
	if c.IfModified != 0 && f.casFail.Load() {
		return 0, registry.ErrChanged
	}
	f.mu.Lock()
	f.rev++
	rev := f.rev
	key := string(c.Kind) + "/" + c.ID
	if f.created[key] == 0 || c.Value == nil {
		f.created[key] = rev
	}
	ev := registry.Event{Kind: c.Kind, ID: c.ID, Value: c.Value, CreatedIndex: f.created[key], ModifiedIndex: rev}
	f.mu.Unlock()
	go f.r.Apply(f, []registry.Event{ev}, rev)
	return rev, nil
}

func (f *fakeShared) GenID() (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rev++
	return f.rev, nil
}

func (f *fakeShared) Run(r *registry.Registry) {
	f.r = r
	go r.Reload(f, nil, 1)
}

func (f *fakeShared) Close() {}

func newSharedEnv(t *testing.T, cfg *Config) (*env, *fakeShared) {
	t.Helper()
	e := &env{t: t, reg: registry.New(), store: newMemStore()}
	f := &fakeShared{created: map[string]int64{}, rev: 1}
	if err := e.reg.OpenShared(f, nil, time.Second); err != nil {
		t.Fatal(err)
	}
	e.cfg.Store(cfg)
	e.clock.Store(testNow)
	e.srv = httptest.NewServer(&Handler{Registry: e.reg, Config: e.cfg.Load, State: NewState(),
		now: func() time.Time { return time.Unix(e.clock.Load(), 0) }})
	t.Cleanup(e.srv.Close)
	return e, f
}

func TestSharedStore(t *testing.T) {
	e, f := newSharedEnv(t, streamCfg())
	e.must(201, "PUT", "/apisix/admin/upstreams/1", upstreamBody)
	// read your own write: the answer waits for the watch
	got := e.must(200, "GET", "/apisix/admin/upstreams/1", "").json(t)
	if got["modifiedIndex"] != float64(2) || got["createdIndex"] != float64(2) {
		t.Fatalf("indexes: %v", got)
	}
	e.must(200, "PATCH", "/apisix/admin/upstreams/1", `{"retries":1}`)
	f.casFail.Store(true)
	r := e.must(503, "PATCH", "/apisix/admin/upstreams/1", `{"retries":2}`)
	if r.body != `{"error_msg":"value changed before overwritten"}`+"\n" {
		t.Fatalf("lost CAS: %q", r.body)
	}
	v := e.must(201, "POST", "/apisix/admin/upstreams", upstreamBody).json(t)["value"].(map[string]any)
	if id := v["id"].(string); len(id) != 20 {
		t.Fatalf("POST id %q", id)
	}
}

func TestDataPlaneReadOnly(t *testing.T) {
	cfg := streamCfg()
	cfg.ReadOnly = "this node is a data_plane: the Admin API is read-only"
	e, _ := newSharedEnv(t, cfg)
	for _, m := range []string{"PUT", "POST", "PATCH", "DELETE"} {
		r := e.must(405, m, "/apisix/admin/upstreams/1", upstreamBody)
		if r.body != `{"error_msg":"this node is a data_plane: the Admin API is read-only"}`+"\n" {
			t.Fatalf("%s: %q", m, r.body)
		}
	}
	e.must(404, "GET", "/apisix/admin/upstreams/1", "")
	e.must(200, "GET", "/apisix/admin/upstreams", "")
}
