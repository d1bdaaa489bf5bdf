//go:build linux

package realclients

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestSystemdUnit checks dist/caddy-apisix.service with systemd-analyze
// verify, its ExecStart pointed at the binary under test (the unit names
// /usr/bin/caddy, where the packaged binary goes).
func TestSystemdUnit(t *testing.T) {
	analyze := need(t, "systemd-analyze")["systemd-analyze"]
	unit, err := os.ReadFile(filepath.Join(moduleRoot, "dist", "caddy-apisix.service"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "ExecStart=/usr/bin/caddy run ") {
		t.Fatalf("the unit does not start /usr/bin/caddy run:\n%s", unit)
	}
	path := filepath.Join(t.TempDir(), "caddy-apisix.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/bin/caddy", caddyBin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", "--man=no", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestDockerfileBuild checks that the Dockerfile's build step is the
// README's xcaddy command (which TestXcaddyBuild runs on a clean tree),
// applied to the source the Dockerfile copies into the image.
func TestDockerfileBuild(t *testing.T) {
	df, err := os.ReadFile(filepath.Join(moduleRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var src string
	var build []string
	for _, ins := range dockerInstructions(string(df)) {
		switch {
		case strings.HasPrefix(ins, "COPY . "):
			src = strings.TrimSpace(strings.TrimPrefix(ins, "COPY . "))
		case strings.HasPrefix(ins, "RUN xcaddy "):
			cmds, err := parseCommands(strings.TrimPrefix(ins, "RUN "))
			if err != nil || len(cmds) != 1 {
				t.Fatalf("RUN line %q: %v", ins, err)
			}
			build = cmds[0]
		}
	}
	if src == "" || build == nil {
		t.Fatalf("the Dockerfile has no COPY . <dir> and RUN xcaddy build step:\n%s", df)
	}
	for i, a := range build {
		build[i] = strings.ReplaceAll(a, "="+src, "=.")
	}
	for _, c := range shellCommands(t, readmeBlocks(t, moduleRoot), "") {
		if c[0] == "xcaddy" {
			if !slices.Equal(c, build) {
				t.Fatalf("the Dockerfile builds %q, the README %q", build, c)
			}
			return
		}
	}
	t.Fatal("README.md shows no xcaddy build command")
}

// dockerInstructions returns a Dockerfile's instructions, continuation
// lines joined and comments dropped.
func dockerInstructions(df string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(df, "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if rest, ok := strings.CutSuffix(trimmed, "\\"); ok {
			cur.WriteString(rest + " ")
			continue
		}
		cur.WriteString(trimmed)
		out = append(out, cur.String())
		cur.Reset()
	}
	return out
}
