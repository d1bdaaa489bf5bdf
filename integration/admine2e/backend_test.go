package admine2e

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
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
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// startBackend listens on addr ("127.0.0.1:0" for any port) and serves
// until the test ends.
func startBackend(t testing.TB, tag, addr string, greet bool, cert *tls.Certificate) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("backend %s: cannot listen on %s (another process holds it?): %v", tag, addr, err)
	}
	b := &backend{tag: tag, ln: ln, greet: greet, cert: cert, conns: map[net.Conn]struct{}{}}
	b.wg.Add(1)
	go b.serve()
	t.Cleanup(b.close)
	return b
}

func (b *backend) addr() string { return b.ln.Addr().String() }

func (b *backend) close() {
	_ = b.ln.Close()
	b.mu.Lock()
	for c := range b.conns {
		_ = c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

func (b *backend) serve() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		b.conns[c] = struct{}{}
		b.mu.Unlock()
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			b.handle(c)
			b.mu.Lock()
			delete(b.conns, c)
			b.mu.Unlock()
			_ = c.Close()
		}()
	}
}

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

// certs is a test CA and leaf certificates it signed.
type certs struct {
	pool   *x509.CertPool
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caPEM  string
	serial int64
}

func newCA(t testing.TB) *certs {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "admine2e test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &certs{pool: pool, ca: ca, caKey: key, caPEM: pemBlock("CERTIFICATE", der), serial: 1}
}

// leaf issues a server certificate for names; it returns the PEM cert,
// the PEM key and the tls.Certificate.
func (c *certs) leaf(t testing.TB, names ...string) (string, string, tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(c.serial),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.ca, &key.PublicKey, c.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM := pemBlock("CERTIFICATE", der), pemBlock("EC PRIVATE KEY", kder)
	pair, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
	if err != nil {
		t.Fatal(err)
	}
	return certPEM, keyPEM, pair
}

func pemBlock(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
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
