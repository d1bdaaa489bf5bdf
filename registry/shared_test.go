package registry

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/model"
)

type nopShared struct{}

func (nopShared) Commit(Change) (int64, error) { return 0, errors.New("read-only test store") }
func (nopShared) GenID() (int64, error)        { return 0, errors.New("read-only test store") }
func (nopShared) Run(*Registry)                {}
func (nopShared) Close()                       {}

func ev(kind model.Kind, id, value string, created, mod int64) Event {
	e := Event{Kind: kind, ID: id, CreatedIndex: created, ModifiedIndex: mod}
	if value != "" {
		e.Value = []byte(value)
	}
	return e
}

func TestSharedReloadAndApply(t *testing.T) {
	r := New()
	s := nopShared{}
	// the compile hook refuses values containing "bad"
	var rejected []string
	r.OnReject(func(e Event, err error) { rejected = append(rejected, e.ID) })
	compile := func(v View) error {
		for _, k := range []model.Kind{model.Upstreams, model.StreamRoutes} {
			for _, o := range v.List(k) {
				if strings.Contains(string(o.Value), "bad") {
					return errors.New("refused")
				}
			}
		}
		return nil
	}
	if err := r.OpenShared(s, compile, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	r.Reload(s, []Event{ev(model.Upstreams, "1", `{"a":1}`, 2, 2), ev(model.StreamRoutes, "r", `{"b":1}`, 3, 3)}, 5)
	var u1 *Object
	r.View(func(v View) { u1 = v.Get(model.Upstreams, "1") })

	// an old event is skipped; a bad one is refused alone
	r.Apply(s, []Event{ev(model.Upstreams, "1", `{"old":1}`, 2, 2), ev(model.Upstreams, "2", `{"bad":1}`, 6, 6), ev(model.Upstreams, "3", `{"c":1}`, 7, 7)}, 7)
	r.View(func(v View) {
		if v.Get(model.Upstreams, "1") != u1 || v.Get(model.Upstreams, "2") != nil || v.Get(model.Upstreams, "3") == nil {
			t.Fatalf("after Apply: %v", v.List(model.Upstreams))
		}
	})
	if len(rejected) != 1 || rejected[0] != "2" {
		t.Fatalf("rejected %v", rejected)
	}

	// a full reload keeps unchanged objects (same pointer, live state)
	// and drops those gone; a smaller revision (etcd wiped) is accepted
	r.Reload(s, []Event{ev(model.Upstreams, "1", `{"a":1}`, 2, 2), ev(model.Upstreams, "3", `{"c":2}`, 7, 9)}, 4)
	r.View(func(v View) {
		if v.Get(model.Upstreams, "1") != u1 {
			t.Fatal("unchanged object replaced")
		}
		if string(v.Get(model.Upstreams, "3").Value) != `{"c":2}` || v.Get(model.StreamRoutes, "r") != nil {
			t.Fatalf("after Reload: %v %v", v.List(model.Upstreams), v.List(model.StreamRoutes))
		}
	})
	if r.Applied() != 4 {
		t.Fatalf("applied %d", r.Applied())
	}
	// a store no longer attached is ignored
	r.CloseShared()
	if r.Apply(s, []Event{ev(model.Upstreams, "9", `{}`, 10, 10)}, 10) {
		t.Fatal("a detached store changed the registry")
	}
}
