//go:build linux

package integration

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// adapt runs caddy adapt on a Caddyfile and returns its JSON output,
// indented, and its log output.
func adapt(t *testing.T, path string) (string, string, error) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(caddyBin, "adapt", "--config", path, "--adapter", "caddyfile")
	cmd.Dir = dir
	cmd.Env = e2e.Env(dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(30*time.Second, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	if err := cmd.Wait(); err != nil {
		return "", stderr.String(), err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, stdout.Bytes(), "", "\t"); err != nil {
		t.Fatalf("caddy adapt printed invalid JSON: %v\n%s", err, stdout.String())
	}
	out.WriteByte('\n')
	return out.String(), stderr.String(), nil
}

// TestAdaptGolden adapts examples/Caddyfile and testdata/*.Caddyfile and
// compares the JSON with the golden file (testdata/<name>.json); -update
// rewrites the golden files. Every adapted config must also validate.
func TestAdaptGolden(t *testing.T) {
	type golden struct{ name, in, out string }
	cases := []golden{{"examples/Caddyfile",
		filepath.Join(moduleRoot, "examples", "Caddyfile"),
		filepath.Join(moduleRoot, "integration", "testdata", "examples_Caddyfile.json")}}
	files, err := filepath.Glob(filepath.Join(moduleRoot, "integration", "testdata", "*.Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/*.Caddyfile found")
	}
	for _, f := range files {
		cases = append(cases, golden{filepath.Base(f), f, strings.TrimSuffix(f, ".Caddyfile") + ".json"})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, logs, err := adapt(t, tc.in)
			if err != nil {
				t.Fatalf("caddy adapt: %v\n%s", err, logs)
			}
			if strings.Contains(logs, `"level":"warn"`) {
				t.Errorf("caddy adapt warned:\n%s", logs)
			}
			if *update {
				if err := os.WriteFile(tc.out, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(tc.out)
			if err != nil {
				t.Fatalf("golden file: %v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("caddy adapt %s differs from %s (run with -update after checking):\n--- got\n%s\n--- want\n%s", tc.in, tc.out, got, want)
			}
			adapted := filepath.Join(t.TempDir(), "adapted.json")
			if err := os.WriteFile(adapted, []byte(got), 0o600); err != nil {
				t.Fatal(err)
			}
			if out, err := runCaddy(t, "validate", "--config", adapted); err != nil {
				t.Errorf("the adapted config does not validate: %v\n%s", err, out)
			}
		})
	}
}

// TestAdaptErrors checks that Caddyfile mistakes are refused with a
// message naming the problem and the line.
func TestAdaptErrors(t *testing.T) {
	tests := []struct {
		name, body string
		want       []string
	}{
		{"udp with options", "stream_proxy {\n\t\tudp 9200 {\n\t\t\ttls\n\t\t}\n\t}", []string{"stream_proxy.udp entries take no options"}},
		{"unknown tcp option", "stream_proxy {\n\t\ttcp 9100 {\n\t\t\tbogus\n\t\t}\n\t}", []string{`unknown tcp option "bogus"`}},
		{"unknown network", "stream_proxy {\n\t\tsctp 9100\n\t}", []string{`unknown stream_proxy directive "sctp"`}},
		{"tcp without address", "stream_proxy {\n\t\ttcp\n\t}", []string{"wrong argument count"}},
		{"admin_key without key", "admin_key onlyname", []string{"admin_key: want <name> <key> [role]"}},
		{"fallback_sni twice", "fallback_sni a.example b.example", []string{"wrong argument count"}},
		{"unknown option", "bogus 1", []string{`unknown apisix option "bogus"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "Caddyfile")
			body := "{\n\tapisix {\n\t" + tc.body + "\n\t}\n}\n"
			if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			_, logs, err := adapt(t, path)
			if err == nil {
				t.Fatalf("caddy adapt accepted:\n%s", body)
			}
			for _, w := range append(tc.want, "Caddyfile:") {
				if !containsLogged(logs, w) {
					t.Errorf("output lacks %q:\n%s", w, logs)
				}
			}
		})
	}
}
