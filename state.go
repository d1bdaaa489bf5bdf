package stream

import (
	"encoding/json"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/certmagic"

	"github.com/caddy-apisix/stream/adminapi"
	"github.com/caddy-apisix/stream/datacrypt"
	"github.com/caddy-apisix/stream/etcdstore"
	"github.com/caddy-apisix/stream/live"
	"github.com/caddy-apisix/stream/proxy"
	"github.com/caddy-apisix/stream/registry"
	"github.com/caddy-apisix/stream/store"
)

// storageRef identifies the Caddy storage the embedded store lives in, so
// that a reload with the same storage does not reopen it.
type storageRef struct {
	storage certmagic.Storage
	dataDir string
}

func (s storageRef) key() string { return fmt.Sprintf("%T %#v", s.storage, s.storage) }

// liveApp is the live app of the activation record st, nil while none
// runs.
func liveApp(st *live.Activation) *App {
	a, _ := st.App.(*App)
	return a
}

// setLiveApp makes a (nil: none) the live app of st. A nil *App is stored
// as a nil interface, so that liveApp and st.App == nil agree.
func setLiveApp(st *live.Activation, a *App) {
	if a == nil {
		st.App = nil
		return
	}
	st.App = a
}

// storeKey identifies the store a's config opens, so that a reload that
// keeps it does not reopen it.
func (a *App) storeKey() string {
	// the keys themselves, not the *Keyring: every Provision builds a new
	// one, and a reload that keeps the store must not reopen it
	keys := datacrypt.DefaultKeyring
	if a.DataEncryption != nil && a.DataEncryption.Keyring != nil {
		keys = a.DataEncryption.Keyring
	}
	kr := fmt.Sprintf("%q", keys)
	if a.deploy.provider == providerEtcd {
		cfg, _ := json.Marshal(a.Etcd)
		return "etcd " + a.deploy.role + " " + string(cfg) + " " + kr
	}
	return "embedded " + a.storage.key() + " " + kr
}

// openStore attaches the store a's config names to reg and loads it,
// recording the etcd handle in act.
func (a *App) openStore(act *live.Activation, reg *registry.Registry) error {
	rt := live.Runtime()
	// every built-in stream plugin runs unless a data plane's etcd says
	// otherwise (below)
	rt.SetStreamPlugins(nil)
	if a.deploy.provider != providerEtcd {
		st := datacrypt.AtRest(store.New(a.storage.storage, "apisix").WithLogger(a.logger.Named("store")).WithMetrics(live.StoreMetrics()),
			a.deploy.keyring, live.StoreMetrics(), a.logger)
		if err := reg.Open(st, rt.Compile); err != nil {
			return fmt.Errorf("loading stored objects: %w", err)
		}
		act.Etcd = nil
		return nil
	}
	logger := a.logger.Named("etcd")
	opts := etcdstore.Options{
		Config: a.Etcd, Keyring: a.deploy.keyring, Check: adminapi.CheckStored,
		ReadOnly: a.deploy.role == roleDataPlane, Metrics: live.EtcdMetrics(), Logger: logger,
	}
	if a.deploy.role == roleDataPlane {
		// a node without the Admin API runs the stream plugins the
		// cluster's plugin list enables (docs/apisix/cluster.md#the-plugins-key)
		opts.OnPlugins = func(stream []string) {
			rt.SetStreamPlugins(stream)
			logger.Info("stream plugins enabled by etcd", zap.Strings("plugins", stream))
			if err := reg.Recompile(); err != nil {
				logger.Error("applying the stream plugin list", zap.Error(err))
			}
		}
	}
	st, err := etcdstore.New(opts)
	if err != nil {
		return err
	}
	reg.OnReject(func(e registry.Event, err error) {
		logger.Error("skipping etcd item the data path refuses; the last valid version stays",
			zap.String("key", a.Etcd.Prefix+"/"+string(e.Kind)+"/"+e.ID), zap.Error(err))
	})
	// wait briefly for the first load; etcd down means start empty and
	// keep retrying in the background
	if err := reg.OpenShared(st, rt.Compile, min(time.Duration(a.Etcd.Timeout), 5*time.Second)); err != nil {
		st.Close()
		return fmt.Errorf("etcd: %w", err)
	}
	act.Etcd = st
	return nil
}

