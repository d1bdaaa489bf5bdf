//go:build linux

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Main is a TestMain body: it builds ./cmd/caddy of the enclosing module
// once into a temporary directory, calls setup with the binary's path and
// the module root, runs the tests and removes the binary. name prefixes
// its error messages. It returns the exit code for os.Exit, which is a
// failure too when a Caddy process printed a secret (secrets.go).
//
// With APISIX_E2E_CADDY set to the path of a binary built from this
// module (scripts/test.sh builds one for all packages), that binary is
// used instead and left in place.
func Main(m *testing.M, name string, setup func(bin, root string) error) int {
	code, err := buildAndRun(m, setup)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 1
	}
	return code
}

func buildAndRun(m *testing.M, setup func(bin, root string) error) (int, error) {
	root, err := ModuleRoot()
	if err != nil {
		return 0, err
	}
	bin := os.Getenv("APISIX_E2E_CADDY")
	if bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return 0, fmt.Errorf("APISIX_E2E_CADDY: %w", err)
		}
	} else {
		dir, err := os.MkdirTemp("", "apisix-e2e-bin-")
		if err != nil {
			return 0, err
		}
		defer os.RemoveAll(dir)
		bin = filepath.Join(dir, "caddy")
		build := exec.Command("go", "build", "-o", bin, "./cmd/caddy")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("building ./cmd/caddy failed: %w\n%s", err, out)
		}
	}
	if setup != nil {
		if err := setup(bin, root); err != nil {
			return 0, err
		}
	}
	code := m.Run()
	if leaks := LeakedSecrets(); len(leaks) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: secrets in Caddy's output:\n  %s\n", strings.Join(leaks, "\n  "))
		if code == 0 {
			code = 1
		}
	}
	return code, nil
}

// ModuleRoot is the nearest directory at or above the working directory
// (a test's package directory) that holds go.mod.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for range 64 { // bounded: a path has far fewer levels
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", fmt.Errorf("module root (go.mod) not found above the test's directory")
}
