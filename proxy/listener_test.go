package proxy

import (
	"bytes"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// preludeWorkerCount is how many goroutines run or wait as a listener's
// prelude worker.
func preludeWorkerCount() int {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "proxy.(*preludeWorkers).run(")
}

// waitWorkers waits until at most max prelude workers exist and reports
// how many there were then (more than max after 5 s of waiting).
func waitWorkers(max int) int {
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := preludeWorkerCount()
		if n <= max || time.Now().After(deadline) {
			return n
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A listener's connections are served by prelude workers that wait for
// the next connection once theirs is copying: a burst of concurrent
// connections leaves at most maxIdlePreludeWorkers of them, sequential
// connections reuse one, every connection's bytes arrive intact, and the
// workers end with the listener.
func TestServeTCPPreludeWorkers(t *testing.T) {
	echo := tcpEcho(t)
	rt, _ := newTestRuntime(t, map[string]string{"w": `{"upstream":{"nodes":{"` + echo + `":1}}}`}, nil)
	before := preludeWorkerCount()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- rt.ServeTCP(ln, ListenerOptions{}) }()
	addr := ln.Addr().String()

	// a burst: connections held open while more arrive
	maxIdle := int(maxIdlePreludeWorkers())
	burst := 3 * maxIdle
	var wg sync.WaitGroup
	conns := make(chan net.Conn, burst)
	for range burst {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conns <- roundTrip(t, addr)
		}()
	}
	wg.Wait()
	close(conns)
	for c := range conns {
		c.Close()
	}
	if n := waitWorkers(before + maxIdle); n > before+maxIdle {
		t.Fatalf("%d prelude workers after a burst of %d connections, want at most %d", n-before, burst, maxIdle)
	}
	idle := preludeWorkerCount()

	// one after the other: the idle workers take them, none is added
	for i := range 50 {
		c := roundTrip(t, addr)
		// the client's FIN and the backend's reach each other through
		// the proxy
		if err := c.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if rest, err := io.ReadAll(c); err != nil || !bytes.Equal(rest, nil) {
			t.Fatalf("connection %d after the half-close: %q, %v", i, rest, err)
		}
		c.Close()
	}
	if n := preludeWorkerCount(); n > idle {
		t.Errorf("%d prelude workers after 50 sequential connections, %d before them", n, idle)
	}

	ln.Close()
	select {
	case err := <-served:
		if err == nil {
			t.Error("ServeTCP returned no error for a closed listener")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ServeTCP did not return after its listener closed")
	}
	if n := waitWorkers(before); n != before {
		t.Errorf("%d prelude workers left after the listener closed", n-before)
	}
}
