//go:build linux && !portable

package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"
)

// testPark is the park delay of these tests: short, so that a pause of a
// few milliseconds parks an idle direction.
const testPark = 5 * time.Millisecond

// parkedLink proxies between a fresh client and backend pair with the
// given copy mode and idle timeout, parking after after, and returns
// the outer ends, the counters, the stages (for Parked) and a channel
// closed when the copy has ended.
func parkedLink(t *testing.T, mode CopyMode, idle, after time.Duration) (client, backend *net.TCPConn, c *Counters, st *copyStages, done chan struct{}) {
	t.Helper()
	client, proxyIn := tcpPair(t)
	proxyOut, backend := tcpPair(t)
	deadline := time.Now().Add(20 * time.Second)
	_ = client.SetDeadline(deadline)
	_ = backend.SetDeadline(deadline)
	c, st, done = &Counters{}, new(copyStages), make(chan struct{})
	st.parkAfter.Store(int64(after))
	startPump(proxyIn, proxyOut, idle, mode, st, c, func() {
		proxyIn.Close()
		proxyOut.Close()
		close(done)
	})
	return client, backend, c, st, done
}

// waitParked waits until st's parker holds n directions.
func waitParked(t *testing.T, st *copyStages, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for st.parked() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d directions parked, want %d", st.parked(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// send writes msg to from and reads it at to.
func send(t *testing.T, from, to net.Conn, msg string) {
	t.Helper()
	if _, err := from.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(to, got); err != nil || string(got) != msg {
		t.Fatalf("read %q, %v; want %q", got, err, msg)
	}
}

// A connection idle past the park delay holds both directions parked;
// bytes either way resume the direction they need, exactly where it was
// (the counters go on), and it parks again when the bytes stop.
func TestParkedDirectionsResume(t *testing.T) {
	for _, mode := range []CopyMode{CopyBuffer, CopySplice} {
		t.Run(mode.String(), func(t *testing.T) {
			client, backend, c, st, done := parkedLink(t, mode, time.Minute, testPark)
			sent, received := 0, 0
			for i := range 3 {
				waitParked(t, st, 2)
				up, down := fmt.Sprintf("request %d", i), fmt.Sprintf("response %d", i)
				send(t, client, backend, up)
				send(t, backend, client, down)
				sent, received = sent+len(up), received+len(down)
			}
			waitParked(t, st, 2)
			if s, r := c.Sent.Load(), c.Received.Load(); s != int64(sent) || r != int64(received) {
				t.Errorf("counters sent=%d received=%d, want %d and %d", s, r, sent, received)
			}
			client.Close()
			backend.Close()
			waitDone(t, done)
			waitParked(t, st, 0)
		})
	}
}

// Half-close through parked directions: the client's FIN wakes its
// direction, which passes it on; the other direction stays parked until
// the backend answers after the FIN and closes.
func TestParkedHalfClose(t *testing.T) {
	client, backend, c, st, done := parkedLink(t, CopyBuffer, time.Minute, testPark)
	send(t, client, backend, "hello")
	waitParked(t, st, 2)
	if err := client.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if n, err := backend.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Fatalf("backend read %d bytes, %v after the client's FIN; want EOF", n, err)
	}
	waitParked(t, st, 1) // upstream → client, parked still or again
	if _, err := backend.Write([]byte("answer after FIN")); err != nil {
		t.Fatal(err)
	}
	_ = backend.Close()
	resp, err := io.ReadAll(client)
	if err != nil || string(resp) != "answer after FIN" {
		t.Fatalf("client read %q, %v", resp, err)
	}
	waitDone(t, done)
	waitParked(t, st, 0)
	if s, r := c.Sent.Load(), c.Received.Load(); s != 5 || r != int64(len(resp)) {
		t.Errorf("counters sent=%d received=%d, want 5 and %d", s, r, len(resp))
	}
}

// The idle timeout ends a connection whose directions are both parked:
// both ends see the proxy's side go away, and the parker lets go of it.
func TestParkedIdleTimeout(t *testing.T) {
	client, backend, _, st, done := parkedLink(t, CopyBuffer, 300*time.Millisecond, testPark)
	send(t, client, backend, "ping")
	send(t, backend, client, "pong")
	waitParked(t, st, 2)
	waitDone(t, done)
	waitParked(t, st, 0)
	for name, c := range map[string]*net.TCPConn{"client": client, "backend": backend} {
		n, err := c.Read(make([]byte, 4))
		if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("%s: read %d bytes, %v after the idle timeout; want EOF or reset", name, n, err)
		}
	}
}

