package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"
)

// mapStorage is a certmagic.Storage in memory, to run the store's generic
// (non-file) path. fail, when set, fails Store and Delete.
type mapStorage struct {
	mu   sync.Mutex
	m    map[string][]byte
	fail error
}

func newMapStorage() *mapStorage { return &mapStorage{m: map[string][]byte{}} }

func (s *mapStorage) Lock(context.Context, string) error   { return nil }
func (s *mapStorage) Unlock(context.Context, string) error { return nil }

func (s *mapStorage) Store(_ context.Context, key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.m[key] = append([]byte(nil), value...)
	return nil
}

func (s *mapStorage) Load(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return append([]byte(nil), v...), nil
}

func (s *mapStorage) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	delete(s.m, key)
	return nil
}

func (s *mapStorage) Exists(_ context.Context, key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[key]
	return ok
}

func (s *mapStorage) List(_ context.Context, prefix string, _ bool) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []string
	for k := range s.m {
		if strings.HasPrefix(k, prefix+"/") {
			keys = append(keys, k)
		}
	}
	if keys == nil {
		return nil, fs.ErrNotExist
	}
	return keys, nil
}

func (s *mapStorage) Stat(_ context.Context, key string) (certmagic.KeyInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	if !ok {
		return certmagic.KeyInfo{}, fs.ErrNotExist
	}
	return certmagic.KeyInfo{Key: key, Size: int64(len(v)), IsTerminal: true}, nil
}

// backends returns the storages every store test runs on.
func backends(t *testing.T) map[string]certmagic.Storage {
	return map[string]certmagic.Storage{
		"file":    &certmagic.FileStorage{Path: t.TempDir()},
		"generic": newMapStorage(),
	}
}

func obj(kind model.Kind, id string, rev int64, value string) *registry.Object {
	return &registry.Object{Kind: kind, ID: id, Value: []byte(value), CreatedIndex: rev, ModifiedIndex: rev}
}

func mustLoad(t *testing.T, s registry.Store) ([]*registry.Object, int64) {
	t.Helper()
	objs, n, err := s.Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return objs, n
}

func TestRoundTrip(t *testing.T) {
	for name, storage := range backends(t) {
		t.Run(name, func(t *testing.T) {
			s := New(storage, "")
			objs, n := mustLoad(t, s)
			if len(objs) != 0 || n != 0 {
				t.Fatalf("empty store loaded %v, %d", objs, n)
			}
			puts := []*registry.Object{
				obj(model.StreamRoutes, "1", 1, `{"id":"1","create_time":1700000000,"update_time":1700000000,"server_port":9100}`),
				obj(model.Upstreams, "00000000000000000002", 2, `{"id":"00000000000000000002","nodes":{"127.0.0.1:80":1}}`),
				obj(model.SSLs, "Cert.A", 3, `{"id":"Cert.A","key":"secret"}`),
				obj(model.StreamRoutes, "..", 4, `{"id":".."}`),
				obj(model.StreamRoutes, "a/b", 5, `{"id":"a/b"}`),
			}
			for _, o := range puts {
				if err := s.Put(o); err != nil {
					t.Fatalf("Put %s/%s: %v", o.Kind, o.ID, err)
				}
			}
			// Overwrite keeps the object's creation revision.
			updated := &registry.Object{Kind: model.StreamRoutes, ID: "1", Value: []byte(`{"id":"1","server_port":9101}`), CreatedIndex: 1, ModifiedIndex: 6}
			if err := s.Put(updated); err != nil {
				t.Fatal(err)
			}
			puts[0] = updated
			if err := s.SaveCounter(7); err != nil {
				t.Fatal(err)
			}
			if err := s.Delete(model.StreamRoutes, "a/b"); err != nil {
				t.Fatal(err)
			}
			if err := s.Delete(model.StreamRoutes, "missing"); err != nil {
				t.Fatalf("deleting a missing object: %v", err)
			}
			want := puts[:4]
			sort.Slice(want, func(i, j int) bool {
				return want[i].Kind < want[j].Kind || want[i].Kind == want[j].Kind && want[i].ID < want[j].ID
			})

			// A new Store on the same storage is a restart.
			s2 := New(storage, "apisix")
			got, skipped := scan(t, s2)
			if len(skipped) != 0 {
				t.Fatalf("skipped: %v", skipped)
			}
			if !reflect.DeepEqual(got.objs, want) {
				t.Fatalf("loaded\n%s\nwant\n%s", dump(got.objs), dump(want))
			}
			if got.counter != 7 {
				t.Fatalf("counter = %d, want 7", got.counter)
			}
			// Another prefix is another store.
			if objs, n := mustLoad(t, New(storage, "other")); len(objs) != 0 || n != 0 {
				t.Fatalf("prefix other loaded %v, %d", objs, n)
			}
		})
	}
}

