package adminapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"
)

// memStore is an in-memory registry.Store that can be told to fail.
type memStore struct {
	mu      sync.Mutex
	objs    map[string]*registry.Object
	counter int64
	fail    atomic.Bool
}

func newMemStore() *memStore { return &memStore{objs: map[string]*registry.Object{}} }

var errDiskFull = errors.New("disk full")

func (s *memStore) Load() ([]*registry.Object, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*registry.Object
	for _, o := range s.objs {
		out = append(out, o)
	}
	return out, s.counter, nil
}

func (s *memStore) Put(o *registry.Object) error {
	if s.fail.Load() {
		return errDiskFull
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objs[string(o.Kind)+"/"+o.ID] = o
	return nil
}

func (s *memStore) Delete(kind model.Kind, id string) error {
	if s.fail.Load() {
		return errDiskFull
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.objs, string(kind)+"/"+id)
	return nil
}

func (s *memStore) SaveCounter(n int64) error {
	if s.fail.Load() {
		return errDiskFull
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counter = n
	return nil
}

// testNow is the fixed clock of the handler under test.
const testNow = 1700000000

// env is a handler over a real registry behind a real loopback server.
type env struct {
	t     *testing.T
	reg   *registry.Registry
	store *memStore
	cfg   atomic.Pointer[Config]
	clock atomic.Int64
	srv   *httptest.Server
	state *State
}

func newEnv(t *testing.T, cfg *Config) *env {
	t.Helper()
	e := &env{t: t, reg: registry.New(), store: newMemStore(), state: NewState()}
	if err := e.reg.Open(e.store, nil); err != nil {
		t.Fatal(err)
	}
	e.cfg.Store(cfg)
	e.clock.Store(testNow)
	h := &Handler{
		Registry: e.reg,
		Config:   e.cfg.Load,
		State:    e.state,
		now:      func() time.Time { return time.Unix(e.clock.Load(), 0) },
	}
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	return e
}

// streamCfg is stream mode on, no keys.
func streamCfg() *Config { return &Config{StreamEnabled: true} }

type resp struct {
	status int
	header http.Header
	body   string
}

// json decodes the body into a generic value.
func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return m
}

// do sends one request; hdr is "Name: value" pairs.
func (e *env) do(method, path, body string, hdr ...string) resp {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, h := range hdr {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Add(k, v)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp{status: res.StatusCode, header: res.Header, body: string(b)}
}

// must sends a request and fails unless the status matches.
func (e *env) must(status int, method, path, body string, hdr ...string) resp {
	e.t.Helper()
	r := e.do(method, path, body, hdr...)
	if r.status != status {
		e.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, r.status, status, r.body)
	}
	return r
}

// jsonStr quotes s as a JSON string.
func jsonStr(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

const upstreamBody = `{"nodes":{"127.0.0.1:1995":1},"type":"roundrobin"}`
