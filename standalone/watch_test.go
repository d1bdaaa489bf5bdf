package standalone

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"
)

// TestWatcher publishes the file, follows a good change, keeps the last
// good document over a broken one, and publishes the fix.
func TestWatcher(t *testing.T) {
	reg := registry.New()
	if err := reg.Open(nil, nil); err != nil {
		t.Fatal(err)
	}
	port := func() string {
		var v string
		reg.View(func(vw registry.View) {
			if o := vw.Get(model.StreamRoutes, "r"); o != nil {
				v = string(o.Value)
			}
		})
		return v
	}
	file := filepath.Join(t.TempDir(), "apisix.yaml")
	write := func(doc string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	doc := func(p string) string { return "stream_routes:\n  - id: r\n    server_port: " + p + "\n#END\n" }
	w := &Watcher{Path: file, Format: YAML, Registry: reg, Interval: time.Hour, Lookup: env(nil)}
	if err := w.Start(); err == nil {
		t.Fatal("a missing file loaded")
	}
	defer w.Stop()
	steps := []struct {
		doc, wantPort, wantErr string
	}{
		{doc("1"), `"server_port":1`, ""},
		{doc("2"), `"server_port":2`, ""},
		{doc(`"x"`), `"server_port":2`, "invalid stream_routes[0]"},
		{strings.TrimSuffix(doc("3"), "#END\n"), `"server_port":2`, "missing valid end flag"},
		{doc("3"), `"server_port":3`, ""},
	}
	for i, st := range steps {
		write(st.doc)
		// a later mtime even on coarse clocks
		later := time.Now().Add(time.Duration(i+1) * time.Second)
		if err := os.Chtimes(file, later, later); err != nil {
			t.Fatal(err)
		}
		err := w.Reload()
		if (err == nil) != (st.wantErr == "") || (err != nil && !strings.Contains(err.Error(), st.wantErr)) {
			t.Fatalf("step %d: error %v, want %q", i, err, st.wantErr)
		}
		if !strings.Contains(port(), st.wantPort) {
			t.Fatalf("step %d: route %s, want %s", i, port(), st.wantPort)
		}
	}
	// an untouched file is not read again
	if err := w.Reload(); err != nil {
		t.Fatal(err)
	}
}
