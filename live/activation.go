package live

import (
	"sync"

	"github.com/caddy-apisix/stream/etcdstore"
)

// Activation records which apisix app instance is live. In a normal reload
// the new instance starts before the old one stops; when a reload fails
// after the new one started, its Stop hands the record back to the old one.
// The reload sequence itself (which instance becomes live when) is the
// root package's (state.go); this package only keeps the record and its
// lock, since both outlive any one config.
type Activation struct {
	// App is the live apisix app instance (the root package's *App),
	// nil while none runs. The root reads and writes it through one
	// typed pair of functions, so that no typed nil is ever stored.
	App any
	// StorageKey identifies the store the registry is attached to, so
	// that a reload that keeps it does not reopen it.
	StorageKey string
	// Etcd is the open etcd store, nil with the embedded one.
	Etcd *etcdstore.Store
}

var (
	activationMu sync.Mutex
	activation   Activation
)

// WithActivation runs f holding the activation lock: the record can only be
// reached from inside f, and nothing in f may call WithActivation again.
func WithActivation(f func(*Activation)) {
	activationMu.Lock()
	defer activationMu.Unlock()
	f(&activation)
}
