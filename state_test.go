//go:build linux

package stream

import (
	"path/filepath"
	"runtime"
	"testing"
	"weak"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/caddy-apisix/stream/adminapi"
	"github.com/caddy-apisix/stream/datacrypt"
	"github.com/caddy-apisix/stream/live"
	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/proxy"
	"github.com/caddy-apisix/stream/registry"
	"github.com/caddy-apisix/stream/store"
)

// TestStoreKeyStableAcrossProvisions: two provisions of one config name
// the same store, so a reload keeps it open (an etcd store reopened on
// every reload dropped every route until etcd answered); another keyring
// names another store.
func TestStoreKeyStableAcrossProvisions(t *testing.T) {
	confs := []*datacrypt.Config{nil, {Keyring: []string{"qeddd145sfvddff3"}}, {Keyring: []string{}}}
	seen := map[string]int{}
	for i, de := range confs {
		var keys [2]string
		for j := range keys {
			kr, err := de.Build()
			if err != nil {
				t.Fatal(err)
			}
			a := &App{DataEncryption: de}
			a.deploy.keyring = kr
			keys[j] = a.storeKey()
		}
		if keys[0] != keys[1] {
			t.Errorf("data_encryption %d: two provisions give %q and %q", i, keys[0], keys[1])
		}
		if prev, ok := seen[keys[0]]; ok {
			t.Errorf("data_encryption %d and %d name the same store %q", prev, i, keys[0])
		}
		seen[keys[0]] = i
	}
}

// newTestApp is an app on storage st that activate and deactivate can
// drive without Caddy.
func newTestApp(st certmagic.Storage, d deployment) *App {
	return &App{logger: zap.NewNop(), storage: storageRef{storage: st}, admin: &adminapi.Config{}, deploy: d}
}

func putRoute(t *testing.T, id string) error {
	t.Helper()
	return live.Registry().Update(func(tx *registry.Tx) error {
		_, _, err := tx.Put(model.StreamRoutes, id, []byte(`{"server_port":9,"upstream":{"nodes":{"127.0.0.1:1":1}}}`))
		return err
	})
}

// TestFailedActivateKeepsTheLiveStore: a reload to an API-driven
// standalone config whose stored document is invalid fails, and the app
// still running keeps persisting its writes in its own embedded store.
func TestFailedActivateKeepsTheLiveStore(t *testing.T) {
	st := &certmagic.FileStorage{Path: t.TempDir()}
	live := newTestApp(st, deployment{role: roleTraditional, provider: providerEmbedded})
	if err := activate(live); err != nil {
		t.Fatal(err)
	}
	defer deactivate(live)
	if err := store.New(st, standalonePrefix).WriteBlob("config.json", []byte(`{"stream_routes":[{"id":"x","bogus":1}]}`)); err != nil {
		t.Fatal(err)
	}
	if err := activate(newTestApp(st, deployment{role: roleTraditional, provider: providerJSON})); err == nil {
		t.Fatal("activating a config with an invalid stored document succeeded")
	}
	if err := putRoute(t, "after"); err != nil {
		t.Fatal(err)
	}
	objs, _, err := store.New(st, "apisix").Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 {
		t.Errorf("the embedded store holds %d objects after a write acknowledged by the live app, want 1", len(objs))
	}
}

// TestSwitchToFileStandaloneDropsStoredRoutes: after a reload from the
// embedded store to a file-driven standalone config whose file does not
// exist yet, no stored route is served.
func TestSwitchToFileStandaloneDropsStoredRoutes(t *testing.T) {
	dir := t.TempDir()
	st := &certmagic.FileStorage{Path: dir}
	embedded := newTestApp(st, deployment{role: roleTraditional, provider: providerEmbedded})
	if err := activate(embedded); err != nil {
		t.Fatal(err)
	}
	if err := putRoute(t, "stored"); err != nil {
		t.Fatal(err)
	}
	file := newTestApp(st, deployment{role: roleDataPlane, provider: providerYAML, configFile: filepath.Join(dir, "missing.yaml")})
	if err := activate(file); err != nil {
		t.Fatal(err)
	}
	deactivate(embedded)
	defer deactivate(file)
	n := 0
	live.Registry().View(func(v registry.View) { n = len(v.List(model.StreamRoutes)) })
	if n != 0 {
		t.Errorf("%d stored route(s) still served in file-driven standalone mode", n)
	}
}

