//go:build linux

package tlse2e

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
	"github.com/caddy-apisix/stream/proxyproto"
)

// ioTimeout bounds every read and write of the tests' clients and
// backends, so a stuck proxy fails a test instead of hanging it.
const ioTimeout = 10 * time.Second

// serve runs handle for each connection to a new loopback listener
// (e2e.ServeTCP), with every read and write bounded by ioTimeout, until
// the test ends. It returns the listener's address.
func serve(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	return e2e.ServeTCP(t, func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(ioTimeout))
		handle(c)
	})
}

// replyLine reads one line from c and writes reply(line) back.
func replyLine(c net.Conn, reply func(line string) string) {
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return
	}
	_, _ = io.WriteString(c, reply(strings.TrimSuffix(line, "\n"))+"\n")
}

// lineServer is a plain backend answering one line with "name:line".
func lineServer(t testing.TB, name string) string {
	return serve(t, func(c net.Conn) {
		replyLine(c, func(line string) string { return name + ":" + line })
	})
}

// echoServer is a plain backend echoing everything until EOF.
func echoServer(t testing.TB) string {
	return serve(t, func(c net.Conn) { _, _ = io.Copy(c, c) })
}

// tlsServer is a TLS backend: it completes the handshake with cfg and
// answers one line with reply(connection state, line).
func tlsServer(t testing.TB, cfg *tls.Config, reply func(cs tls.ConnectionState, line string) string) string {
	return serve(t, func(c net.Conn) {
		tc := tls.Server(c, cfg)
		if err := tc.Handshake(); err != nil {
			return
		}
		replyLine(tc, func(line string) string { return reply(tc.ConnectionState(), line) })
		_ = tc.CloseWrite()
	})
}

// helloSNI answers as APISIX's upstream-tls.t backend does: "hello <sni>".
func helloSNI(cs tls.ConnectionState, _ string) string { return "hello " + cs.ServerName }

// proxyServer is a plain backend that requires a PROXY protocol header
// and answers one line with the header's addresses: "src=S dst=D:line".
func proxyServer(t testing.TB) string {
	return serve(t, func(c net.Conn) {
		hdr, err := proxyproto.ReadHeader(c)
		if err != nil {
			_, _ = fmt.Fprintf(c, "bad header: %v\n", err)
			return
		}
		replyLine(c, func(line string) string {
			return fmt.Sprintf("v%d src=%s dst=%s:%s", hdr.Version, hdr.Src, hdr.Dst, line)
		})
	})
}

// exchange writes line to c and reads one line back (without its newline).
func exchange(c net.Conn, line string) (string, error) {
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return "", err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return got, err
	}
	return strings.TrimSuffix(got, "\n"), nil
}

// tlsRoundTrip dials addr with cfg, completes the handshake, sends "ping"
// and returns the reply line and the connection state. With TLS 1.3 a
// server-side handshake failure (client certificate refused) only shows
// in the read, so callers must look at err, not only the handshake.
func tlsRoundTrip(addr string, cfg *tls.Config) (string, tls.ConnectionState, error) {
	d := net.Dialer{Timeout: ioTimeout}
	raw, err := d.Dial("tcp", addr)
	if err != nil {
		return "", tls.ConnectionState{}, err
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(ioTimeout))
	c := tls.Client(raw, cfg)
	if err := c.Handshake(); err != nil {
		return "", tls.ConnectionState{}, fmt.Errorf("handshake: %w", err)
	}
	got, err := exchange(c, "ping")
	return got, c.ConnectionState(), err
}

// clientCfg is a client config sending sni that accepts any certificate:
// the tests check which certificate came by its subject.
func clientCfg(sni string) *tls.Config {
	return &tls.Config{ServerName: sni, InsecureSkipVerify: true} //nolint:gosec // the test inspects the certificate itself
}

// peerCN is the subject CN of the server's leaf certificate.
func peerCN(cs tls.ConnectionState) string {
	if len(cs.PeerCertificates) == 0 {
		return ""
	}
	return cs.PeerCertificates[0].Subject.CommonName
}

// plainRoundTrip sends line over plain TCP and reads one line back.
func plainRoundTrip(addr, line string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return exchange(c, line)
}

// expectClosed fails unless the server closes c (EOF or reset) without
// sending a byte; a timeout means the proxy kept the connection open.
func expectClosed(t testing.TB, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(ioTimeout))
	buf := make([]byte, 256)
	n, err := c.Read(buf)
	if n > 0 {
		t.Fatalf("got %q, want the connection closed without data", buf[:n])
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %v, want it closed", ioTimeout)
	}
}
