//go:build linux

package tlse2e

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// Phases of TestHotCertificates, as seen by its background client.
const (
	phaseV1 int32 = iota
	phaseRotated
	phaseDone
)

// TestHotCertificates adds, rotates, disables and deletes SSL objects
// through the Admin API while a client keeps handshaking: the steady name
// never fails and switches to the rotated certificate as soon as the PUT
// returns; the added name works once its PUT returns and fails once it is
// disabled, renamed or deleted.
func TestHotCertificates(t *testing.T) {
	ca := e2e.NewCA(t, "hot CA")
	v1 := e2e.NewLeaf(t, "steady v1", ca, "steady.test.com")
	v2 := e2e.NewLeaf(t, "steady v2", ca, "steady.test.com")
	added := e2e.NewLeaf(t, "added", ca, "added.test.com")
	port := freePorts(t, 1)[0]
	c := startCaddy(t, obj{
		"stream_proxy":  obj{"tcp": list(tcpEntry(port, "tls"))},
		"stream_routes": list(obj{"id": "1", "upstream": upstream(lineServer(t, "up"), nil)}),
	}, false)
	put := func(id string, cert *e2e.Cert, sni string, status int) {
		t.Helper()
		o := sslObj(id, cert, sni)
		delete(o, "id")
		o["status"] = status
		c.mustAdmin(http.MethodPut, "/apisix/admin/ssls/"+id, o, http.StatusOK, http.StatusCreated)
	}
	// handshakes runs n handshakes with sni; want "" means each must fail.
	handshakes := func(sni, want string, n int) {
		t.Helper()
		for i := range n {
			got, st, err := tlsRoundTrip(addr(port), clientCfg(sni))
			switch {
			case want == "" && err == nil:
				t.Fatalf("%s #%d: handshake succeeded with %q, want it to fail", sni, i, peerCN(st))
			case want != "" && err != nil:
				t.Fatalf("%s #%d: %v", sni, i, err)
			case want != "" && (peerCN(st) != want || got != "up:ping"):
				t.Fatalf("%s #%d: certificate %q, reply %q; want %q, %q", sni, i, peerCN(st), got, want, "up:ping")
			}
		}
	}

	put("steady", v1, "steady.test.com", 1)
	handshakes("steady.test.com", "steady v1", 1)

	// the background client: bounded in count and time
	const maxConns = 5000
	var (
		phase   atomic.Int32
		count   atomic.Int64
		mu      sync.Mutex
		errs    []string
		sawV2   int
		wg      sync.WaitGroup
		stopped = time.Now().Add(2 * time.Minute)
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < maxConns && time.Now().Before(stopped) && phase.Load() != phaseDone; i++ {
			before := phase.Load()
			got, st, err := tlsRoundTrip(addr(port), clientCfg("steady.test.com"))
			cn := peerCN(st)
			mu.Lock()
			switch {
			case err != nil:
				errs = append(errs, fmt.Sprintf("#%d: %v", i, err))
			case got != "up:ping":
				errs = append(errs, fmt.Sprintf("#%d: reply %q", i, got))
			case before >= phaseRotated && cn != "steady v2":
				errs = append(errs, fmt.Sprintf("#%d: certificate %q after the rotation", i, cn))
			case cn == "steady v2":
				sawV2++
			case cn != "steady v1":
				errs = append(errs, fmt.Sprintf("#%d: certificate %q", i, cn))
			}
			mu.Unlock()
			count.Add(1)
		}
	}()
	// waitConns lets the background client make at least n more
	// connections, so each step happens while it runs.
	waitConns := func(n int64) {
		t.Helper()
		target := count.Load() + n
		deadline := time.Now().Add(30 * time.Second)
		for count.Load() < target {
			if time.Now().After(deadline) {
				t.Fatalf("background client stalled at %d connections", count.Load())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	waitConns(20)
	put("added", added, "added.test.com", 1)
	handshakes("added.test.com", "added", 10)
	waitConns(20)

	put("steady", v2, "steady.test.com", 1)
	phase.Store(phaseRotated)
	handshakes("steady.test.com", "steady v2", 5)
	waitConns(20)

	put("added", added, "added.test.com", 0)
	handshakes("added.test.com", "", 5)
	put("added", added, "added.test.com", 1)
	handshakes("added.test.com", "added", 5)
	waitConns(20)

	put("added", added, "renamed.test.com", 1) // same object, new name
	handshakes("renamed.test.com", "added", 5)
	handshakes("added.test.com", "", 5)
	waitConns(20)

	c.mustAdmin(http.MethodDelete, "/apisix/admin/ssls/added", nil, http.StatusOK)
	handshakes("renamed.test.com", "", 10)
	waitConns(20)
	handshakes("steady.test.com", "steady v2", 5)

	phase.Store(phaseDone)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("background client: %d handshakes, %d with the rotated certificate", count.Load(), sawV2)
	if len(errs) > 0 {
		t.Errorf("%d failed background connections, first: %v", len(errs), errs[:min(len(errs), 5)])
	}
	if sawV2 < 20 {
		t.Errorf("background client saw the rotated certificate %d times, want at least 20", sawV2)
	}
}

// TestCertificatePersists checks that an SSL object added through the
// Admin API is served again after a restart on the same storage, and that
// the Admin API never shows its private key.
func TestCertificatePersists(t *testing.T) {
	cert := e2e.NewLeaf(t, "persisted", e2e.NewCA(t, "persist CA"), "keep.test.com")
	storage := t.TempDir()
	port := freePorts(t, 1)[0]
	app := obj{
		"stream_proxy":  obj{"tcp": list(tcpEntry(port, "tls"))},
		"stream_routes": list(obj{"id": "1", "upstream": upstream(lineServer(t, "up"), nil)}),
	}
	check := func(c *caddy) {
		t.Helper()
		got, st, err := tlsRoundTrip(addr(port), clientCfg("keep.test.com"))
		if err != nil || peerCN(st) != "persisted" || got != "up:ping" {
			t.Fatalf("certificate %q, reply %q (%v); want %q, %q", peerCN(st), got, err, "persisted", "up:ping")
		}
		for _, path := range []string{"/apisix/admin/ssls/keep", "/apisix/admin/ssls"} {
			status, body := c.adminDo(http.MethodGet, path, nil)
			if status != http.StatusOK || !strings.Contains(body, "keep.test.com") {
				t.Fatalf("GET %s: %d %s", path, status, body)
			}
			if strings.Contains(body, "PRIVATE KEY") {
				t.Fatalf("GET %s shows the private key: %s", path, body)
			}
		}
	}
	first := startCaddyAt(t, storage, app, true)
	o := sslObj("keep", cert, "keep.test.com")
	delete(o, "id")
	first.mustAdmin(http.MethodPut, "/apisix/admin/ssls/keep", o, http.StatusOK, http.StatusCreated)
	check(first)
	first.Stop()
	check(startCaddyAt(t, storage, app, true))
}
