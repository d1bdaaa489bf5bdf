package adminapi

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"
)

// blockingStore is a memStore whose Put waits until it is released.
type blockingStore struct {
	*memStore
	entered chan struct{}
	release chan struct{}
}

func (s *blockingStore) Put(o *registry.Object) error {
	s.entered <- struct{}{}
	<-s.release
	return s.memStore.Put(o)
}

func (s *blockingStore) Delete(kind model.Kind, id string) error { return s.memStore.Delete(kind, id) }

// TestConcurrentWritesBounded: with every write slot taken by writes
// stuck on a slow store, the next write answers 503 with a clear text at
// once and changes nothing, and the stuck writes complete once the store
// moves. (Reads wait too meanwhile: the registry persists under its lock.)
func TestConcurrentWritesBounded(t *testing.T) {
	const slots = 3
	e := newEnv(t, streamCfg())
	e.state.writeSlots = make(chan struct{}, slots) // before any request
	bs := &blockingStore{memStore: newMemStore(), entered: make(chan struct{}, slots), release: make(chan struct{})}
	if err := e.reg.Open(bs, nil); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	statuses := make(chan int, slots)
	for i := range slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- e.do("PUT", "/apisix/admin/upstreams/u"+string(rune('a'+i)), upstreamBody).status
		}()
	}
	<-bs.entered // one write is in the store, the others wait for the registry
	for i := 0; len(e.state.writeSlots) < slots; i++ {
		if i > 1000 {
			t.Fatalf("%d of %d writers hold a slot after 10 s", len(e.state.writeSlots), slots)
		}
		time.Sleep(10 * time.Millisecond)
	}
	r := e.do("PUT", "/apisix/admin/upstreams/over", upstreamBody)
	if r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, "too many concurrent Admin API writes (3 in progress)") {
		t.Fatalf("write beyond the bound: %d %s", r.status, r.body)
	}
	close(bs.release)
	wg.Wait()
	close(statuses)
	for st := range statuses {
		if st != http.StatusCreated {
			t.Errorf("a stuck write ended with %d", st)
		}
	}
	if r := e.do("GET", "/apisix/admin/upstreams/over", ""); r.status != http.StatusNotFound {
		t.Errorf("the refused write changed the registry: %d %s", r.status, r.body)
	}
	if r := e.do("PUT", "/apisix/admin/upstreams/after", upstreamBody); r.status != http.StatusCreated {
		t.Fatalf("a write after the burst: %d %s", r.status, r.body)
	}
}