// A client that closes while both directions are parked ends the
// session: its FIN reaches the backend, and the backend's close ends the
// copy.
func TestParkedClientClose(t *testing.T) {
	client, backend, _, st, done := parkedLink(t, CopySplice, time.Minute, testPark)
	send(t, client, backend, "hello")
	waitParked(t, st, 2)
	client.Close()
	if n, err := backend.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Fatalf("backend read %d bytes, %v after the client closed; want EOF", n, err)
	}
	backend.Close()
	waitDone(t, done)
	waitParked(t, st, 0)
}

// Data that arrives right at the park moment, when the parker already
// watches the source and the direction does not count as parked yet,
// still wakes it: each time a direction parks (300 times each),
// a byte arrives for it at once, and every byte must come through.
func TestParkNoLostWakeup(t *testing.T) {
	const rounds = 300
	client, backend, c, _, done := parkedLink(t, CopyBuffer, time.Minute, time.Millisecond)
	var (
		mu  sync.Mutex
		fed [2]int
	)
	// the directions of this link are told apart from other tests'
	// by their sources' peers: the client, and the backend
	hook := func(rc *rawCopier, watched bool) {
		if !watched {
			return
		}
		var to net.Conn
		dir := 0
		switch rc.srcConn.RemoteAddr().String() {
		case client.LocalAddr().String():
			dir, to = 1, client
		case backend.LocalAddr().String():
			to = backend
		default:
			return
		}
		mu.Lock()
		if fed[dir] == rounds {
			mu.Unlock()
			return
		}
		fed[dir]++
		b := byte(fed[dir])
		mu.Unlock()
		_, _ = to.Write([]byte{b})
		// time for the parker to see the byte while park still holds
		// the link
		time.Sleep(200 * time.Microsecond)
	}
	parkHook.Store(&hook)
	t.Cleanup(func() { parkHook.Store(nil) })
	errs := make(chan error, 2)
	for _, r := range []*net.TCPConn{client, backend} {
		go func() {
			got := make([]byte, rounds)
			_ = r.SetReadDeadline(time.Now().Add(15 * time.Second))
			n, err := io.ReadFull(r, got)
			for i := range got[:n] {
				if got[i] != byte(i+1) {
					err = fmt.Errorf("byte %d is %d, want %d", i, got[i], byte(i+1))
					break
				}
			}
			if err != nil {
				err = fmt.Errorf("%d of %d bytes, each sent as its direction parked: %v", n, rounds, err)
			}
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if s, r := c.Sent.Load(), c.Received.Load(); s != rounds || r != rounds {
		t.Errorf("counters sent=%d received=%d, want %d each", s, r, rounds)
	}
	client.Close()
	backend.Close()
	waitDone(t, done)
}

// heldBackend accepts connections and answers one message on each
// without a goroutine per connection, so that the test process's
// goroutines are the proxy's and the test's own.
func heldBackend(t *testing.T) (addr string, conns chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	conns = make(chan net.Conn, 1024)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- c
		}
	}()
	return ln.Addr().String(), conns
}

// echoOnce answers one msg on backend connection b.
func echoOnce(t *testing.T, b net.Conn, msg string) {
	t.Helper()
	got := make([]byte, len(msg))
	_ = b.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(b, got); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Write(got); err != nil {
		t.Fatal(err)
	}
}

// exchange sends msg on client c through the proxy to the backend
// connection the proxy dials (taken from conns the first time, when *b is
// nil), which echoes it.
func exchange(t *testing.T, c net.Conn, b *net.Conn, conns chan net.Conn, msg string) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	if *b == nil {
		select {
		case *b = <-conns:
		case <-time.After(5 * time.Second):
			t.Fatal("the proxy dialled no backend connection")
		}
	}
	echoOnce(t, *b, msg)
	got := make([]byte, len(msg))
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
		t.Fatalf("client read %q, %v; want %q", got, err, msg)
	}
}

// Idle proxied connections hold no goroutine once parked: with N of them
// open through a stream_proxy listener, the process runs about as many
// goroutines as before they were opened (it ran two per connection
// before parking), and each connection still carries bytes after it.
func TestIdleConnectionsHoldNoGoroutine(t *testing.T) {
	const n = 200
	addr, conns := heldBackend(t)
	rt, _ := newTestRuntime(t, map[string]string{"idle": `{"upstream":{"nodes":{"` + addr + `":1}}}`}, nil)
	rt.copies.parkAfter.Store(int64(testPark))
	listen, _ := proxyListener(t, rt)
	runtime.GC()
	before := runtime.NumGoroutine()
	clients, backends := openIdle(t, listen, conns, n)
	waitParked(t, &rt.copies, 2*n)
	// the timers' short-lived sweeps may run a few goroutines at a time
	deadline := time.Now().Add(10 * time.Second)
	for {
		extra := runtime.NumGoroutine() - before
		if extra <= n/20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d idle connections hold %d goroutines (%.2f each), want at most %d", n, extra, float64(extra)/n, n/20)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i := range n {
		exchange(t, clients[i], &backends[i], conns, "again")
	}
	for i := range n {
		clients[i].Close()
		backends[i].Close()
	}
	waitEnded(t, rt, "idle", n, 0)
	waitParked(t, &rt.copies, 0)
}

