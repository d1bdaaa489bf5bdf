//go:build linux

package e2e

import (
	"os"
	"path/filepath"
	"strings"
)

// Env is the process environment with HOME and the XDG directories under
// dir, so nothing a test runs touches the user's real data. extra ("K=V")
// adds variables or replaces inherited ones.
func Env(dir string, extra ...string) []string {
	own := []string{
		"HOME=" + dir,
		"XDG_DATA_HOME=" + filepath.Join(dir, "data"),
		"XDG_CONFIG_HOME=" + filepath.Join(dir, "config"),
		"XDG_CACHE_HOME=" + filepath.Join(dir, "cache"),
	}
	own = append(own, extra...)
	set := map[string]bool{}
	for _, kv := range own {
		k, _, _ := strings.Cut(kv, "=")
		set[k] = true
	}
	env := own
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !set[k] {
			env = append(env, kv)
		}
	}
	return env
}