// TestFailedReloadKeepsRuntimeSettings: a reload whose Start fails, and
// one that started but is stopped because another app of the reload
// failed, leave the running config's logger and session limits in the
// runtime.
func TestFailedReloadKeepsRuntimeSettings(t *testing.T) {
	st := &certmagic.FileStorage{Path: t.TempDir()}
	running := newTestApp(st, deployment{role: roleTraditional, provider: providerEmbedded})
	running.StreamProxy = &StreamProxy{TCPMaxConnections: 7, UDPMaxSessions: 3, TCPCopy: "splice"}
	if err := running.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = running.Stop() }()
	rt := live.Runtime()
	check := func(when string) {
		t.Helper()
		if rt.Logger() != running.logger {
			t.Errorf("%s: the runtime logs to another logger than the running config's", when)
		}
		if l := rt.Limits(); l.TCPConnections != 7 || l.UDPSessionsPerListener != 3 {
			t.Errorf("%s: runtime limits %+v, want the running config's (tcp 7, udp 3)", when, l)
		}
		if m := rt.TCPCopy(); m != proxy.CopySplice {
			t.Errorf("%s: runtime copy mode %d, want the running config's splice (%d)", when, m, proxy.CopySplice)
		}
	}
	check("after start")

	// a Start that fails: its stored standalone document is invalid
	if err := store.New(st, standalonePrefix).WriteBlob("config.json", []byte(`{"stream_routes":[{"id":"x","bogus":1}]}`)); err != nil {
		t.Fatal(err)
	}
	bad := newTestApp(st, deployment{role: roleTraditional, provider: providerJSON})
	bad.logger = zap.NewExample()
	bad.StreamProxy = &StreamProxy{TCPMaxConnections: 1}
	if err := bad.Start(); err == nil {
		t.Fatal("starting a config with an invalid stored document succeeded")
	}
	check("after a failed Start")

	// a Start that succeeds, then a Stop because the reload failed
	// elsewhere: the running config is live again
	next := newTestApp(st, deployment{role: roleTraditional, provider: providerEmbedded})
	next.logger = zap.NewExample()
	next.StreamProxy = &StreamProxy{TCPMaxConnections: 2}
	if err := next.Start(); err != nil {
		t.Fatal(err)
	}
	if l := rt.Limits(); l.TCPConnections != 2 {
		t.Errorf("after the new config started: runtime limits %+v, want its tcp 2", l)
	}
	if m := rt.TCPCopy(); m != proxy.CopyAuto {
		t.Errorf("after the new config started: runtime copy mode %d, want its auto (%d)", m, proxy.CopyAuto)
	}
	if err := next.Stop(); err != nil {
		t.Fatal(err)
	}
	check("after the started config of a failed reload stopped")
}

// TestReloadsReleaseOldInstances: after reloads (the new instance
// activated, then the old one stopped), the stopped instances can be
// garbage collected; each one used to keep its predecessor, so a process
// held every config it was ever reloaded with.
func TestReloadsReleaseOldInstances(t *testing.T) {
	st := &certmagic.FileStorage{Path: t.TempDir()}
	cur := newTestApp(st, deployment{role: roleTraditional, provider: providerEmbedded})
	if err := activate(cur); err != nil {
		t.Fatal(err)
	}
	var old []weak.Pointer[App]
	for range 20 {
		next := newTestApp(st, deployment{role: roleTraditional, provider: providerEmbedded})
		if err := activate(next); err != nil {
			t.Fatal(err)
		}
		deactivate(cur)
		old = append(old, weak.Make(cur))
		cur = next
	}
	defer deactivate(cur)
	runtime.GC()
	runtime.GC()
	kept := 0
	for _, w := range old {
		if w.Value() != nil {
			kept++
		}
	}
	if kept > 0 {
		t.Errorf("%d of %d stopped instances are still reachable after 20 reloads", kept, len(old))
	}
}
