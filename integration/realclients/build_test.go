//go:build linux

package realclients

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// xcaddyModule is the xcaddy the build test installs from the Go module
// proxy when it is not on PATH already at this version.
const xcaddyModule = "github.com/caddyserver/xcaddy/cmd/xcaddy@v0.4.5"

// pluginModules are the Caddy modules this plugin registers: a custom
// build must list every one.
var pluginModules = []string{
	"apisix",
	"admin.api.apisix",
	"layer4.handlers.apisix",
	"layer4.matchers.apisix",
	"layer4.handlers.apisix_proxy",
}

// buildWait bounds one go install or xcaddy build: a cold build cache
// compiles all of Caddy on two cores.
const buildWait = 15 * time.Minute

// runHost runs a command on the host (not in a namespace: xcaddy needs
// the module proxy) in dir with an isolated HOME, bounded by wait.
func runHost(t testing.TB, dir string, wait time.Duration, extraEnv []string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(isolatedEnv(t.TempDir()), extraEnv...)
	cmd.WaitDelay = stopWait
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return result{out.String(), errb.String(), err}
}

// TestXcaddyBuild runs the README's xcaddy command on the committed tree
// and checks that the binary it builds lists every module of the plugin.
func TestXcaddyBuild(t *testing.T) {
	tree := committedTree(t)
	var build []string
	for _, c := range shellCommands(t, readmeBlocks(t, tree), "") {
		if c[0] == "xcaddy" {
			build = c
			break
		}
	}
	if len(build) < 2 || build[1] != "build" {
		t.Fatalf("README.md shows no xcaddy build command (found %q)", build)
	}
	gobin := t.TempDir()
	inst := runHost(t, tree, buildWait, []string{"GOBIN=" + gobin}, "go", "install", xcaddyModule)
	if inst.err != nil {
		unavailable(t, "go install "+xcaddyModule+": "+inst.err.Error()+": "+inst.combined())
	}
	path := "PATH=" + gobin + string(os.PathListSeparator) + os.Getenv("PATH")
	if v := runHost(t, tree, cmdWait, []string{path}, filepath.Join(gobin, "xcaddy"), "version"); v.err == nil {
		t.Logf("version: xcaddy: %s", strings.TrimSpace(v.stdout))
	}
	start := time.Now()
	res := runHost(t, tree, buildWait, []string{path}, filepath.Join(gobin, "xcaddy"), build[1:]...)
	if res.err != nil {
		t.Fatalf("README's %q in a clean tree: %v\n%s", strings.Join(build, " "), res.err, res.combined())
	}
	t.Logf("%q built in %v", strings.Join(build, " "), time.Since(start).Round(time.Second))
	bin := filepath.Join(tree, "caddy")
	if out, ok := flagValue(build, "--output"); ok {
		bin = filepath.Join(tree, out)
	}
	list := runHost(t, tree, cmdWait, nil, bin, "list-modules")
	if list.err != nil {
		t.Fatalf("%s list-modules: %v\n%s", bin, list.err, list.combined())
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(list.stdout, "\n") {
		listed[strings.TrimSpace(line)] = true
	}
	for _, m := range pluginModules {
		if !listed[m] {
			t.Errorf("the xcaddy build does not list module %s:\n%s", m, list.stdout)
		}
	}
	if v := runHost(t, tree, cmdWait, nil, bin, "version"); v.err == nil {
		t.Logf("built caddy version %s", strings.TrimSpace(v.stdout))
	}
}

// TestExamples checks that caddy adapt accepts every Caddyfile in
// examples/ (with an apisix app in its output) and caddy validate every
// file there.
func TestExamples(t *testing.T) {
	dir := filepath.Join(moduleRoot, "examples")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 {
		t.Fatal("examples/ is empty")
	}
	for _, e := range entries {
		if e.IsDir() || strings.HasSuffix(e.Name(), ".md") {
			continue // the directories are run by TestServiceExamples
		}
		path := filepath.Join(dir, e.Name())
		t.Run(e.Name(), func(t *testing.T) {
			args := []string{"--config", path}
			switch {
			case e.Name() == "Caddyfile" || strings.HasSuffix(e.Name(), ".caddyfile") || strings.HasPrefix(e.Name(), "Caddyfile."):
				args = append(args, "--adapter", "caddyfile")
				r := runHost(t, dir, cmdWait, nil, caddyBin, append([]string{"adapt"}, args...)...)
				if r.err != nil {
					t.Fatalf("caddy adapt: %v\n%s", r.err, r.combined())
				}
				var cfg struct {
					Apps map[string]json.RawMessage `json:"apps"`
				}
				if err := json.Unmarshal([]byte(r.stdout), &cfg); err != nil || cfg.Apps["apisix"] == nil {
					t.Fatalf("caddy adapt printed no apisix app (%v):\n%s", err, r.stdout)
				}
			case strings.HasSuffix(e.Name(), ".json"):
				// JSON is Caddy's native format: there is nothing to adapt.
			default:
				t.Fatalf("examples/%s: neither a Caddyfile nor JSON; teach this test its adapter", e.Name())
			}
			r := runHost(t, dir, cmdWait, nil, caddyBin, append([]string{"validate"}, args...)...)
			if r.err != nil || !strings.Contains(r.combined(), "Valid configuration") {
				t.Fatalf("caddy validate: %v\n%s", r.err, r.combined())
			}
		})
	}
}
