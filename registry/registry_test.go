package registry_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"
	"github.com/caddy-apisix/stream/store"
)

func ids(v registry.View, kind model.Kind) []string {
	var out []string
	for _, o := range v.List(kind) {
		out = append(out, o.ID)
	}
	return out
}

func put(t *testing.T, r *registry.Registry, kind model.Kind, id, value string) error {
	t.Helper()
	return r.Update(func(tx *registry.Tx) error {
		_, _, err := tx.Put(kind, id, []byte(value))
		return err
	})
}

func TestOrderAndUpdates(t *testing.T) {
	r := registry.New()
	if err := r.Open(store.NewMemory(), nil); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"2", "10", "1"} {
		if err := put(t, r, model.StreamRoutes, id, `{}`); err != nil {
			t.Fatal(err)
		}
	}
	// an update keeps the position; new ids are appended
	if err := put(t, r, model.StreamRoutes, "10", `{"name":"x"}`); err != nil {
		t.Fatal(err)
	}
	r.View(func(v registry.View) {
		if got := ids(v, model.StreamRoutes); !slices.Equal(got, []string{"2", "10", "1"}) {
			t.Errorf("order = %v", got)
		}
		o := v.Get(model.StreamRoutes, "10")
		if o.CreatedIndex >= o.ModifiedIndex {
			t.Errorf("indexes: created %d modified %d", o.CreatedIndex, o.ModifiedIndex)
		}
	})
}

