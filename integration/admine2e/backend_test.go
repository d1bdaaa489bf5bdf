//go:build linux

package admine2e

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// backend is a TCP server on loopback that names itself in every answer,
// so a client can tell where the proxy sent it. It answers each line
// "ping" with "<tag>:ping"; with greet it first sends "<tag> greeting"
// unasked, as a MySQL server does. With a certificate it also speaks TLS
// when the first byte of a connection is a TLS handshake record, and then
// answers "<tag> tls sni=<server name>:ping".
type backend struct {
	tag   string
	ln    net.Listener
	greet bool
	cert  *tls.Certificate
}

// startBackend listens on addr ("127.0.0.1:0" for any port) and serves
// until the test ends.
func startBackend(t testing.TB, tag, addr string, greet bool, cert *tls.Certificate) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("backend %s: cannot listen on %s (another process holds it?): %v", tag, addr, err)
	}
	b := &backend{tag: tag, ln: ln, greet: greet, cert: cert}
	e2e.Serve(t, ln, b.handle)
	return b
}

func (b *backend) addr() string { return b.ln.Addr().String() }

// peekConn is a conn whose first bytes were read through r.
type peekConn struct {
	net.Conn
	r *bufio.Reader
}

func (p peekConn) Read(b []byte) (int, error) { return p.r.Read(b) }

func (b *backend) handle(c net.Conn) {
	tag := b.tag
	if b.greet {
		if _, err := io.WriteString(c, tag+" greeting\n"); err != nil {
			return
		}
	}
	var conn net.Conn = c
	br := bufio.NewReader(c)
	if b.cert != nil {
		first, err := br.Peek(1)
		if err != nil {
			return
		}
		if first[0] == 0x16 { // a TLS handshake record
			tc := tls.Server(peekConn{c, br}, &tls.Config{Certificates: []tls.Certificate{*b.cert}})
			if err := tc.Handshake(); err != nil {
				return
			}
			tag += " tls sni=" + tc.ConnectionState().ServerName
			conn = tc
			br = bufio.NewReader(tc)
		}
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		if _, err := io.WriteString(conn, tag+":"+line); err != nil {
			return
		}
	}
}

// probeResult is what one client connection through the proxy saw.
type probeResult struct {
	// answer is the backend's reply to "ping" without the ":ping\n"; ""
	// when the connection ended without one.
	answer string
	// greeting is the unasked first line of a greeting backend.
	greeting string
	// err is the read error that ended an unrouted connection.
	err error
}

// routed reports whether the connection reached a backend.
func (r probeResult) routed() bool { return r.answer != "" || r.greeting != "" }

func (r probeResult) String() string {
	if r.routed() {
		return fmt.Sprintf("routed (greeting %q, answer %q)", r.greeting, r.answer)
	}
	return fmt.Sprintf("not routed (%v)", r.err)
}

// probe opens a connection to addr (with tlsConf, a TLS connection),
// optionally reads a greeting line, sends "ping" and reads the answer.
// A connection the proxy closes without routing gives a result with err
// set; a timeout fails the test: an unrouted connection is closed at
// once, never left hanging.
func probe(t testing.TB, addr string, tlsConf *tls.Config, greet bool) probeResult {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, answerWait)
	if err != nil {
		t.Fatalf("dialing %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(answerWait))
	conn := c
	if tlsConf != nil {
		tc := tls.Client(c, tlsConf)
		if err := tc.Handshake(); err != nil {
			t.Fatalf("TLS handshake with %s: %v", addr, err)
		}
		conn = tc
	}
	return talk(t, conn, greet)
}

// talk runs the probe exchange on an open connection.
func talk(t testing.TB, conn net.Conn, greet bool) probeResult {
	t.Helper()
	_ = conn.SetDeadline(time.Now().Add(answerWait))
	br := bufio.NewReader(conn)
	var res probeResult
	if greet {
		line, err := br.ReadString('\n')
		if err != nil {
			return checkEnd(t, res, err)
		}
		res.greeting = strings.TrimSuffix(line, " greeting\n")
	}
	if _, err := io.WriteString(conn, "ping\n"); err != nil {
		return checkEnd(t, res, err)
	}
	line, err := br.ReadString('\n')
	if err != nil {
		return checkEnd(t, res, err)
	}
	if !strings.HasSuffix(line, ":ping\n") {
		t.Fatalf("unexpected answer %q", line)
	}
	res.answer = strings.TrimSuffix(line, ":ping\n")
	return res
}

func checkEnd(t testing.TB, res probeResult, err error) probeResult {
	t.Helper()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("no answer and no close within %v", answerWait)
	}
	res.err = err
	return res
}

// leaf issues a server certificate for names signed by ca; it returns
// the PEM cert, the PEM key and the tls.Certificate.
func leaf(t testing.TB, ca *e2e.Cert, names ...string) (string, string, tls.Certificate) {
	t.Helper()
	c := e2e.NewLeaf(t, names[0], ca, names...)
	return c.CertPEM, c.KeyPEM, c.TLS()
}

// portFree reports whether addr can be bound now.
func portFree(addr string) bool {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	_ = ln.Close()
	return true
}

// holder names the process listening on a TCP port, from /proc, for the
// "port busy" messages; "" when it cannot tell.
func holder(port int) string {
	out, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return ""
	}
	hexPort := fmt.Sprintf(":%04X", port)
	var inodes []string
	for _, line := range strings.Split(string(out), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 9 && strings.HasSuffix(f[1], hexPort) && f[3] == "0A" {
			inodes = append(inodes, f[9])
		}
	}
	if len(inodes) == 0 {
		return ""
	}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		fds, err := os.ReadDir("/proc/" + p.Name() + "/fd")
		if err != nil {
			continue
		}
		for _, fd := range fds {
			link, err := os.Readlink("/proc/" + p.Name() + "/fd/" + fd.Name())
			if err != nil {
				continue
			}
			for _, ino := range inodes {
				if link == "socket:["+ino+"]" {
					cmd, _ := os.ReadFile("/proc/" + p.Name() + "/cmdline")
					return fmt.Sprintf("pid %s (%s)", p.Name(), strings.ReplaceAll(strings.TrimSpace(string(cmd)), "\x00", " "))
				}
			}
		}
	}
	return ""
}
