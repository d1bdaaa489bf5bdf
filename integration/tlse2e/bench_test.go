//go:build linux

package tlse2e

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// BenchmarkTLSHandshake measures full TLS handshakes per second on a
// tls: true listener: each operation dials, completes a full handshake
// (no session resumption, ECDSA P-256 certificate), echoes 64 bytes
// through a plain upstream and closes. "direct" is the same client
// against a Go TLS echo server without the proxy, for scale.
func BenchmarkTLSHandshake(b *testing.B) {
	cert := e2e.NewLeaf(b, "bench", e2e.NewCA(b, "bench CA"), "bench.test.com")
	port := freePorts(b, 1)[0]
	startCaddy(b, obj{
		"stream_proxy":  obj{"tcp": list(tcpEntry(port, "tls"))},
		"ssls":          list(sslObj("1", cert, "bench.test.com")),
		"stream_routes": list(obj{"id": "1", "upstream": upstream(echoServer(b), nil)}),
	}, false)
	direct := serve(b, func(c net.Conn) {
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert.TLS()}})
		_, _ = io.Copy(tc, tc)
	})
	msg := bytes.Repeat([]byte("0123456789abcdef"), 4)

	for _, target := range []struct{ name, addr string }{{"proxy", addr(port)}, {"direct", direct}} {
		for _, parallel := range []bool{false, true} {
			name := target.name + "/serial"
			if parallel {
				name = target.name + "/parallel"
			}
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				op := func(buf []byte) bool {
					if err := handshakeEcho(target.addr, msg, buf); err != nil {
						b.Error(err)
						return false
					}
					return true
				}
				if parallel {
					b.RunParallel(func(pb *testing.PB) {
						buf := make([]byte, len(msg))
						for pb.Next() {
							if !op(buf) {
								return
							}
						}
					})
				} else {
					buf := make([]byte, len(msg))
					for b.Loop() {
						if !op(buf) {
							return
						}
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
			})
		}
	}
}

// handshakeEcho is one benchmark operation: a full handshake, msg echoed
// back into buf, close.
func handshakeEcho(addr string, msg, buf []byte) error {
	raw, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		return err
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(ioTimeout))
	c := tls.Client(raw, &tls.Config{ServerName: "bench.test.com", InsecureSkipVerify: true}) //nolint:gosec // benchmark
	if _, err := c.Write(msg); err != nil {
		return err
	}
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if !bytes.Equal(buf, msg) {
		return io.ErrUnexpectedEOF
	}
	return nil
}