type loaded struct {
	objs    []*registry.Object
	counter int64
}

func scan(t *testing.T, s *Store) (loaded, []*SkipError) {
	t.Helper()
	objs, n, skipped, err := s.Scan()
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return loaded{objs, n}, skipped
}

func dump(objs []*registry.Object) string {
	var b strings.Builder
	for _, o := range objs {
		fmt.Fprintf(&b, "  %s/%s c=%d m=%d %s\n", o.Kind, o.ID, o.CreatedIndex, o.ModifiedIndex, o.Value)
	}
	return b.String()
}

func TestFileLayoutAndMode(t *testing.T) {
	dir := t.TempDir()
	s := New(&certmagic.FileStorage{Path: dir}, "")
	if err := s.Put(obj(model.SSLs, "1", 1, `{"id":"1","key":"-----BEGIN PRIVATE KEY-----"}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(obj(model.StreamRoutes, "R", 2, `{"id":"R"}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCounter(2); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"apisix/ssls/1":            `{"kind":"ssls","id":"1","createdIndex":1,"modifiedIndex":1,"value":{"id":"1","key":"-----BEGIN PRIVATE KEY-----"}}` + "\n",
		"apisix/stream_routes/%52": `{"kind":"stream_routes","id":"R","createdIndex":2,"modifiedIndex":2,"value":{"id":"R"}}` + "\n",
		"apisix/gen_id":            "2",
	}
	for rel, want := range files {
		name := filepath.Join(dir, filepath.FromSlash(rel))
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", rel, fi.Mode().Perm())
		}
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if string(data) != want {
			t.Errorf("%s:\n got %s\nwant %s", rel, data, want)
		}
	}
	for _, d := range []string{"apisix", "apisix/ssls"} {
		fi, err := os.Stat(filepath.Join(dir, d))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v, want 0700", d, fi.Mode().Perm())
		}
	}
	// No temporary file is left behind.
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), tempPrefix) {
			t.Errorf("temporary file left: %s", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestLoadSkipsDamagedEntries(t *testing.T) {
	dir := t.TempDir()
	s := New(&certmagic.FileStorage{Path: dir}, "")
	good := obj(model.StreamRoutes, "1", 1, `{"id":"1"}`)
	if err := s.Put(good); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCounter(5); err != nil {
		t.Fatal(err)
	}
	envelope := func(kind, id string) string {
		return fmt.Sprintf(`{"kind":%q,"id":%q,"createdIndex":1,"modifiedIndex":1,"value":{}}`, kind, id)
	}
	bad := map[string]string{
		"apisix/stream_routes/.tmp-123":   envelope("stream_routes", "x"), // interrupted write
		"apisix/stream_routes/2":          `{"kind":"stream_routes","id":"2","createdIndex":1,"modifiedIndex":1,"value":{"a`,
		"apisix/stream_routes/3":          envelope("stream_routes", "4"), // key and content disagree
		"apisix/upstreams/3":              envelope("stream_routes", "3"),
		"apisix/stream_routes/%61":        envelope("stream_routes", "a"), // not canonical
		"apisix/stream_routes/empty":      "",
		"apisix/stream_routes/deep/1":     envelope("stream_routes", "1"),
		"apisix/Bad_Kind/1":               envelope("Bad_Kind", "1"),
		"apisix/.tmp-9":                   "1",
		"apisix/stray":                    "x",
		"apisix/ssls/%2E%2E%2Fetc%2Fpass": envelope("ssls", "../etc/pass"), // not canonical either
	}
	for rel, data := range bad {
		name := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A temporary file old enough to be left by a crash is removed; a
	// fresh one may belong to a write in progress and is kept.
	stale := filepath.Join(dir, "apisix", ".tmp-9")
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	m := NewMetrics()
	objs, n, err := New(&certmagic.FileStorage{Path: dir}, "").WithLogger(zap.New(core)).WithMetrics(m).Load()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(objs, []*registry.Object{good}) || n != 5 {
		t.Fatalf("loaded\n%s counter %d; want only %s/%s and 5", dump(objs), n, good.Kind, good.ID)
	}
	// Directories where files belong, and the reverse, are reported too;
	// temporary files at INFO, the rest at ERROR with their file.
	wantKeys := []string{"apisix/stream_routes/deep", "apisix/Bad_Kind"}
	for rel := range bad {
		wantKeys = append(wantKeys, rel)
	}
	sort.Strings(wantKeys)
	var gotKeys []string
	errorsLogged := 0
	for _, e := range logs.All() {
		key := e.ContextMap()["key"].(string)
		gotKeys = append(gotKeys, key)
		isTemp := strings.Contains(key, ".tmp-")
		if want := map[bool]zapcore.Level{true: zap.InfoLevel, false: zap.ErrorLevel}[isTemp]; e.Level != want {
			t.Errorf("%s logged at %v, want %v", key, e.Level, want)
		}
		if file, _ := e.ContextMap()["file"].(string); file != filepath.Join(dir, filepath.FromSlash(key)) {
			t.Errorf("%s logged with file %q", key, file)
		}
		if !isTemp {
			errorsLogged++
			// nothing is deleted
			if _, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(key))); err != nil {
				t.Errorf("%s is gone: %v", key, err)
			}
		}
	}
	sort.Strings(gotKeys)
	if !reflect.DeepEqual(gotKeys, wantKeys) {
		t.Fatalf("warned about\n%q\nwant\n%q", gotKeys, wantKeys)
	}
	if got := testutil.ToFloat64(m); got != float64(errorsLogged) || errorsLogged == 0 {
		t.Errorf("apisix_store_unreadable_objects = %v, want %d", got, errorsLogged)
	}
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale temporary file not removed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "apisix", "stream_routes", ".tmp-123")); err != nil {
		t.Errorf("fresh temporary file removed: %v", err)
	}
}