// A route deleted while its connection is parked leaves the connection
// open (as APISIX leaves live connections to their route's old
// upstream): the connection resumes, and its close ends the session,
// which does not bring the deleted route's series back.
func TestParkedConnectionOutlivesRoute(t *testing.T) {
	echo := tcpEcho(t)
	rt, reg := newTestRuntime(t, map[string]string{"gone": `{"upstream":{"nodes":{"` + echo + `":1}}}`}, nil)
	rt.copies.parkAfter.Store(int64(testPark))
	listen, _ := proxyListener(t, rt)
	c := roundTrip(t, listen)
	defer c.Close()
	waitParked(t, &rt.copies, 2)
	if err := reg.Update(func(tx *registry.Tx) error {
		_, err := tx.Delete(model.StreamRoutes, "gone")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	send(t, c, c, "after the route went")
	waitParked(t, &rt.copies, 2)
	c.Close()
	waitParked(t, &rt.copies, 0)
	deadline := time.Now().Add(5 * time.Second)
	for rt.limits.tcpLive.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d TCP sessions still live after the client closed", rt.limits.tcpLive.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n, all := routeSeries(t, rt, "gone"); n != 0 {
		t.Errorf("the deleted route has %d series after its last connection ended: %v", n, all)
	}
	// a new connection finds no route
	nc, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Read(make([]byte, 1)); err == nil {
		t.Error("a connection after the route was deleted was proxied")
	}
}

// The stacks of parked directions go back without anything else asking
// for a GC: N connections are held with all their directions' goroutines
// alive (the hook keeps each one from parking once it has done its part
// of the exchange), then let park; the stack memory they held is freed
// (collect) and the connections still work.
func TestParkedStacksFreed(t *testing.T) {
	const n = 500
	addr, conns := heldBackend(t)
	rt, _ := newTestRuntime(t, map[string]string{"stacks": `{"upstream":{"nodes":{"` + addr + `":1}}}`}, nil)
	rt.copies.parkAfter.Store(int64(testPark))
	listen, _ := proxyListener(t, rt)
	release := make(chan struct{})
	var waiting atomic.Int32
	hold := func(rc *rawCopier, watched bool) {
		if !watched && rc.l.stages == &rt.copies && rc.count.Load() > 0 {
			waiting.Add(1)
			<-release
		}
	}
	parkHook.Store(&hold)
	t.Cleanup(func() { parkHook.Store(nil) })
	clients, backends := openIdle(t, listen, conns, n)
	stacks := func() int64 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.StackInuse)
	}
	deadline := time.Now().Add(10 * time.Second)
	for waiting.Load() != 2*n {
		if time.Now().After(deadline) {
			t.Fatalf("%d directions about to park, want %d", waiting.Load(), 2*n)
		}
		time.Sleep(time.Millisecond)
	}
	held := stacks()
	close(release)
	waitParked(t, &rt.copies, 2*n)
	// the goroutines held at least 2 KiB each, 4 KiB per connection
	deadline = time.Now().Add(10 * time.Second)
	for {
		freed := held - stacks()
		if freed >= n*2048 {
			t.Logf("%d bytes of stacks freed, %d per connection", freed, freed/n)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes of stacks freed after %d connections parked (%d each), want at least 2048 each", freed, n, freed/n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i := range n {
		exchange(t, clients[i], &backends[i], conns, "again")
	}
}

// openIdle opens n connections through listen, each with one exchange
// to its backend (from conns), and leaves them idle until the test ends.
func openIdle(t *testing.T, listen string, conns chan net.Conn, n int) (clients, backends []net.Conn) {
	t.Helper()
	clients, backends = make([]net.Conn, n), make([]net.Conn, n)
	for i := range n {
		c, err := net.Dial("tcp", listen)
		if err != nil {
			t.Fatal(err)
		}
		clients[i] = c
		t.Cleanup(func() { c.Close() })
		exchange(t, c, &backends[i], conns, "hello")
		t.Cleanup(func() { backends[i].Close() })
	}
	return clients, backends
}
