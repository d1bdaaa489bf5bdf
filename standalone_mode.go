package stream

import (
	"fmt"

	"github.com/caddy-apisix/stream/live"
	"github.com/caddy-apisix/stream/standalone"
	"github.com/caddy-apisix/stream/store"
)

// standaloneKey stands for "no embedded store" in live.Activation.StorageKey,
// so that a later embedded config opens its store again.
const standaloneKey = "standalone"

// standalonePrefix is where the API-driven standalone configuration is
// kept in Caddy storage, apart from the embedded store's objects.
const standalonePrefix = "apisix-standalone"

// Texts of the 405 that answers per-object writes on nodes whose objects
// come from elsewhere.
const (
	dataPlaneReadOnly  = "this node is a data_plane: the Admin API is read-only"
	standaloneReadOnly = "this node is in standalone mode: the Admin API is read-only; " +
		"replace the configuration with PUT /apisix/admin/configs"
)

func (d deployment) isStandalone() bool {
	return d.provider == providerYAML || d.provider == providerJSON
}

// provisionStandalone sets what the Admin API needs to know of the mode.
func (a *App) provisionStandalone() {
	switch {
	case a.deploy.role == roleDataPlane:
		a.admin.ReadOnly = dataPlaneReadOnly
	case a.deploy.isStandalone():
		a.admin.ReadOnly = standaloneReadOnly
	}
}

// activateStandalone publishes a's standalone document: the persisted
// one of the API-driven mode (role traditional), or config_file, watched
// from now on (role data_plane). Called under the activation lock.
func activateStandalone(st *live.Activation, a *App) error {
	reg, rt := live.Registry(), live.Runtime()
	if st.StorageKey != standaloneKey {
		// objects come from the document only: no embedded store
		if err := reg.Open(nil, rt.Compile); err != nil {
			return fmt.Errorf("standalone mode: %w", err)
		}
		if st.Etcd != nil {
			// its watch would write into the registry
			st.Etcd.Close()
			st.Etcd = nil
		}
		st.StorageKey = standaloneKey
	}
	if cur := liveApp(st); cur != nil {
		cur.stopWatcher()
	}
	if a.deploy.role == roleDataPlane {
		w := &standalone.Watcher{Path: a.deploy.configFile, Format: standalone.Format(a.deploy.provider),
			Registry: reg, Logger: a.logger}
		// a bad or missing file is logged and watched until it is fixed
		_ = w.Start()
		a.watcher = w
		return nil
	}
	c := standalone.NewConfigs(reg, store.New(a.storage.storage, standalonePrefix))
	if err := c.Restore(); err != nil {
		return fmt.Errorf("standalone mode: %w", err)
	}
	a.admin.Standalone = c
	return nil
}

// stopWatcher stops a's file watcher, if it has one. Called under the
// activation lock.
func (a *App) stopWatcher() {
	if w := a.watcher; w != nil {
		w.Stop()
	}
}

// restartWatcher starts a's file watcher again, when a becomes the live
// app again after a failed reload. Called under the activation lock.
func (a *App) restartWatcher() {
	if w := a.watcher; w != nil {
		_ = w.Start()
	}
}

// Interface guards
var _ standalone.Persister = (*store.Store)(nil)
