// Package registry is the live object store: the stream routes, upstreams
// and SSL objects that the data path serves. It lives outside any one Caddy
// config, so it survives reloads; every change is persisted first, then
// published by a Compile hook that builds a new immutable snapshot.
package registry

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/caddy-apisix/stream/model"
)

// Object is one stored APISIX object.
type Object struct {
	Kind model.Kind `json:"kind"`
	ID   string     `json:"id"`
	// Value is the object as stored, JSON, including id, create_time and
	// update_time. It may hold secrets: strip them before showing it.
	Value []byte `json:"value"`
	// Stored, when set, is the value as the store holds it, without the
	// schema defaults Value has: what the Admin API shows and PATCH
	// merges into (APISIX stores no defaults and GET reads etcd).
	Stored []byte `json:"-"`
	// CreatedIndex and ModifiedIndex are the store revisions of the first
	// and the latest write, as etcd reports them.
	CreatedIndex  int64 `json:"createdIndex"`
	ModifiedIndex int64 `json:"modifiedIndex"`
	// Static objects come from the Caddy config and are read-only.
	Static bool `json:"-"`
}

// Store persists objects. Every method must be durable when it returns
// nil (written and synced), and atomic: a crash leaves the old value or the
// new one, never a mix.
type Store interface {
	// Load returns every stored object and the highest id counter saved
	// by SaveCounter.
	Load() (objs []*Object, counter int64, err error)
	Put(obj *Object) error
	Delete(kind model.Kind, id string) error
	// SaveCounter records the revision counter so that ids handed out by
	// POST are never reused after a restart.
	SaveCounter(n int64) error
}

// AsStored is the value as the store holds it: Stored, or Value.
func (o *Object) AsStored() []byte {
	if o.Stored != nil {
		return o.Stored
	}
	return o.Value
}

// ErrPersist wraps every store failure; the Admin API answers 503 for it.
var ErrPersist = errors.New("storage failure")

// View is a read-only view of the objects, in APISIX order.
type View interface {
	Get(kind model.Kind, id string) *Object
	// List returns the objects of a kind in insertion order (for stream
	// routes, the order in which they are matched).
	List(kind model.Kind) []*Object
	// Seq is the object's place in List order: it grows along List and
	// stays while the object is replaced in place; 0 when absent.
	Seq(kind model.Kind, id string) int64
	// Delta is what changed since the previous successful compile.
	Delta() Delta
}

// Key names one object.
type Key struct {
	Kind model.Kind
	ID   string
}

// Delta tells a compile hook what changed since the state it compiled
// last, so that one object's write costs that object, not all of them.
type Delta struct {
	// Base is the compile the changes apply to, and Gen the one being
	// made; a hook whose last successful compile is not Base must
	// rebuild everything.
	Base, Gen Gen
	// Keys are the objects written or removed since Base (a superset
	// after a rollback); All means anything may have changed.
	Keys []Key
	All  bool
}

// Gen identifies one successful compile of one registry.
type Gen struct {
	r *Registry
	n int64
}

// CompileFunc builds and publishes the data-path state from a view. It
// runs under the registry lock; an error rejects the change.
type CompileFunc func(View) error

// Registry holds the objects. The zero value is not usable; use New.
type Registry struct {
	mu      sync.Mutex
	objs    map[model.Kind]map[string]*Object
	order   map[model.Kind][]string
	rev     int64
	store   Store
	compile CompileFunc
	// hidden holds stored objects shadowed by a static object with the
	// same id; they come back when the static one leaves the config.
	hidden map[model.Kind]map[string]*Object
	// sh follows a Shared store (etcd) instead of store, when attached.
	sh       sharedState
	onReject func(Event, error)
	// seq is each object's place in order (see View.Seq); nextSeq the
	// last one handed out.
	seq     map[model.Kind]map[string]int64
	nextSeq int64
	// compiled counts the successful compiles; changed and changedAll
	// are the Delta since the last one.
	compiled   int64
	changed    map[Key]struct{}
	changedAll bool
}

