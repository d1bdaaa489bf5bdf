package registry

import (
	"errors"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/caddy-apisix/stream/model"
)

// Shared is a store that other nodes read and write too: etcd. A write
// through it is committed there and not applied by the transaction; the
// store's watch delivers it to Reload or Apply, on the writing node as on
// every other, and the transaction returns once this node has applied it.
type Shared interface {
	// Commit writes one change and returns the store revision that
	// committed it. It fails with an error wrapping ErrPersist when the
	// store is unreachable and ErrChanged when c.IfModified no longer
	// matches.
	Commit(c Change) (rev int64, err error)
	// GenID returns a fresh revision for a POST id.
	GenID() (int64, error)
	// Run loads and watches the store, delivering the state to r, until
	// Close. It returns at once.
	Run(r *Registry)
	// Close stops Run and releases the client.
	Close()
}

// Change is one write to a Shared store.
type Change struct {
	Kind model.Kind
	ID   string
	// Value is the new value; nil deletes the object.
	Value []byte
	// IfModified makes the write a compare-and-swap on the object's
	// current ModifiedIndex; 0 writes unconditionally.
	IfModified int64
	// TTL, in seconds, puts the object on a lease; 0 means none.
	TTL int64
}

// ErrChanged is a lost compare-and-swap: the object changed between the
// read and the write. The Admin API answers 503 for it, as APISIX.
var ErrChanged = errors.New("value changed before overwritten")

// Event is one object as a Shared store reports it: a put (Value set) or
// a delete (Value nil).
type Event struct {
	Kind  model.Kind
	ID    string
	Value []byte
	// Stored is the value as the store holds it when it differs from
	// Value (Object.Stored).
	Stored []byte
	// CreatedIndex and ModifiedIndex are the store revisions.
	CreatedIndex, ModifiedIndex int64
}

// applyWait bounds how long a write waits for its own watch event before
// it is acknowledged anyway (it is committed).
const applyWait = 10 * time.Second

// sharedState is the part of Registry that follows a Shared store.
type sharedState struct {
	shared Shared
	// applied is the store revision the objects reflect.
	applied int64
	cond    *sync.Cond
}

// OpenShared attaches a Shared store: the dynamic objects held so far are
// dropped (a node never serves what another cluster had), the store starts
// loading and watching, and OpenShared waits up to wait for the first load.
func (r *Registry) OpenShared(s Shared, compile CompileFunc, wait time.Duration) error {
	r.mu.Lock()
	if r.sh.cond == nil {
		r.sh.cond = sync.NewCond(&r.mu)
	}
	prev := r.sh.shared
	r.store, r.compile = nil, compile
	r.changedAll = true
	r.sh.shared, r.sh.applied = s, 0
	r.dropDynamicLocked()
	err := r.compileLocked()
	r.mu.Unlock()
	if prev != nil {
		prev.Close()
	}
	if err != nil {
		return err
	}
	s.Run(r)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.waitLocked(wait, func() bool { return r.sh.shared == s && r.sh.applied == 0 })
	return nil
}

// CloseShared detaches and closes the Shared store; the objects stay.
func (r *Registry) CloseShared() {
	r.mu.Lock()
	s := r.sh.shared
	r.sh.shared = nil
	if r.sh.cond != nil {
		r.sh.cond.Broadcast()
	}
	r.mu.Unlock()
	if s != nil {
		s.Close()
	}
}

func (r *Registry) dropDynamicLocked() {
	for kind, m := range r.objs {
		for id, o := range m {
			if !o.Static {
				r.removeLocked(kind, id)
			}
		}
	}
	r.hidden = map[model.Kind]map[string]*Object{}
}

// Reload replaces the dynamic objects with objs, the whole content of s at
// revision rev. Objects whose ModifiedIndex did not change are kept as
// they are, with their live state (their event's Value may then be nil);
// the others are replaced or removed. A
// store that is no longer attached is ignored. It reports whether anything
// changed.
func (r *Registry) Reload(s Shared, objs []Event, rev int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sh.shared != s {
		return false
	}
	sort.SliceStable(objs, func(i, j int) bool {
		if objs[i].Kind != objs[j].Kind {
			return objs[i].Kind < objs[j].Kind
		}
		return objs[i].ID < objs[j].ID
	})
	seen := map[model.Kind]map[string]bool{}
	var evs []Event
	for _, e := range objs {
		if seen[e.Kind] == nil {
			seen[e.Kind] = map[string]bool{}
		}
		seen[e.Kind][e.ID] = true
		if cur := r.dynamicLocked(e.Kind, e.ID); cur == nil || cur.ModifiedIndex != e.ModifiedIndex {
			evs = append(evs, e)
		}
	}
	for kind, m := range r.objs {
		for id, o := range m {
			if !o.Static && !seen[kind][id] {
				evs = append(evs, Event{Kind: kind, ID: id})
			}
		}
	}
	for kind, m := range r.hidden {
		for id := range m {
			if !seen[kind][id] {
				evs = append(evs, Event{Kind: kind, ID: id})
			}
		}
	}
	return r.applyLocked(evs, rev, true)
}