func TestFailedTransactionChangesNothing(t *testing.T) {
	mem := store.NewMemory()
	compileErr := errors.New("bad")
	fail := false
	r := registry.New()
	if err := r.Open(mem, func(registry.View) error {
		if fail {
			return compileErr
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		if err := put(t, r, model.Upstreams, id, `{"v":1}`); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		fn   func(tx *registry.Tx) error
		arm  func()
		want error
	}{
		{"compile rejects", func(tx *registry.Tx) error {
			_, _, err := tx.Put(model.Upstreams, "b", []byte(`{"v":2}`))
			return err
		}, func() { fail = true }, compileErr},
		{"delete then fail", func(tx *registry.Tx) error {
			if _, err := tx.Delete(model.Upstreams, "b"); err != nil {
				return err
			}
			_, _, err := tx.Put(model.Upstreams, "d", []byte(`{}`))
			if err != nil {
				return err
			}
			return compileErr
		}, func() {}, compileErr},
		{"store fails", func(tx *registry.Tx) error {
			_, _, err := tx.Put(model.Upstreams, "e", []byte(`{}`))
			return err
		}, func() { mem.FailNext(errors.New("disk full")) }, registry.ErrPersist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fail = false
			tt.arm()
			err := r.Update(tt.fn)
			fail = false
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			r.View(func(v registry.View) {
				if got := ids(v, model.Upstreams); !slices.Equal(got, []string{"a", "b", "c"}) {
					t.Errorf("memory: %v", got)
				}
				if string(v.Get(model.Upstreams, "b").Value) != `{"v":1}` {
					t.Errorf("b changed: %s", v.Get(model.Upstreams, "b").Value)
				}
			})
			if mem.Len() != 3 || mem.Get(model.Upstreams, "d") != nil || string(mem.Get(model.Upstreams, "b").Value) != `{"v":1}` {
				t.Errorf("store not restored: %d objects", mem.Len())
			}
		})
	}
}

func TestStaticObjectsAreReadOnly(t *testing.T) {
	r := registry.New()
	if err := r.SetStatic([]*registry.Object{{Kind: model.Upstreams, ID: "s", Value: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	if err := put(t, r, model.Upstreams, "s", `{}`); !errors.Is(err, registry.ErrStatic) {
		t.Errorf("put: %v", err)
	}
	err := r.Update(func(tx *registry.Tx) error { _, err := tx.Delete(model.Upstreams, "s"); return err })
	if !errors.Is(err, registry.ErrStatic) {
		t.Errorf("delete: %v", err)
	}
	// a reload with other static objects replaces them
	if err := r.SetStatic(nil); err != nil {
		t.Fatal(err)
	}
	r.View(func(v registry.View) {
		if v.Get(model.Upstreams, "s") != nil {
			t.Error("static object survived SetStatic(nil)")
		}
	})
}

func TestIDsAreNeverReused(t *testing.T) {
	mem := store.NewMemory()
	r := registry.New()
	if err := r.Open(mem, nil); err != nil {
		t.Fatal(err)
	}
	var first string
	err := r.Update(func(tx *registry.Tx) error {
		id, err := tx.NextID()
		first = id
		if err != nil {
			return err
		}
		_, _, err = tx.Put(model.StreamRoutes, id, []byte(`{}`))
		return err
	})
	if err != nil || len(first) != 20 {
		t.Fatalf("id %q: %v", first, err)
	}
	_ = r.Update(func(tx *registry.Tx) error { _, err := tx.Delete(model.StreamRoutes, first); return err })
	// a restart: a new registry over the same store
	r2 := registry.New()
	if err := r2.Open(mem, nil); err != nil {
		t.Fatal(err)
	}
	var second string
	_ = r2.Update(func(tx *registry.Tx) error {
		var err error
		second, err = tx.NextID()
		return err
	})
	if second <= first {
		t.Errorf("id after restart %s, not after %s", second, first)
	}
}

// A static object shadows a stored one with the same id; when the static
// one leaves the config, the stored one is served again.
func TestStaticShadowsStored(t *testing.T) {
	mem := store.NewMemory()
	r := registry.New()
	if err := r.Open(mem, nil); err != nil {
		t.Fatal(err)
	}
	if err := put(t, r, model.Upstreams, "u", `{"stored":true}`); err != nil {
		t.Fatal(err)
	}
	if err := r.SetStatic([]*registry.Object{{Kind: model.Upstreams, ID: "u", Value: []byte(`{"static":true}`)}}); err != nil {
		t.Fatal(err)
	}
	value := func() string {
		var v string
		r.View(func(view registry.View) {
			if o := view.Get(model.Upstreams, "u"); o != nil {
				v = string(o.Value)
			}
		})
		return v
	}
	if got := value(); got != `{"static":true}` {
		t.Fatalf("with the static object: %s", got)
	}
	// a restart while the config still has it: the stored one stays shadowed
	if err := r.Open(mem, nil); err != nil {
		t.Fatal(err)
	}
	if got := value(); got != `{"static":true}` {
		t.Fatalf("after reopening: %s", got)
	}
	if err := r.SetStatic(nil); err != nil {
		t.Fatal(err)
	}
	if got := value(); got != `{"stored":true}` {
		t.Fatalf("after the static object left: %q", got)
	}
}

// Opening a store that cannot be read leaves the registry on the store it
// had, with its objects.
func TestOpenFailureKeepsState(t *testing.T) {
	good := store.NewMemory()
	r := registry.New()
	if err := r.Open(good, nil); err != nil {
		t.Fatal(err)
	}
	if err := put(t, r, model.Upstreams, "u", `{}`); err != nil {
		t.Fatal(err)
	}
	bad := store.NewMemory()
	bad.FailNext(errors.New("unreadable"))
	if err := r.Open(bad, nil); !errors.Is(err, registry.ErrPersist) {
		t.Fatalf("Open(bad) = %v", err)
	}
	if err := put(t, r, model.Upstreams, "v", `{}`); err != nil {
		t.Fatal(err)
	}
	if good.Get(model.Upstreams, "v") == nil || bad.Len() != 0 {
		t.Errorf("writes after a failed Open went to the wrong store (good has v: %v, bad has %d)", good.Get(model.Upstreams, "v") != nil, bad.Len())
	}
	r.View(func(v registry.View) {
		if v.Get(model.Upstreams, "u") == nil {
			t.Error("objects lost by a failed Open")
		}
	})
}

// TestOpenWithoutStoreDropsStoredObjects: switching to no store (a
// standalone document that is still to come) serves none of the previous
// store's objects, and keeps the static ones.
func TestOpenWithoutStoreDropsStoredObjects(t *testing.T) {
	r := registry.New()
	if err := r.Open(store.NewMemory(), nil); err != nil {
		t.Fatal(err)
	}
	if err := put(t, r, model.StreamRoutes, "stored", `{}`); err != nil {
		t.Fatal(err)
	}
	static := &registry.Object{Kind: model.StreamRoutes, ID: "static", Value: []byte(`{"id":"static"}`), Static: true}
	if err := r.SetStatic([]*registry.Object{static}); err != nil {
		t.Fatal(err)
	}
	var compiled []string
	err := r.Open(nil, func(v registry.View) error {
		compiled = ids(v, model.StreamRoutes)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(compiled, []string{"static"}) {
		t.Errorf("after Open(nil) the data path serves %q, want only the static route", compiled)
	}
}

// Seq grows along List through puts, deletes, re-adds and a rolled back
// delete, and each compile's Delta names what changed since the last
// successful one, on top of it.
func TestSeqAndDelta(t *testing.T) {
	var deltas []registry.Delta
	fail := false
	r := registry.New()
	if err := r.Open(store.NewMemory(), func(v registry.View) error {
		if fail {
			return errors.New("refused")
		}
		deltas = append(deltas, v.Delta())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		if err := put(t, r, model.StreamRoutes, id, `{}`); err != nil {
			t.Fatal(err)
		}
	}
	del := func(id string) error {
		return r.Update(func(tx *registry.Tx) error { _, err := tx.Delete(model.StreamRoutes, id); return err })
	}
	if err := del("b"); err != nil {
		t.Fatal(err)
	}
	if err := put(t, r, model.StreamRoutes, "b", `{}`); err != nil { // back, last
		t.Fatal(err)
	}
	fail = true
	if err := del("a"); err == nil { // rolled back: a keeps its place
		t.Fatal("the refused delete succeeded")
	}
	fail = false
	if err := put(t, r, model.StreamRoutes, "c", `{"name":"x"}`); err != nil {
		t.Fatal(err)
	}
	r.View(func(v registry.View) {
		if got := ids(v, model.StreamRoutes); !slices.Equal(got, []string{"a", "c", "b"}) {
			t.Fatalf("order = %v", got)
		}
		var last int64
		for _, id := range ids(v, model.StreamRoutes) {
			s := v.Seq(model.StreamRoutes, id)
			if s <= last {
				t.Fatalf("Seq(%s) = %d after %d: not growing along List", id, s, last)
			}
			last = s
		}
	})
	if !deltas[0].All {
		t.Fatal("the first compile must build everything")
	}
	for i := 1; i < len(deltas); i++ {
		if deltas[i].All || deltas[i].Base != deltas[i-1].Gen {
			t.Fatalf("compile %d does not follow compile %d: %+v", i, i-1, deltas[i])
		}
	}
	// the last compile carries c and, from the rolled back delete, a
	want := []registry.Key{{Kind: model.StreamRoutes, ID: "a"}, {Kind: model.StreamRoutes, ID: "c"}}
	if got := deltas[len(deltas)-1].Keys; !slices.Equal(got, want) {
		t.Fatalf("last Delta keys = %v, want %v", got, want)
	}
}