func TestLoadBadCounterIsSkipped(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "apisix"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "apisix", "gen_id"), []byte("12x"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, skipped := scan(t, New(&certmagic.FileStorage{Path: dir}, ""))
	if got.counter != 0 || len(skipped) != 1 || skipped[0].Key != "apisix/gen_id" {
		t.Fatalf("counter %d, skipped %v", got.counter, skipped)
	}
}

func TestLoadStorageFailureIsAnError(t *testing.T) {
	dir := t.TempDir()
	// The storage root is a file: listing fails with something other
	// than "does not exist".
	root := filepath.Join(dir, "file")
	if err := os.WriteFile(root, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := New(&certmagic.FileStorage{Path: root}, "").Load(); err == nil {
		t.Fatal("Load on a broken storage succeeded")
	}
}

func TestFailedWriteChangesNothing(t *testing.T) {
	before := obj(model.StreamRoutes, "1", 1, `{"v":1}`)
	after := &registry.Object{Kind: model.StreamRoutes, ID: "1", Value: []byte(`{"v":2}`), CreatedIndex: 1, ModifiedIndex: 2}
	fresh := obj(model.StreamRoutes, "2", 3, `{"v":3}`)

	t.Run("file", func(t *testing.T) {
		dir := t.TempDir()
		s := New(&certmagic.FileStorage{Path: dir}, "")
		if err := s.Put(before); err != nil {
			t.Fatal(err)
		}
		// A file where the upstreams directory belongs makes writes there fail.
		if err := os.WriteFile(filepath.Join(dir, "apisix", "upstreams"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(obj(model.Upstreams, "u", 4, `{}`)); err == nil {
			t.Fatal("Put into a blocked directory succeeded")
		}
		// A directory where the object file belongs makes the rename fail.
		if err := os.MkdirAll(filepath.Join(dir, "apisix", "stream_routes", "2", "x"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(fresh); err == nil {
			t.Fatal("Put over a directory succeeded")
		}
		if err := s.Delete(model.StreamRoutes, "2"); err == nil {
			t.Fatal("Delete of a directory succeeded")
		}
		got, _ := scan(t, s)
		if !reflect.DeepEqual(got.objs, []*registry.Object{before}) {
			t.Fatalf("loaded\n%s", dump(got.objs))
		}
		entries, err := os.ReadDir(filepath.Join(dir, "apisix", "stream_routes"))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), tempPrefix) {
				t.Fatalf("temporary file left: %s", e.Name())
			}
		}
	})
	t.Run("generic", func(t *testing.T) {
		storage := newMapStorage()
		s := New(storage, "")
		if err := s.Put(before); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveCounter(1); err != nil {
			t.Fatal(err)
		}
		boom := errors.New("boom")
		storage.fail = boom
		for _, err := range []error{s.Put(after), s.Put(fresh), s.Delete(model.StreamRoutes, "1"), s.SaveCounter(9)} {
			if !errors.Is(err, boom) {
				t.Fatalf("err = %v, want boom", err)
			}
		}
		storage.fail = nil
		got, _ := scan(t, s)
		if !reflect.DeepEqual(got.objs, []*registry.Object{before}) || got.counter != 1 {
			t.Fatalf("loaded counter %d\n%s", got.counter, dump(got.objs))
		}
	})
}

func TestPutRejectsBadObjects(t *testing.T) {
	for name, storage := range backends(t) {
		t.Run(name, func(t *testing.T) {
			s := New(storage, "")
			for _, o := range []*registry.Object{
				nil,
				obj("", "1", 1, `{}`),
				obj(model.StreamRoutes, "", 1, `{}`),
				obj("gen_id", "1", 1, `{}`),
				obj(model.StreamRoutes, "1", 1, `{`),
			} {
				if err := s.Put(o); err == nil {
					t.Errorf("Put(%+v) succeeded", o)
				}
			}
			if err := s.Delete(model.StreamRoutes, ""); err == nil {
				t.Error("Delete with an empty id succeeded")
			}
			if err := s.SaveCounter(-1); err == nil {
				t.Error("SaveCounter(-1) succeeded")
			}
			if objs, n := mustLoad(t, s); len(objs) != 0 || n != 0 {
				t.Fatalf("rejected writes stored %v, %d", objs, n)
			}
		})
	}
}

func TestConcurrentWriters(t *testing.T) {
	const writers, perWriter = 6, 20
	for name, storage := range backends(t) {
		t.Run(name, func(t *testing.T) {
			s := New(storage, "")
			var wg sync.WaitGroup
			errs := make(chan error, writers*perWriter*2)
			for w := range writers {
				wg.Go(func() {
					for i := range perWriter {
						rev := int64(w*perWriter + i + 1)
						id := fmt.Sprintf("w%d-%d", w, i)
						errs <- s.Put(obj(model.Upstreams, id, rev, fmt.Sprintf(`{"id":%q}`, id)))
						errs <- s.Put(obj(model.StreamRoutes, "shared", rev, fmt.Sprintf(`{"w":%d,"i":%d}`, w, i)))
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			got, skipped := scan(t, s)
			if len(skipped) != 0 {
				t.Fatalf("skipped: %v", skipped)
			}
			if len(got.objs) != writers*perWriter+1 {
				t.Fatalf("loaded %d objects, want %d", len(got.objs), writers*perWriter+1)
			}
			for _, o := range got.objs {
				if o.Kind == model.StreamRoutes {
					var w, i int
					if _, err := fmt.Sscanf(string(o.Value), `{"w":%d,"i":%d}`, &w, &i); err != nil || int64(w*perWriter+i+1) != o.ModifiedIndex {
						t.Fatalf("shared object is not one of the writes: %+v", o)
					}
					continue
				}
				if want := fmt.Sprintf(`{"id":%q}`, o.ID); string(o.Value) != want {
					t.Fatalf("%s: value %s, want %s", o.ID, o.Value, want)
				}
			}
		})
	}
}

func TestRegistryRestart(t *testing.T) {
	dir := t.TempDir()
	r := registry.New()
	if err := r.Open(New(&certmagic.FileStorage{Path: dir}, ""), nil); err != nil {
		t.Fatal(err)
	}
	var postID string
	err := r.Update(func(tx *registry.Tx) error {
		id, err := tx.NextID()
		if err != nil {
			return err
		}
		postID = id
		if _, _, err := tx.Put(model.StreamRoutes, id, []byte(`{"id":"`+id+`","create_time":1700000000}`)); err != nil {
			return err
		}
		_, _, err = tx.Put(model.Upstreams, "u1", []byte(`{"id":"u1","create_time":1700000001}`))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var want []*registry.Object
	r.View(func(v registry.View) {
		want = append(v.List(model.StreamRoutes), v.List(model.Upstreams)...)
	})

	r2 := registry.New()
	if err := r2.Open(New(&certmagic.FileStorage{Path: dir}, ""), nil); err != nil {
		t.Fatal(err)
	}
	var got []*registry.Object
	r2.View(func(v registry.View) {
		got = append(v.List(model.StreamRoutes), v.List(model.Upstreams)...)
	})
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after restart\n%s\nwant\n%s", dump(got), dump(want))
	}
	// The next POST id is new.
	err = r2.Update(func(tx *registry.Tx) error {
		id, err := tx.NextID()
		if err == nil && id <= postID {
			err = fmt.Errorf("id %s reused after %s", id, postID)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