// Apply applies watch events up to revision rev. Events at or below an
// object's ModifiedIndex were applied already and are skipped.
func (r *Registry) Apply(s Shared, evs []Event, rev int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sh.shared != s {
		return false
	}
	return r.applyLocked(evs, rev, false)
}

// dynamicLocked returns the stored (non-static) object kind/id, visible or
// hidden behind a static one.
func (r *Registry) dynamicLocked(kind model.Kind, id string) *Object {
	if o := r.getLocked(kind, id); o != nil && !o.Static {
		return o
	}
	return r.hidden[kind][id]
}

// applyLocked applies evs and compiles once. When the compile hook rejects
// the batch, the events are applied one at a time and those it rejects are
// dropped (the previous value stays), so one bad object cannot stall the
// others.
func (r *Registry) applyLocked(evs []Event, rev int64, full bool) bool {
	if !full {
		evs = slices.DeleteFunc(evs, func(e Event) bool {
			cur := r.dynamicLocked(e.Kind, e.ID)
			if e.Value == nil {
				return cur == nil
			}
			return cur != nil && cur.ModifiedIndex >= e.ModifiedIndex
		})
	}
	changed := len(evs) > 0
	if changed {
		undo := r.applyEventsLocked(evs)
		if err := r.compileLocked(); err != nil {
			undo()
			for _, e := range evs {
				undo := r.applyEventsLocked([]Event{e})
				if err := r.compileLocked(); err != nil {
					undo()
					if r.onReject != nil {
						r.onReject(e, err)
					}
				}
			}
		}
	}
	if rev > r.sh.applied || full {
		r.sh.applied = rev
	}
	r.rev = max(r.rev, rev)
	r.sh.cond.Broadcast()
	return changed
}

// applyEventsLocked applies evs in memory and returns the function that
// undoes them (cheaper than a copy of everything at 10,000 routes).
func (r *Registry) applyEventsLocked(evs []Event) (undo func()) {
	var undos []func()
	for _, e := range evs {
		undos = append(undos, r.applyEventLocked(e))
	}
	return func() {
		for _, u := range slices.Backward(undos) {
			u()
		}
	}
}

// applyEventLocked applies one event and returns its undo.
func (r *Registry) applyEventLocked(e Event) (undo func()) {
	cur := r.getLocked(e.Kind, e.ID)
	if cur != nil && cur.Static {
		// a stored object behind a static one: only the hidden copy moves
		prev, had := r.hidden[e.Kind][e.ID]
		if e.Value == nil {
			delete(r.hidden[e.Kind], e.ID)
		} else {
			r.hide(&Object{Kind: e.Kind, ID: e.ID, Value: e.Value, Stored: e.Stored, CreatedIndex: e.CreatedIndex, ModifiedIndex: e.ModifiedIndex})
		}
		return func() {
			if had {
				r.hidden[e.Kind][e.ID] = prev
			} else {
				delete(r.hidden[e.Kind], e.ID)
			}
		}
	}
	if e.Value == nil {
		if cur == nil {
			return func() {}
		}
		pos, seq := slices.Index(r.order[e.Kind], e.ID), r.seq[e.Kind][e.ID]
		r.removeLocked(e.Kind, e.ID)
		return func() { r.reinsertLocked(cur, pos, seq) }
	}
	r.setLocked(&Object{Kind: e.Kind, ID: e.ID, Value: e.Value, Stored: e.Stored, CreatedIndex: e.CreatedIndex, ModifiedIndex: e.ModifiedIndex})
	return func() {
		if cur != nil {
			r.setLocked(cur)
		} else {
			r.removeLocked(e.Kind, e.ID)
		}
	}
}

// OnReject sets the function told about an object from a Shared store that
// the compile hook refused (it is not served; the previous version stays).
func (r *Registry) OnReject(fn func(Event, error)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.onReject = fn
}

// waitAppliedLocked waits, with r.mu held, until the Shared store's revision rev
// is applied, the store is detached, or applyWait passes.
func (r *Registry) waitAppliedLocked(rev int64) {
	s := r.sh.shared
	if s == nil {
		return
	}
	r.waitLocked(applyWait, func() bool { return r.sh.applied < rev && r.sh.shared == s })
}

// waitLocked waits on r.sh.cond, with r.mu held, while more reports true,
// for d at the most.
func (r *Registry) waitLocked(d time.Duration, more func() bool) {
	done := false
	t := time.AfterFunc(d, func() {
		r.mu.Lock()
		done = true
		r.sh.cond.Broadcast()
		r.mu.Unlock()
	})
	defer t.Stop()
	for more() && !done {
		r.sh.cond.Wait()
	}
}