// New returns an empty registry.
func New() *Registry {
	return &Registry{
		objs:    map[model.Kind]map[string]*Object{},
		order:   map[model.Kind][]string{},
		hidden:  map[model.Kind]map[string]*Object{},
		seq:     map[model.Kind]map[string]int64{},
		changed: map[Key]struct{}{},
		// the first compile builds everything
		changedAll: true,
	}
}

func (r *Registry) hide(o *Object) {
	if r.hidden[o.Kind] == nil {
		r.hidden[o.Kind] = map[string]*Object{}
	}
	r.hidden[o.Kind][o.ID] = o
}

// Open attaches a store and a compile hook, loads the stored objects
// (replacing dynamic ones held so far, keeping static ones) and compiles.
// Stored objects come back in key order, as APISIX reloads from etcd.
func (r *Registry) Open(store Store, compile CompileFunc) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	// a failure leaves the registry as it was: same store, same objects
	saved, savedHidden := r.snapshotLocked(), r.hidden
	prevStore, prevCompile := r.store, r.compile
	fail := func(err error) error {
		r.restoreLocked(saved)
		r.hidden, r.store, r.compile = savedHidden, prevStore, prevCompile
		return err
	}
	r.store, r.compile = store, compile
	r.changedAll = true
	if sh := r.sh.shared; sh != nil {
		r.sh.shared = nil
		defer sh.Close()
	}
	if store == nil {
		// nothing stored: the previous store's objects go too (a switch
		// to a standalone document that is not there yet serves nothing)
		r.dropDynamicLocked()
		if err := r.compileLocked(); err != nil {
			return fail(err)
		}
		return nil
	}
	objs, counter, err := store.Load()
	if err != nil {
		return fail(fmt.Errorf("%w: loading objects: %w", ErrPersist, err))
	}
	for kind, m := range r.objs {
		for id, o := range m {
			if !o.Static {
				r.removeLocked(kind, id)
			}
		}
	}
	sort.SliceStable(objs, func(i, j int) bool {
		if objs[i].Kind != objs[j].Kind {
			return objs[i].Kind < objs[j].Kind
		}
		return objs[i].ID < objs[j].ID
	})
	r.rev = max(r.rev, counter)
	r.hidden = map[model.Kind]map[string]*Object{}
	for _, o := range objs {
		if cur := r.getLocked(o.Kind, o.ID); cur != nil && cur.Static {
			r.hide(o)
			r.rev = max(r.rev, o.ModifiedIndex, o.CreatedIndex)
			continue
		}
		r.setLocked(o)
		r.rev = max(r.rev, o.ModifiedIndex, o.CreatedIndex)
	}
	if err := r.compileLocked(); err != nil {
		return fail(err)
	}
	return nil
}

// SetCompile replaces the compile hook and compiles once.
func (r *Registry) SetCompile(compile CompileFunc) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.compile = compile
	r.changedAll = true
	return r.compileLocked()
}

// Recompile compiles every object again, for a change the objects do not
// show (the enabled plugins).
func (r *Registry) Recompile() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changedAll = true
	return r.compileLocked()
}

// SetStatic replaces the static objects (those from the Caddy config) with
// objs and compiles. A static id hides a stored object with the same id.
func (r *Registry) SetStatic(objs []*Object) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	saved := r.snapshotLocked()
	savedHidden := r.hidden
	r.hidden = map[model.Kind]map[string]*Object{}
	for _, m := range savedHidden {
		for _, o := range m {
			r.hide(o)
		}
	}
	for kind, m := range r.objs {
		for id, o := range m {
			if o.Static {
				r.removeLocked(kind, id)
				if h := r.hidden[kind][id]; h != nil {
					r.setLocked(h)
					delete(r.hidden[kind], id)
				}
			}
		}
	}
	for _, o := range objs {
		o.Static = true
		r.rev++
		o.CreatedIndex, o.ModifiedIndex = r.rev, r.rev
		if cur := r.getLocked(o.Kind, o.ID); cur != nil {
			r.hide(cur)
		}
		r.setLocked(o)
	}
	if err := r.compileLocked(); err != nil {
		r.restoreLocked(saved)
		r.hidden = savedHidden
		return err
	}
	return nil
}