// activate makes a the live app: the store is opened (once per storage),
// its static objects and settings are published. When it fails, the
// running config's settings and store stay (or come back).
func activate(a *App) (err error) {
	live.WithActivation(func(st *live.Activation) { err = activateLocked(st, a) })
	return err
}

func activateLocked(st *live.Activation, a *App) error {
	reg := live.Registry()
	cur := liveApp(st)
	publishSettings(a)
	if err := useStore(st, a); err != nil {
		publishSettings(cur)
		restoreStore(st, cur)
		return err
	}
	if err := reg.SetStatic(a.static); err != nil {
		publishSettings(cur)
		restoreStore(st, cur)
		return fmt.Errorf("static objects: %w", err)
	}
	a.mu.Lock()
	a.running = true
	a.prev = cur
	a.mu.Unlock()
	setLiveApp(st, a)
	live.SetAdminConfig(a.admin)
	return nil
}

// publishSettings gives the runtime a's settings: its logger, session
// limits, fallback SNI and access log; nil (no apisix app left) resets
// them, keeping the logger. Called under the activation lock.
func publishSettings(a *App) {
	rt := live.Runtime()
	if a == nil {
		rt.SetLimits(proxy.Limits{})
		rt.SetTCPCopy(proxy.CopyAuto)
		rt.SetFallbackSNI("")
		rt.SetAccessLog(false)
		return
	}
	rt.SetLogger(a.logger)
	rt.SetLimits(a.StreamProxy.limits())
	rt.SetTCPCopy(a.StreamProxy.copyMode())
	rt.SetFallbackSNI(a.FallbackSNI)
	rt.SetAccessLog(a.AccessLog)
}

// useStore switches the registry to a's store (its standalone document,
// etcd or the embedded store), unless it already uses it.
func useStore(st *live.Activation, a *App) error {
	if a.deploy.isStandalone() {
		return activateStandalone(st, a)
	}
	if k := a.storeKey(); k != st.StorageKey {
		if err := a.openStore(st, live.Registry()); err != nil {
			return err
		}
		st.StorageKey = k
	}
	return nil
}

// restoreStore puts the live app cur back on its own store after a new
// instance switched away from it and then failed or stopped (a failed
// reload): cur's writes must keep going where cur persists them.
func restoreStore(st *live.Activation, cur *App) {
	if cur == nil {
		return
	}
	key := standaloneKey
	if !cur.deploy.isStandalone() {
		key = cur.storeKey()
	}
	if key == st.StorageKey {
		cur.restartWatcher()
		return
	}
	if err := useStore(st, cur); err != nil {
		cur.logger.Error("reopening the store of the running config after a failed reload", zap.Error(err))
	}
}

// deactivate retires a; if a was live and the instance before it still
// runs (a failed reload), that one becomes live again.
func deactivate(a *App) {
	live.WithActivation(func(st *live.Activation) { deactivateLocked(st, a) })
}

func deactivateLocked(st *live.Activation, a *App) {
	a.mu.Lock()
	a.running = false
	prev := a.prev
	// a stopped instance is nobody's fallback any more: without these
	// links every instance would keep the one before it, and a process
	// reloaded N times would hold N configs
	a.prev = nil
	a.mu.Unlock()
	a.stopWatcher()
	a.watcher = nil
	if cur := liveApp(st); cur != a {
		if cur != nil {
			cur.mu.Lock()
			if cur.prev == a {
				cur.prev = nil
			}
			cur.mu.Unlock()
		}
		return
	}
	if prev != nil && prev.isRunning() {
		restoreStore(st, prev)
		setLiveApp(st, prev)
		publishSettings(prev)
		_ = live.Registry().SetStatic(prev.static)
		live.SetAdminConfig(prev.admin)
		return
	}
	// no apisix app is left (a reload to a config without one): its
	// static objects and settings go too, stored objects stay
	setLiveApp(st, nil)
	live.SetAdminConfig(nil)
	if st.Etcd != nil {
		live.Registry().CloseShared()
		st.Etcd, st.StorageKey = nil, ""
	}
	publishSettings(nil)
	_ = live.Registry().SetStatic(nil)
}

func (a *App) isRunning() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.running
}
