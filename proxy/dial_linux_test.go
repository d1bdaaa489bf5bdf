//go:build linux && !portable

package proxy

import (
	"net"
	"syscall"
	"testing"
	"time"
)

// blackholeTCP is a listening socket with a backlog of 0 that is never
// accepted: once its queue holds a connection, the kernel drops new SYNs,
// so a connect to it hangs as to a host that does not answer.
func blackholeTCP(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := (&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*syscall.SockaddrInet4).Port}).String()
	for range 3 { // fill the queue
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			t.Cleanup(func() { c.Close() })
		}
	}
	return addr
}

// The raw dial keeps its connect timeout when the connect does not finish
// at once, and leaves no deadline on a connection whose connect did.
func TestDialTCPDeadline(t *testing.T) {
	t.Run("unanswered", func(t *testing.T) {
		addr := blackholeTCP(t)
		res := make(chan error, 1)
		go func() {
			c, ok, err := dialTCP(addr, time.Now().Add(300*time.Millisecond))
			if c != nil {
				c.Close()
			}
			if !ok {
				t.Error("an IP address was not dialled raw")
			}
			res <- err
		}()
		select {
		case err := <-res:
			if err == nil || !isTimeout(err) {
				t.Fatalf("dial to a node that does not answer: %v, want a timeout", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the dial did not give up at its deadline")
		}
	})
	t.Run("connected", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		got := make(chan []byte, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				got <- nil
				return
			}
			defer c.Close()
			b := make([]byte, 2)
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, _ := c.Read(b)
			got <- b[:n]
		}()
		deadline := time.Now().Add(50 * time.Millisecond)
		c, ok, err := dialTCP(ln.Addr().String(), deadline)
		if err != nil || !ok {
			t.Fatalf("dial: %v (raw %v)", err, ok)
		}
		defer c.Close()
		time.Sleep(time.Until(deadline) + 50*time.Millisecond)
		if _, err := c.Write([]byte("ok")); err != nil {
			t.Fatalf("write after the connect deadline passed: %v", err)
		}
		if b := <-got; string(b) != "ok" {
			t.Fatalf("backend read %q", b)
		}
	})
}