// View runs fn with a consistent read-only view.
func (r *Registry) View(fn func(View)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fn(lockedView{r})
}

// Update runs fn in a transaction. Its writes are persisted one by one as
// they are made; if fn or the compile hook fails, the in-memory state is
// rolled back and the stored state is restored as far as the store allows.
//
// With a Shared store the lock is released while a write (or a POST id)
// is committed there, so that concurrent writers reach the store together
// and it can batch them instead of taking one round trip and one sync
// each. What fn read before may then have changed when its write commits,
// as it may on another node at any time; a PATCH's compare-and-swap is
// checked by the store itself.
func (r *Registry) Update(fn func(*Tx) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	tx := &Tx{r: r}
	err := fn(tx)
	if err == nil && tx.dirty {
		err = r.compileLocked()
	}
	if err != nil {
		tx.undo()
		return err
	}
	if tx.waitRev > 0 {
		// committed to the Shared store: answer once this node's watch
		// applied it, so the writer reads its own write
		r.waitAppliedLocked(tx.waitRev)
	}
	return nil
}

// Tx is a write transaction; it is valid only inside Update. Each write
// records how to undo itself, in memory and in the store, so a failed
// transaction costs what it wrote, not a copy of everything.
type Tx struct {
	r     *Registry
	dirty bool
	undos []func()
	// waitRev is the Shared store revision of the last commit.
	waitRev int64
}

// PutOptions are the conditions of a write.
type PutOptions struct {
	// IfModified makes the write a compare-and-swap on the object's
	// ModifiedIndex (PATCH); a mismatch fails with ErrChanged.
	IfModified int64
	// TTL, in seconds, lets the object expire (an etcd lease); stores
	// without leases ignore it.
	TTL int64
}

// commit writes c to the Shared store, without the lock (see Update).
func (tx *Tx) commit(c Change) (int64, error) {
	s := tx.r.sh.shared
	tx.r.mu.Unlock()
	rev, err := s.Commit(c)
	tx.r.mu.Lock()
	if err != nil {
		if errors.Is(err, ErrPersist) || errors.Is(err, ErrChanged) {
			return 0, err
		}
		return 0, fmt.Errorf("%w: %w", ErrPersist, err)
	}
	tx.waitRev = max(tx.waitRev, rev)
	return rev, nil
}

// Get returns the object or nil.
func (tx *Tx) Get(kind model.Kind, id string) *Object { return tx.r.getLocked(kind, id) }

// List returns the objects of a kind in insertion order.
func (tx *Tx) List(kind model.Kind) []*Object { return lockedView{tx.r}.List(kind) }

// NextID hands out a new POST id: 20 zero-padded digits of a revision that
// is persisted before it is returned, so it is never reused.
func (tx *Tx) NextID() (string, error) {
	r := tx.r
	if s := r.sh.shared; s != nil {
		r.mu.Unlock()
		rev, err := s.GenID()
		r.mu.Lock()
		if err != nil {
			if errors.Is(err, ErrPersist) {
				return "", err
			}
			return "", fmt.Errorf("%w: %w", ErrPersist, err)
		}
		return fmt.Sprintf("%020d", rev), nil
	}
	r.rev++
	if r.store != nil {
		if err := r.store.SaveCounter(r.rev); err != nil {
			return "", fmt.Errorf("%w: %w", ErrPersist, err)
		}
	}
	return fmt.Sprintf("%020d", r.rev), nil
}

