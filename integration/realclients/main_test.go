//go:build linux

package realclients

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// caddyBin is the binary TestMain builds from ./cmd/caddy; moduleRoot is
// the repository root.
var caddyBin, moduleRoot string

// goEnv pins GOPATH, GOCACHE and GOMODCACHE ("K=V") to this machine's,
// for programs run with another HOME.
var goEnv []string

func TestMain(m *testing.M) {
	os.Exit(e2e.Main(m, "realclients", func(bin, root string) error {
		caddyBin, moduleRoot = bin, root
		out, err := exec.Command("go", "env", "GOPATH", "GOCACHE", "GOMODCACHE").Output()
		if err != nil {
			return fmt.Errorf("go env: %v", err)
		}
		vals := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(vals) != 3 {
			return fmt.Errorf("go env printed %q", out)
		}
		for i, k := range []string{"GOPATH", "GOCACHE", "GOMODCACHE"} {
			goEnv = append(goEnv, k+"="+vals[i])
		}
		return nil
	}))
}

// inCI reports whether the tests run in CI, where a missing package is a
// failure rather than a reason to skip.
func inCI() bool { return os.Getenv("CI") == "true" }

// unavailable fails the test in CI and skips it elsewhere, with why.
func unavailable(t testing.TB, why string) {
	t.Helper()
	if inCI() {
		t.Fatalf("%s (CI=true: a missing prerequisite is a failure; scripts/test.sh installs the packages)", why)
	}
	t.Skipf("%s; run scripts/test.sh as root to install the packages", why)
}

// tools maps the programs the tests run to the Debian packages that
// ship them, for the message when one is missing.
var tools = map[string]string{
	"mariadb-install-db": "mariadb-server",
	"mariadbd":           "mariadb-server",
	"mysql":              "mariadb-client",
	"redis-server":       "redis-server",
	"redis-cli":          "redis-tools",
	"redis-benchmark":    "redis-tools",
	"dnsmasq":            "dnsmasq-base",
	"dig":                "dnsutils",
	"openssl":            "openssl",
	"curl":               "curl",
	"ip":                 "iproute2",
	"nsenter":            "util-linux",
	"git":                "git",
	"tar":                "tar",
	"systemd-analyze":    "systemd",
}

// need returns the paths of the named programs, looked up in PATH and
// the sbin directories (Debian puts mariadbd and dnsmasq there).
func need(t testing.TB, names ...string) map[string]string {
	t.Helper()
	paths := map[string]string{}
	var missing []string
	for _, name := range names {
		p, err := lookPath(name)
		if err != nil {
			missing = append(missing, fmt.Sprintf("%s (Debian package %s)", name, tools[name]))
			continue
		}
		paths[name] = p
	}
	if len(missing) > 0 {
		unavailable(t, "missing programs: "+strings.Join(missing, ", "))
	}
	return paths
}

// lookPath finds a program in PATH or in /usr/sbin and /sbin.
func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in PATH or sbin", name)
}

// logVersion logs the version line a program prints, so the test output
// says which real client or server was used.
func logVersion(t testing.TB, name string, args ...string) {
	t.Helper()
	p, err := lookPath(name)
	if err != nil {
		return
	}
	out, _ := exec.Command(p, args...).CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	t.Logf("version: %s: %s", name, line)
}
