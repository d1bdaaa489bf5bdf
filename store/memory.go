package store

import (
	"slices"
	"sort"
	"sync"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"
)

// Memory is an in-memory registry.Store for tests of other packages. It
// checks objects as Store does, copies them in and out, and can be told to
// fail. The zero value is an empty store, ready to use; it is safe for
// concurrent use.
type Memory struct {
	mu      sync.Mutex
	objs    map[memKey]*registry.Object
	counter int64
	fail    []error
}

type memKey struct {
	kind model.Kind
	id   string
}

var _ registry.Store = (*Memory)(nil)

// NewMemory returns an empty Memory.
func NewMemory() *Memory { return &Memory{} }

// FailNext makes the next call of Load, Put, Delete or SaveCounter return
// err and change nothing. Calls queue up: FailNext(a); FailNext(b) fails
// the next two calls with a, then b. A nil err is ignored.
func (m *Memory) FailNext(err error) {
	if err == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fail = append(m.fail, err)
}

// failLocked pops the next injected failure, if any.
func (m *Memory) failLocked() error {
	if len(m.fail) == 0 {
		return nil
	}
	err := m.fail[0]
	m.fail = m.fail[1:]
	return err
}

// Load returns copies of the stored objects, sorted by kind and id, and
// the saved counter.
func (m *Memory) Load() ([]*registry.Object, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failLocked(); err != nil {
		return nil, 0, err
	}
	objs := make([]*registry.Object, 0, len(m.objs))
	for _, o := range m.objs {
		objs = append(objs, cloneObject(o))
	}
	sort.Slice(objs, func(i, j int) bool {
		if objs[i].Kind != objs[j].Kind {
			return objs[i].Kind < objs[j].Kind
		}
		return objs[i].ID < objs[j].ID
	})
	return objs, m.counter, nil
}

// Put stores a copy of obj.
func (m *Memory) Put(obj *registry.Object) error {
	if err := checkObject(obj); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failLocked(); err != nil {
		return err
	}
	if m.objs == nil {
		m.objs = map[memKey]*registry.Object{}
	}
	m.objs[memKey{obj.Kind, obj.ID}] = cloneObject(obj)
	return nil
}

// Delete removes kind/id; a missing object is not an error.
func (m *Memory) Delete(kind model.Kind, id string) error {
	if _, err := objectKey(DefaultPrefix, kind, id); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failLocked(); err != nil {
		return err
	}
	delete(m.objs, memKey{kind, id})
	return nil
}

// SaveCounter records n.
func (m *Memory) SaveCounter(n int64) error {
	if _, err := encodeCounter(n); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failLocked(); err != nil {
		return err
	}
	m.counter = n
	return nil
}

// Get returns a copy of the stored kind/id, or nil.
func (m *Memory) Get(kind model.Kind, id string) *registry.Object {
	m.mu.Lock()
	defer m.mu.Unlock()
	if o := m.objs[memKey{kind, id}]; o != nil {
		return cloneObject(o)
	}
	return nil
}

// Len returns the number of stored objects.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.objs)
}

// Counter returns the last saved counter.
func (m *Memory) Counter() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.counter
}

// cloneObject copies o, so callers cannot change what is stored.
func cloneObject(o *registry.Object) *registry.Object {
	c := *o
	c.Value = slices.Clone(o.Value)
	return &c
}