// Put stores value under kind/id and reports whether it was created.
// Static objects cannot be written.
func (tx *Tx) Put(kind model.Kind, id string, value []byte) (obj *Object, created bool, err error) {
	return tx.PutWith(kind, id, value, PutOptions{})
}

// PutWith is Put with conditions.
func (tx *Tx) PutWith(kind model.Kind, id string, value []byte, opts PutOptions) (obj *Object, created bool, err error) {
	r := tx.r
	prev := r.getLocked(kind, id)
	if prev != nil && prev.Static {
		return nil, false, ErrStatic
	}
	if opts.IfModified != 0 && (prev == nil || prev.ModifiedIndex != opts.IfModified) {
		return nil, false, ErrChanged
	}
	if r.sh.shared != nil {
		rev, err := tx.commit(Change{Kind: kind, ID: id, Value: slices.Clone(value), IfModified: opts.IfModified, TTL: opts.TTL})
		if err != nil {
			return nil, false, err
		}
		obj = &Object{Kind: kind, ID: id, Value: slices.Clone(value), CreatedIndex: rev, ModifiedIndex: rev}
		if prev != nil {
			obj.CreatedIndex = prev.CreatedIndex
		}
		return obj, prev == nil, nil
	}
	r.rev++
	obj = &Object{Kind: kind, ID: id, Value: slices.Clone(value), CreatedIndex: r.rev, ModifiedIndex: r.rev}
	if prev != nil {
		obj.CreatedIndex = prev.CreatedIndex
	}
	if r.store != nil {
		if err := r.store.Put(obj); err != nil {
			return nil, false, fmt.Errorf("%w: %w", ErrPersist, err)
		}
		tx.undos = append(tx.undos, func() {
			if prev != nil {
				_ = r.store.Put(prev)
			} else {
				_ = r.store.Delete(kind, id)
			}
		})
	}
	r.setLocked(obj)
	tx.undos = append(tx.undos, func() {
		if prev != nil {
			r.setLocked(prev)
		} else {
			r.removeLocked(kind, id)
		}
	})
	tx.dirty = true
	return obj, prev == nil, nil
}

// Delete removes kind/id and reports whether it existed.
func (tx *Tx) Delete(kind model.Kind, id string) (bool, error) {
	r := tx.r
	prev := r.getLocked(kind, id)
	if prev == nil {
		return false, nil
	}
	if prev.Static {
		return false, ErrStatic
	}
	if r.sh.shared != nil {
		if _, err := tx.commit(Change{Kind: kind, ID: id}); err != nil {
			return false, err
		}
		return true, nil
	}
	if r.store != nil {
		if err := r.store.Delete(kind, id); err != nil {
			return false, fmt.Errorf("%w: %w", ErrPersist, err)
		}
		tx.undos = append(tx.undos, func() { _ = r.store.Put(prev) })
	}
	pos, seq := slices.Index(r.order[kind], id), r.seq[kind][id]
	r.removeLocked(kind, id)
	// back in its place on undo: stream routes match in this order
	tx.undos = append(tx.undos, func() { r.reinsertLocked(prev, pos, seq) })
	tx.dirty = true
	return true, nil
}

func (tx *Tx) undo() {
	for _, u := range slices.Backward(tx.undos) {
		u()
	}
}

// ErrStatic is returned for writes to objects from the Caddy config.
var ErrStatic = errors.New("object is defined in the Caddy config and is read-only")

type lockedView struct{ r *Registry }

func (v lockedView) Get(kind model.Kind, id string) *Object { return v.r.getLocked(kind, id) }

func (v lockedView) Seq(kind model.Kind, id string) int64 { return v.r.seq[kind][id] }

