package proxy

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// wrappedConn hides a *net.TCPConn behind another type, as a TLS
// connection does, so that the copy takes the buffered path.
type wrappedConn struct{ *net.TCPConn }

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (a, b *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	d, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { d.Close(); r.c.Close() })
	return d.(*net.TCPConn), r.c.(*net.TCPConn)
}

// pumpCase is one way of running the copy: blocking pump or startPump,
// with a copy mode, or buffered (TLS-like connections, which take the
// buffered loop whatever the mode). park is the park delay (0: the
// directions never park; raw directions on Linux only, park_linux.go).
type pumpCase struct {
	name     string
	async    bool
	mode     CopyMode
	buffered bool
	park     time.Duration
}

var pumpCases = []pumpCase{
	{"pump/auto", false, CopyAuto, false, 0},
	{"pump/buffer", false, CopyBuffer, false, 0},
	{"pump/splice", false, CopySplice, false, 0},
	{"pump/buffered", false, CopyAuto, true, 0},
	{"startPump/buffer", true, CopyBuffer, false, 0},
	{"startPump/splice", true, CopySplice, false, 0},
	{"startPump/buffered", true, CopySplice, true, 0},
	// parking every few milliseconds: every pause of the tests parks
	// the idle directions, and their next bytes resume them
	{"startPump/buffer/parking", true, CopyBuffer, false, 2 * time.Millisecond},
	{"pump/splice/parking", false, CopySplice, false, 2 * time.Millisecond},
}

// startLink proxies between a fresh client and upstream pair and returns
// the outer ends (what the client and the backend hold), the counters
// and a channel closed when the copy has ended.
func startLink(t *testing.T, tc pumpCase, idle time.Duration) (client, backend *net.TCPConn, c *Counters, done chan struct{}) {
	t.Helper()
	client, proxyIn := tcpPair(t)
	proxyOut, backend := tcpPair(t)
	var in, out net.Conn = proxyIn, proxyOut
	if tc.buffered {
		in = wrappedConn{proxyIn}
	}
	// no test waits longer than this for the other end
	deadline := time.Now().Add(20 * time.Second)
	_ = client.SetDeadline(deadline)
	_ = backend.SetDeadline(deadline)
	c = &Counters{}
	done = make(chan struct{})
	end := func() { // what the caller does after the copy
		proxyIn.Close()
		proxyOut.Close()
		close(done)
	}
	stages := new(copyStages)
	stages.parkAfter.Store(int64(tc.park))
	if tc.async {
		startPump(in, out, idle, tc.mode, stages, c, end)
	} else {
		go func() {
			pump(in, out, idle, tc.mode, stages, c)
			end()
		}()
	}
	return client, backend, c, done
}

func waitDone(t *testing.T, done chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("copy did not end")
	}
}

// Half-close: the client's FIN reaches the backend, which still answers
// before it closes; the byte counters see both directions. The backend
// starts reading only once the client's write has stalled (or finished),
// so the proxy holds bytes (in its buffer or pipe) that it must deliver
// before it passes the FIN on.
func TestPumpHalfClose(t *testing.T) {
	for _, tc := range pumpCases {
		t.Run(tc.name, func(t *testing.T) {
			client, backend, c, done := startLink(t, tc, time.Minute)
			req := make([]byte, 4<<20) // more than the socket buffers and a pipe hold
			_, _ = rand.Read(req)
			wrote := make(chan struct{})
			go func() {
				_, _ = client.Write(req)
				_ = client.CloseWrite()
				close(wrote)
			}()
			select {
			case <-wrote:
			case <-time.After(200 * time.Millisecond):
			}
			got, err := io.ReadAll(backend)
			if err != nil || !bytes.Equal(got, req) {
				t.Fatalf("backend read %d bytes (equal: %v), %v; want %d and EOF", len(got), bytes.Equal(got, req), err, len(req))
			}
			if _, err := backend.Write([]byte("answer after FIN")); err != nil {
				t.Fatal(err)
			}
			_ = backend.Close()
			resp, err := io.ReadAll(client)
			if err != nil || string(resp) != "answer after FIN" {
				t.Fatalf("client read %q, %v", resp, err)
			}
			waitDone(t, done)
			if s, r := c.Sent.Load(), c.Received.Load(); s != int64(len(req)) || r != int64(len(resp)) {
				t.Errorf("counters sent=%d received=%d, want %d and %d", s, r, len(req), len(resp))
			}
		})
	}
}

// The idle timeout ends a quiet connection; traffic in either direction
// keeps it alive past the timeout.
func TestPumpIdleTimeout(t *testing.T) {
	// idle leaves a round trip 700 ms of delay on a loaded machine
	const idle = 800 * time.Millisecond
	for _, tc := range pumpCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			client, backend, _, done := startLink(t, tc, idle)
			buf := make([]byte, 4)
			// 12 round trips 100 ms apart last longer than idle
			for i := range 12 {
				from, to := client, backend
				if i%2 == 1 {
					from, to = backend, client
				}
				if _, err := from.Write([]byte("ping")); err != nil {
					t.Fatalf("round %d: %v", i, err)
				}
				if _, err := io.ReadFull(to, buf); err != nil {
					t.Fatalf("round %d: connection ended early: %v", i, err)
				}
				time.Sleep(100 * time.Millisecond)
			}
			waitDone(t, done)
			// both outer ends see the proxy's side go away
			for name, c := range map[string]*net.TCPConn{"client": client, "backend": backend} {
				n, err := c.Read(buf)
				if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
					t.Errorf("%s: read %d bytes, %v after the idle timeout; want EOF or reset", name, n, err)
				}
			}
		})
	}
}

// Bulk: 16 MiB each way at once, checksummed at the far end, with the
// counters matching; both directions are busy together, so each one's
// stage is often left holding bytes while its destination is full.
func TestPumpBulk(t *testing.T) {
	const size = 16 << 20
	for _, tc := range pumpCases {
		t.Run(tc.name, func(t *testing.T) {
			client, backend, c, done := startLink(t, tc, time.Minute)
			type result struct {
				sum [sha256.Size]byte
				n   int64
				err error
			}
			recv := func(r *net.TCPConn, ch chan<- result) {
				h := sha256.New()
				n, err := io.Copy(h, r)
				var res result
				copy(res.sum[:], h.Sum(nil))
				res.n, res.err = n, err
				ch <- res
			}
			var sent [2][]byte
			for i, w := range []*net.TCPConn{client, backend} {
				b := make([]byte, size)
				_, _ = rand.Read(b)
				sent[i] = b
				go func() {
					_, _ = w.Write(b)
					_ = w.CloseWrite()
				}()
			}
			atBackend, atClient := make(chan result, 1), make(chan result, 1)
			go recv(backend, atBackend)
			go recv(client, atClient)
			for _, x := range []struct {
				name string
				ch   chan result
				want []byte
			}{{"backend", atBackend, sent[0]}, {"client", atClient, sent[1]}} {
				r := <-x.ch
				if r.err != nil || r.n != size || r.sum != sha256.Sum256(x.want) {
					t.Fatalf("%s read %d bytes, %v, checksum match %v; want %d, EOF and a match", x.name, r.n, r.err, r.sum == sha256.Sum256(x.want), size)
				}
			}
			waitDone(t, done)
			if s, r := c.Sent.Load(), c.Received.Load(); s != size || r != size {
				t.Errorf("counters sent=%d received=%d, want %d each", s, r, size)
			}
		})
	}
}
