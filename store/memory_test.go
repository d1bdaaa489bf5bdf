package store

import (
	"errors"
	"reflect"
	"testing"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"
)

func TestMemoryRoundTrip(t *testing.T) {
	var m Memory // the zero value is usable
	a := obj(model.StreamRoutes, "2", 1, `{"id":"2"}`)
	b := obj(model.StreamRoutes, "1", 2, `{"id":"1"}`)
	c := obj(model.Upstreams, "1", 3, `{"id":"1"}`)
	for _, o := range []*registry.Object{a, b, c} {
		if err := m.Put(o); err != nil {
			t.Fatal(err)
		}
	}
	// Stored objects are copies.
	a.Value[2] = 'X'
	if got := m.Get(model.StreamRoutes, "2"); string(got.Value) != `{"id":"2"}` {
		t.Fatalf("stored value changed through the caller's slice: %s", got.Value)
	}
	a.Value[2] = 'i'
	if err := m.Delete(model.StreamRoutes, "1"); err != nil {
		t.Fatal(err)
	}
	if err := m.Delete(model.SSLs, "missing"); err != nil {
		t.Fatal(err)
	}
	if err := m.SaveCounter(9); err != nil {
		t.Fatal(err)
	}
	objs, n := mustLoad(t, &m)
	if !reflect.DeepEqual(objs, []*registry.Object{a, c}) || n != 9 || m.Counter() != 9 || m.Len() != 2 {
		t.Fatalf("loaded counter %d\n%s", n, dump(objs))
	}
	if m.Get(model.StreamRoutes, "1") != nil {
		t.Fatal("deleted object still there")
	}
}

func TestMemoryFailNext(t *testing.T) {
	m := NewMemory()
	base := obj(model.StreamRoutes, "1", 1, `{"v":1}`)
	if err := m.Put(base); err != nil {
		t.Fatal(err)
	}
	boom, bang := errors.New("boom"), errors.New("bang")
	tests := []struct {
		name string
		call func() error
	}{
		{"put", func() error { return m.Put(obj(model.StreamRoutes, "1", 2, `{"v":2}`)) }},
		{"put new", func() error { return m.Put(obj(model.StreamRoutes, "2", 2, `{"v":2}`)) }},
		{"delete", func() error { return m.Delete(model.StreamRoutes, "1") }},
		{"counter", func() error { return m.SaveCounter(5) }},
		{"load", func() error { _, _, err := m.Load(); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m.FailNext(boom)
			m.FailNext(nil) // ignored
			if err := tt.call(); !errors.Is(err, boom) {
				t.Fatalf("err = %v, want boom", err)
			}
			objs, n := mustLoad(t, m)
			if !reflect.DeepEqual(objs, []*registry.Object{base}) || n != 0 {
				t.Fatalf("failed call changed the store: counter %d\n%s", n, dump(objs))
			}
		})
	}
	// Failures queue up, one per call.
	m.FailNext(boom)
	m.FailNext(bang)
	if err := m.SaveCounter(1); !errors.Is(err, boom) {
		t.Fatalf("first call: %v", err)
	}
	if err := m.SaveCounter(1); !errors.Is(err, bang) {
		t.Fatalf("second call: %v", err)
	}
	if err := m.SaveCounter(1); err != nil {
		t.Fatalf("third call: %v", err)
	}
}

func TestMemoryRejectsLikeStore(t *testing.T) {
	m := NewMemory()
	for _, o := range []*registry.Object{nil, obj("", "1", 1, `{}`), obj(model.SSLs, "", 1, `{}`), obj(model.SSLs, "1", 1, ``)} {
		if err := m.Put(o); err == nil {
			t.Errorf("Put(%+v) succeeded", o)
		}
	}
	if err := m.Delete("", "1"); err == nil {
		t.Error("Delete with an empty kind succeeded")
	}
	if err := m.SaveCounter(-1); err == nil {
		t.Error("SaveCounter(-1) succeeded")
	}
}

// TestMemoryWithRegistry checks that a failed write through the registry
// answers ErrPersist and leaves both the registry and the store unchanged.
func TestMemoryWithRegistry(t *testing.T) {
	m := NewMemory()
	r := registry.New()
	if err := r.Open(m, nil); err != nil {
		t.Fatal(err)
	}
	put := func(v string) error {
		return r.Update(func(tx *registry.Tx) error {
			_, _, err := tx.Put(model.Upstreams, "u", []byte(v))
			return err
		})
	}
	if err := put(`{"v":1}`); err != nil {
		t.Fatal(err)
	}
	m.FailNext(errors.New("disk full"))
	if err := put(`{"v":2}`); !errors.Is(err, registry.ErrPersist) {
		t.Fatalf("err = %v, want ErrPersist", err)
	}
	if got := m.Get(model.Upstreams, "u"); string(got.Value) != `{"v":1}` {
		t.Fatalf("store holds %s", got.Value)
	}
	r.View(func(v registry.View) {
		if got := v.Get(model.Upstreams, "u"); string(got.Value) != `{"v":1}` {
			t.Fatalf("registry holds %s", got.Value)
		}
	})
}