func (v lockedView) Delta() Delta {
	r := v.r
	d := Delta{Base: Gen{r, r.compiled}, Gen: Gen{r, r.compiled + 1}, All: r.changedAll}
	if !d.All {
		d.Keys = make([]Key, 0, len(r.changed))
		for k := range r.changed {
			d.Keys = append(d.Keys, k)
		}
		slices.SortFunc(d.Keys, func(a, b Key) int {
			if a.Kind != b.Kind {
				return strings.Compare(string(a.Kind), string(b.Kind))
			}
			return strings.Compare(a.ID, b.ID)
		})
	}
	return d
}

func (v lockedView) List(kind model.Kind) []*Object {
	ids := v.r.order[kind]
	out := make([]*Object, 0, len(ids))
	for _, id := range ids {
		out = append(out, v.r.objs[kind][id])
	}
	return out
}

func (r *Registry) getLocked(kind model.Kind, id string) *Object {
	return r.objs[kind][id]
}

func (r *Registry) setLocked(o *Object) {
	m := r.objs[o.Kind]
	if m == nil {
		m = map[string]*Object{}
		r.objs[o.Kind] = m
	}
	if _, ok := m[o.ID]; !ok {
		r.order[o.Kind] = append(r.order[o.Kind], o.ID)
		r.nextSeq++
		r.seqOf(o.Kind)[o.ID] = r.nextSeq
	}
	m[o.ID] = o
	r.changed[Key{o.Kind, o.ID}] = struct{}{}
}

func (r *Registry) seqOf(kind model.Kind) map[string]int64 {
	m := r.seq[kind]
	if m == nil {
		m = map[string]int64{}
		r.seq[kind] = m
	}
	return m
}

// reinsertLocked puts a removed object back at pos of its kind's order
// with its old seq (the undo of a delete).
func (r *Registry) reinsertLocked(o *Object, pos int, seq int64) {
	r.objs[o.Kind][o.ID] = o
	r.order[o.Kind] = slices.Insert(r.order[o.Kind], pos, o.ID)
	r.seqOf(o.Kind)[o.ID] = seq
	r.changed[Key{o.Kind, o.ID}] = struct{}{}
}

func (r *Registry) removeLocked(kind model.Kind, id string) {
	if _, ok := r.objs[kind][id]; !ok {
		return
	}
	delete(r.objs[kind], id)
	delete(r.seq[kind], id)
	r.order[kind] = slices.DeleteFunc(r.order[kind], func(s string) bool { return s == id })
	r.changed[Key{kind, id}] = struct{}{}
}

// compileLocked runs the compile hook; on success the Delta starts over.
func (r *Registry) compileLocked() error {
	if r.compile == nil {
		return nil
	}
	if err := r.compile(lockedView{r}); err != nil {
		return err
	}
	r.compiled++
	if len(r.changed) > 64 {
		// a large change (a load) leaves a large map, which clear
		// would walk on every later compile
		r.changed = map[Key]struct{}{}
	} else {
		clear(r.changed)
	}
	r.changedAll = false
	return nil
}

type savedState struct {
	objs  map[model.Kind]map[string]*Object
	order map[model.Kind][]string
	seq   map[model.Kind]map[string]int64
}

// snapshotLocked copies the maps (objects are immutable once stored).
func (r *Registry) snapshotLocked() savedState {
	s := savedState{objs: map[model.Kind]map[string]*Object{}, order: map[model.Kind][]string{}, seq: map[model.Kind]map[string]int64{}}
	for k, m := range r.objs {
		cp := make(map[string]*Object, len(m))
		for id, o := range m {
			cp[id] = o
		}
		s.objs[k] = cp
	}
	for k, o := range r.order {
		s.order[k] = slices.Clone(o)
	}
	for k, m := range r.seq {
		s.seq[k] = maps.Clone(m)
	}
	return s
}

func (r *Registry) restoreLocked(s savedState) {
	r.objs, r.order, r.seq = s.objs, s.order, s.seq
	r.changedAll = true
}

// Interface guards
var _ View = lockedView{}
