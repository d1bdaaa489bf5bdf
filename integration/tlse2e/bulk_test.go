//go:build linux

package tlse2e

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// closeWriter is a connection that can half-close.
type closeWriter interface {
	net.Conn
	CloseWrite() error
}

// echoBulk writes data through c, half-closes, and checks that exactly
// data comes back before EOF: integrity and half-close through the proxy.
func echoBulk(t *testing.T, c closeWriter, data []byte) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.CloseWrite()
		}
		werr <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the echo: %v (after %d bytes)", err, len(got))
	}
	if err := <-werr; err != nil {
		t.Fatalf("writing: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("echo differs: got %d bytes, sent %d", len(got), len(data))
	}
}

// TestBulkEcho moves 4 MiB each way through a terminated listener, a TLS
// upstream and a passthrough listener, with half-close at the end.
func TestBulkEcho(t *testing.T) {
	cert := e2e.NewLeaf(t, "bulk", nil, "bulk.test.com")
	tlsEcho := serve(t, func(c net.Conn) {
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert.TLS()}})
		_, _ = io.Copy(tc, tc)
		_ = tc.CloseWrite()
	})
	plainEcho := serve(t, func(c net.Conn) {
		_, _ = io.Copy(c, c)
		_ = c.(*net.TCPConn).CloseWrite()
	})
	p := freePorts(t, 3)
	term, upTLS, pass := p[0], p[1], p[2]
	startCaddy(t, obj{
		"stream_proxy": obj{"tcp": list(tcpEntry(term, "tls"), tcpEntry(upTLS), tcpEntry(pass, "tls_passthrough"))},
		"ssls":         list(sslObj("1", cert, "bulk.test.com")),
		"stream_routes": list(
			obj{"id": "term", "server_port": term, "upstream": upstream(plainEcho, nil)},
			obj{"id": "upTLS", "server_port": upTLS, "upstream": upstream(tlsEcho, obj{"scheme": "tls"})},
			obj{"id": "pass", "server_port": pass, "upstream": upstream(tlsEcho, nil)},
		),
	}, false)
	data := make([]byte, 4<<20)
	_, _ = rand.Read(data)

	dial := func(t *testing.T, port int) *net.TCPConn {
		c, err := net.DialTimeout("tcp", addr(port), ioTimeout)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c.(*net.TCPConn)
	}
	t.Run("terminated", func(t *testing.T) {
		echoBulk(t, tls.Client(dial(t, term), clientCfg("bulk.test.com")), data)
	})
	t.Run("TLS upstream", func(t *testing.T) {
		echoBulk(t, dial(t, upTLS), data)
	})
	t.Run("passthrough", func(t *testing.T) {
		echoBulk(t, tls.Client(dial(t, pass), clientCfg("bulk.test.com")), data)
	})
}
