package proxy

import (
	"bytes"
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
// raw-copied or buffered.
type pumpCase struct {
	name     string
	async    bool
	buffered bool
}

var pumpCases = []pumpCase{
	{"pump/raw", false, false},
	{"pump/buffered", false, true},
	{"startPump/raw", true, false},
	{"startPump/buffered", true, true},
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
	c = &Counters{}
	done = make(chan struct{})
	end := func() { // what the caller does after the copy
		proxyIn.Close()
		proxyOut.Close()
		close(done)
	}
	if tc.async {
		startPump(in, out, idle, c, end)
	} else {
		go func() {
			pump(in, out, idle, c)
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
// before it closes; the byte counters see both directions.
func TestPumpHalfClose(t *testing.T) {
	for _, tc := range pumpCases {
		t.Run(tc.name, func(t *testing.T) {
			client, backend, c, done := startLink(t, tc, time.Minute)
			deadline := time.Now().Add(10 * time.Second)
			_ = client.SetDeadline(deadline)
			_ = backend.SetDeadline(deadline)
			req := bytes.Repeat([]byte("q"), 300<<10) // more than one pipe
			go func() {
				_, _ = client.Write(req)
				_ = client.CloseWrite()
			}()
			got, err := io.ReadAll(backend)
			if err != nil || !bytes.Equal(got, req) {
				t.Fatalf("backend read %d bytes, %v; want %d and EOF", len(got), err, len(req))
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
	const idle = 400 * time.Millisecond
	for _, tc := range pumpCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			client, backend, _, done := startLink(t, tc, idle)
			_ = client.SetDeadline(time.Now().Add(10 * time.Second))
			_ = backend.SetDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 4)
			// 8 round trips 50 ms apart last longer than idle
			for i := range 8 {
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
				time.Sleep(50 * time.Millisecond)
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
