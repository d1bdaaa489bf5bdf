//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// AdminKey is the admin key of the seed document, which every test
// config uses for its admin role.
const AdminKey = "edd1c9f034335f136f87ad84b625c8f1"

// ViewerKey is the seed document's viewer key, for the tests that
// configure a viewer role.
const ViewerKey = "4054f7cf07e344346cd3f287985e76a2"

// ApisixApp is an apisix app config with the admin key AdminKey, Admin
// API clients allowed from 127.0.0.0/24 and ::1, and the given fields
// (which replace those).
func ApisixApp(fields map[string]any) map[string]any {
	app := map[string]any{
		"admin_key":   []any{map[string]any{"name": "admin", "key": AdminKey, "role": "admin"}},
		"allow_admin": []string{"127.0.0.0/24", "::1"},
	}
	for k, v := range fields {
		app[k] = v
	}
	return app
}

// LogLevel is a Caddy "logging" config whose default log has level.
func LogLevel(level string) map[string]any {
	return map[string]any{"logs": map[string]any{"default": map[string]any{"level": level}}}
}

// CaddyConfig is a full Caddy JSON config: the admin endpoint on admin
// (host:port), file_system storage at storage, the logging config and
// the apps.
func CaddyConfig(admin, storage string, logging, apps map[string]any) map[string]any {
	return map[string]any{
		"admin":   map[string]any{"listen": admin},
		"storage": map[string]any{"module": "file_system", "root": storage},
		"logging": logging,
		"apps":    apps,
	}
}

// WriteJSON writes v as indented JSON to dir/name and returns the path.
func WriteJSON(t testing.TB, dir, name string, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "\t")
	if err != nil {
		t.Fatalf("encoding %s: %v", name, err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// CaddyCmd is "bin run --config config" in dir with Env(dir, env...).
func CaddyCmd(bin, config, dir string, env ...string) *exec.Cmd {
	cmd := exec.Command(bin, "run", "--config", config)
	cmd.Dir = dir
	cmd.Env = Env(dir, env...)
	return cmd
}

// ApisixReady is a readiness check for WaitReady: the Admin API on admin
// (host:port) answers 200 to GET /apisix/admin/upstreams with key ("" for
// none). It answers 503 until the apisix app runs.
func ApisixReady(admin, key string) func() error {
	return func() error {
		code, _, body, err := Admin{Addr: admin}.Do(http.MethodGet, "/apisix/admin/upstreams", key, nil, nil)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("admin API: %d %s", code, body)
		}
		return nil
	}
}

// TmpfsCaddyCmd runs Caddy on config twice, one run after the other, in a
// mount namespace of its own whose storageRoot is a tmpfs of size (e.g.
// "256k"): the disk fills up for real. The first run ends with POST
// /stop; then the file restarted (outside the tmpfs) is created and the
// second run starts on the same tmpfs, the restart. It needs root and
// unshare(1); RequireTmpfs checks. Start it with Options.Group, so that
// Stop reaches Caddy.
func TmpfsCaddyCmd(bin, config, dir, storageRoot, size, restarted string) *exec.Cmd {
	script := `mount -t tmpfs -o size="$5" tmpfs "$1" || exit 90; "$2" run --config "$3"; : >"$4"; exec "$2" run --config "$3"`
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", storageRoot, bin, config, restarted, size)
	cmd.Dir = dir
	cmd.Env = Env(dir)
	return cmd
}

// RequireTmpfs skips the test (fails it with CI=true) unless
// TmpfsCaddyCmd can run: root and unshare(1) (util-linux).
func RequireTmpfs(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("unshare"); err == nil && os.Geteuid() == 0 {
		return
	}
	msg := "needs root and unshare(1) (util-linux) to mount a small tmpfs in a mount namespace"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
