//go:build linux

package chaos

import (
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// echoTCP is a backend that echoes every byte and half-closes after the
// client's end of stream.
func echoTCP(t *testing.T) string {
	return e2e.ServeTCP(t, func(c net.Conn) {
		_, _ = io.Copy(c, c)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	})
}

// resetTCP is a backend that resets every connection at once (SO_LINGER 0).
func resetTCP(t *testing.T) string {
	return e2e.ServeTCP(t, func(c net.Conn) {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
	})
}

// neverReadTCP is a backend that accepts and never reads, for 20 s.
func neverReadTCP(t *testing.T) string {
	return e2e.ServeTCP(t, func(c net.Conn) {
		time.Sleep(20 * time.Second)
	})
}

// slowTCP is a backend that echoes one small chunk every 50 ms.
func slowTCP(t *testing.T) string {
	return e2e.ServeTCP(t, func(c net.Conn) {
		buf := make([]byte, 64)
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
	})
}

// blackholeTCP is a listening socket with a backlog of 0 that is never
// accepted: once its queue holds a connection, the kernel drops new SYNs,
// so a connect to it hangs as to a host that does not answer.
func blackholeTCP(t *testing.T) string {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
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
	addr := e2e.HostPort("127.0.0.1", sa.(*syscall.SockaddrInet4).Port)
	// fill the queue
	for range 3 {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			t.Cleanup(func() { c.Close() })
		}
	}
	return addr
}

// echoUDP is a UDP backend that answers every datagram with itself.
func echoUDP(t *testing.T) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
	return pc.LocalAddr().String()
}
