package stream

import (
	"fmt"
	"sync"

	"github.com/caddyserver/certmagic"

	"github.com/caddy-apisix/stream/live"
	"github.com/caddy-apisix/stream/proxy"
	"github.com/caddy-apisix/stream/store"
)

func liveRuntime() *proxy.Runtime { return live.Runtime() }

// storageRef identifies the Caddy storage the embedded store lives in, so
// that a reload with the same storage does not reopen it.
type storageRef struct {
	storage certmagic.Storage
	dataDir string
}

func (s storageRef) key() string { return fmt.Sprintf("%T %#v", s.storage, s.storage) }

// activation tracks which apisix app instance is live. In a normal reload
// the new instance starts before the old one stops; when a reload fails
// after the new one started, its Stop hands the state back to the old one.
var activation struct {
	mu         sync.Mutex
	current    *App
	storageKey string
}

// activate makes a the live app: the store is opened (once per storage),
// its static objects and settings are published.
func activate(a *App) error {
	activation.mu.Lock()
	defer activation.mu.Unlock()
	reg, rt := globalRegistry(), liveRuntime()
	if a.deploy.provider == providerEtcd {
		return fmt.Errorf("config_provider etcd: not wired in this build yet")
	}
	if a.deploy.isStandalone() {
		if err := activateStandalone(a); err != nil {
			return err
		}
	} else if k := a.storage.key(); k != activation.storageKey {
		if err := reg.Open(store.New(a.storage.storage, "apisix").WithLogger(a.logger.Named("store")), rt.Compile); err != nil {
			return fmt.Errorf("loading stored objects: %v", err)
		}
		activation.storageKey = k
	}
	rt.SetFallbackSNI(a.FallbackSNI)
	rt.SetAccessLog(a.AccessLog)
	if err := reg.SetStatic(a.static); err != nil {
		if cur := activation.current; cur != nil {
			rt.SetFallbackSNI(cur.FallbackSNI)
		}
		return fmt.Errorf("static objects: %v", err)
	}
	a.mu.Lock()
	a.running = true
	a.prev = activation.current
	a.mu.Unlock()
	activation.current = a
	liveAdmin.Store(a.admin)
	return nil
}

// deactivate retires a; if a was live and the instance before it still
// runs (a failed reload), that one becomes live again.
func deactivate(a *App) {
	activation.mu.Lock()
	defer activation.mu.Unlock()
	a.mu.Lock()
	a.running = false
	prev := a.prev
	a.mu.Unlock()
	a.stopWatcher()
	delete(watchers, a)
	if activation.current != a {
		return
	}
	if prev != nil && prev.isRunning() {
		prev.restartWatcher()
		activation.current = prev
		liveRuntime().SetFallbackSNI(prev.FallbackSNI)
		liveRuntime().SetAccessLog(prev.AccessLog)
		_ = globalRegistry().SetStatic(prev.static)
		liveAdmin.Store(prev.admin)
		return
	}
	// no apisix app is left (a reload to a config without one): its
	// static objects and settings go too, stored objects stay
	activation.current = nil
	liveAdmin.Store(nil)
	rt := liveRuntime()
	rt.SetFallbackSNI("")
	rt.SetAccessLog(false)
	_ = globalRegistry().SetStatic(nil)
}

func (a *App) isRunning() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.running
}
