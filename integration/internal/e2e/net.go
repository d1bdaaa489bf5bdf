//go:build linux

package e2e

import (
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
)

// FreePort returns a port that is free for TCP and UDP on all interfaces.
// The kernel picks it; a bounded number of tries covers the rare port
// that is free for one protocol only. It is released before returning,
// which on loopback in a test run is safe in practice.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", ":0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", fmt.Sprintf(":%d", port))
		ln.Close()
		if err != nil {
			continue
		}
		pc.Close()
		return port
	}
	t.Fatal("no port free for both TCP and UDP after 50 tries")
	return 0
}

// FreePorts returns n distinct ports, each as FreePort.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	seen := map[int]bool{}
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		if tries > 50*n {
			t.Fatalf("no %d distinct free ports after %d tries", n, tries)
		}
		if p := FreePort(t); !seen[p] {
			seen[p] = true
			ports = append(ports, p)
		}
	}
	return ports
}

// HostPort joins an IP and a port.
func HostPort(ip string, port int) string { return net.JoinHostPort(ip, strconv.Itoa(port)) }

// Serve runs handle for every connection that ln accepts, each in its own
// goroutine, until the test ends; then it closes ln and the open
// connections and waits for the handlers. It closes each connection when
// its handler returns.
func Serve(t testing.TB, ln net.Listener, handle func(c net.Conn)) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
					c.Close()
				}()
				handle(c)
			}()
		}
	}()
}

// ServeTCP is Serve on a new listener on a free 127.0.0.1 port; it
// returns the listener's address.
func ServeTCP(t testing.TB, handle func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	Serve(t, ln, handle)
	return ln.Addr().String()
}
