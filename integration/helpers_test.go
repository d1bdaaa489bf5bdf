//go:build linux

package integration

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// adminKey is the admin_key every test config uses.
const adminKey = e2e.AdminKey

// Bounds of every wait in this package: positive answers come well within
// answerWait on loopback; "no answer" is judged after silenceWait.
const (
	answerWait  = 5 * time.Second
	silenceWait = time.Second
	startWait   = 20 * time.Second
)

// ---------------------------------------------------------------------
// Caddy processes

// caddyProc is one running Caddy process.
type caddyProc struct {
	*e2e.Proc
	t     *testing.T
	dir   string
	admin string // host:port of the admin endpoint
	// nofile is the RLIMIT_NOFILE to run with; 0 inherits.
	nofile int
}

// caddyConfig describes one test's Caddy config. Apisix is the apisix
// app (nil: none); Apps are further apps such as layer4; Ready, when set,
// replaces the default readiness check (the Admin API answers for a
// running apisix app).
type caddyConfig struct {
	Apisix map[string]any
	Apps   map[string]any
	Ready  func(p *caddyProc) error
	// Storage is the file_system storage root; default: a fresh
	// directory of the test.
	Storage string
	// LogLevel is the default log's level; default DEBUG.
	LogLevel string
	// Logging replaces the whole "logging" config when set.
	Logging map[string]any
	// Nofile, when set, runs Caddy with RLIMIT_NOFILE (soft and hard)
	// at this value.
	Nofile int
}

// config is the full Caddy JSON config for cc, with p's admin endpoint.
func (p *caddyProc) config(cc caddyConfig) map[string]any {
	apps := map[string]any{}
	for k, v := range cc.Apps {
		apps[k] = v
	}
	if cc.Apisix != nil {
		apps["apisix"] = e2e.ApisixApp(cc.Apisix)
	}
	level := cc.LogLevel
	if level == "" {
		level = "DEBUG"
	}
	logging := cc.Logging
	if logging == nil {
		logging = e2e.LogLevel(level)
	}
	return e2e.CaddyConfig(p.admin, cc.Storage, logging, apps)
}

// load replaces the running config through Caddy's /load endpoint.
func (p *caddyProc) load(t *testing.T, cc caddyConfig) {
	t.Helper()
	if cc.Storage == "" {
		cc.Storage = filepath.Join(p.dir, "storage")
	}
	stopped := strings.Count(p.Output(), `"stopped previous server"`)
	code, body, err := p.request(http.MethodPost, "/load", p.config(cc))
	if err != nil || code != http.StatusOK {
		t.Fatalf("POST /load: %d %s %v", code, body, err)
	}
	// Caddy restarts its admin endpoint on every /load and stops the old
	// one in the background (caddy admin.go replaceLocalAdminServer): a
	// request the old socket accepts meanwhile is reset. Wait for its
	// log line (at most 2 s: a config that logs above INFO has none).
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if strings.Count(p.Output(), `"stopped previous server"`) > stopped {
			return
		}
	}
}

// startCaddy writes the config, starts caddy run, waits until it is
// ready, and stops it (SIGTERM, then SIGKILL) by PID at the end of the test.
func startCaddy(t *testing.T, cc caddyConfig) *caddyProc {
	t.Helper()
	dir := t.TempDir()
	p := &caddyProc{t: t, dir: dir, admin: fmt.Sprintf("127.0.0.1:%d", freePort(t)), nofile: cc.Nofile}
	if cc.Storage == "" {
		cc.Storage = filepath.Join(dir, "storage")
	}
	path := writeJSON(t, dir, "caddy.json", p.config(cc))
	p.run(path, cc.Ready)
	return p
}

// startProcess runs caddy with a config file written by the caller,
// whose admin endpoint is admin, and waits until its apisix app runs.
func startProcess(t *testing.T, path, admin string) *caddyProc {
	t.Helper()
	p := &caddyProc{t: t, dir: t.TempDir(), admin: admin}
	p.run(path, nil)
	return p
}

// run starts caddy run --config path and waits for ready (default: the
// apisix app runs). Its stop must be clean: exit code 0 within 10 s of
// SIGTERM.
func (p *caddyProc) run(path string, ready func(p *caddyProc) error) {
	p.t.Helper()
	cmd := e2e.CaddyCmd(caddyBin, path, p.dir)
	if p.nofile > 0 {
		e2e.LimitNofile(p.t, cmd, p.nofile)
	}
	p.Proc = e2e.Start(p.t, "caddy", cmd, e2e.Options{CleanExit: true})
	check := e2e.ApisixReady(p.admin, adminKey)
	if ready != nil {
		check = func() error { return ready(p) }
	}
	p.WaitReady(startWait, check)
}

// request sends one Admin API request with the admin key; body, when not
// nil, is sent as JSON.
func (p *caddyProc) request(method, path string, body any) (int, []byte, error) {
	var raw []byte
	var hdr map[string]string
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		raw, hdr = b, e2e.JSONContent
	}
	code, _, b, err := e2e.Admin{Addr: p.admin}.Do(method, path, adminKey, raw, hdr)
	return code, b, err
}

// put PUTs an object through the Admin API and fails unless it is stored.
func (p *caddyProc) put(t *testing.T, path string, body any) {
	t.Helper()
	code, resp, err := p.request(http.MethodPut, "/apisix/admin/"+path, body)
	if err != nil {
		t.Fatalf("PUT %s: %v", path, err)
	}
	if code != http.StatusOK && code != http.StatusCreated {
		t.Fatalf("PUT %s: %d %s", path, code, resp)
	}
}

// Shared helpers under this package's names.
var (
	writeJSON = e2e.WriteJSON
	freePort  = e2e.FreePort
	hostPort  = e2e.HostPort
)

// runCaddy runs a caddy subcommand to completion (bounded) and returns its
// combined output and error.
func runCaddy(t *testing.T, args ...string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(caddyBin, args...)
	cmd.Dir = dir
	cmd.Env = e2e.Env(dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(30*time.Second, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	err := cmd.Wait()
	return out.String(), err
}

// ---------------------------------------------------------------------
// Ports and addresses

// ---------------------------------------------------------------------
// Backends

// backend is a named echo server on 127.0.0.1, TCP and UDP on one port,
// so one upstream node serves both. Over TCP it first writes its name and
// a newline, then echoes; over UDP it answers each datagram with its name,
// a newline and the datagram.
type backend struct {
	Name string
	Port int
	// Accepted counts TCP connections; Peers counts distinct UDP sources.
	Accepted atomic.Int64
	mu       sync.Mutex
	peers    map[string]int
}

// Addr is the backend's host:port, an upstream node key.
func (b *backend) Addr() string { return hostPort("127.0.0.1", b.Port) }

// Peers is the number of distinct UDP source addresses seen.
func (b *backend) Peers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.peers)
}

// newBackend starts a named echo backend; it stops with the test.
func newBackend(t *testing.T, name string) *backend {
	t.Helper()
	b := &backend{Name: name, peers: map[string]int{}}
	var ln net.Listener
	var pc net.PacketConn
	for range 50 {
		var err error
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		b.Port = ln.Addr().(*net.TCPAddr).Port
		if pc, err = net.ListenPacket("udp", b.Addr()); err == nil {
			break
		}
		ln.Close()
		ln = nil
	}
	if ln == nil {
		t.Fatal("backend: no port free for TCP and UDP")
	}
	e2e.Serve(t, ln, func(c net.Conn) {
		b.Accepted.Add(1)
		if _, err := io.WriteString(c, b.Name+"\n"); err != nil {
			return
		}
		_, _ = io.Copy(c, c)
	})
	var wg sync.WaitGroup
	t.Cleanup(func() {
		pc.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			b.mu.Lock()
			b.peers[from.String()]++
			b.mu.Unlock()
			reply := append([]byte(b.Name+"\n"), buf[:n]...)
			_, _ = pc.WriteTo(reply, from)
		}
	}()
	return b
}

// deadPort returns a loopback port nothing listens on (connect is refused).
func deadPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// nodes is an upstream "nodes" object with weight 1 for each backend.
func nodes(bs ...*backend) map[string]int {
	m := map[string]int{}
	for _, b := range bs {
		m[b.Addr()] = 1
	}
	return m
}

// upstreamOf is a roundrobin upstream over the backends.
func upstreamOf(bs ...*backend) map[string]any {
	return map[string]any{"type": "roundrobin", "nodes": nodes(bs...)}
}

// ---------------------------------------------------------------------
// Clients

// dialFrom opens a TCP connection to dst from the source IP src ("" for
// any).
func dialFrom(src, dst string) (net.Conn, error) {
	d := net.Dialer{Timeout: answerWait}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	return d.Dial("tcp", dst)
}

// closedSilently reports whether err ends a read that returned no bytes
// the way a silent close does: EOF or a reset.
func closedSilently(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

// greeting reads the backend's name line from c. It returns "" when the
// proxy closed the connection with no bytes, and an error for anything
// else (a timeout, a partial line).
func greeting(c net.Conn) (string, error) {
	_ = c.SetReadDeadline(time.Now().Add(answerWait))
	defer c.SetReadDeadline(time.Time{})
	line, err := bufio.NewReaderSize(oneByteReader{c}, 16).ReadString('\n')
	if err != nil {
		if line == "" && closedSilently(err) {
			return "", nil
		}
		return "", fmt.Errorf("reading greeting (got %q): %w", line, err)
	}
	return strings.TrimSuffix(line, "\n"), nil
}

// oneByteReader reads one byte at a time, so the greeting reader never
// buffers bytes past the newline that the caller reads next.
type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return o.r.Read(p)
}

// whoTCP connects from src to dst and returns the name of the backend
// that answered (checking that it echoes), or "" if the proxy closed the
// connection silently.
func whoTCP(t *testing.T, src, dst string) string {
	t.Helper()
	c, name := firstLine(t, src, dst)
	defer c.Close()
	if name != "" {
		checkEcho(t, c, name)
	}
	return name
}

// firstLine connects from src to dst and reads the first line, "" on a
// silent close. The caller closes the connection.
func firstLine(t *testing.T, src, dst string) (net.Conn, string) {
	t.Helper()
	c, err := dialFrom(src, dst)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", dst, src, err)
	}
	name, err := greeting(c)
	if err != nil {
		c.Close()
		t.Fatalf("%s from %s: %v", dst, src, err)
	}
	return c, name
}

// checkEcho sends a line on an established proxied connection and
// expects it back.
func checkEcho(t *testing.T, c net.Conn, name string) {
	t.Helper()
	msg := "ping " + name + "\n"
	_ = c.SetDeadline(time.Now().Add(answerWait))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatalf("echo via %s: write: %v", name, err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("echo via %s: read: %v", name, err)
	}
	if string(got) != msg {
		t.Fatalf("echo via %s: got %q, want %q", name, got, msg)
	}
}

// whoTLS connects with TLS (SNI sni, verified against roots) and returns
// the backend's name, or "" if the proxy closed the connection after the
// handshake without a byte.
func whoTLS(t *testing.T, src, dst, sni string, roots *x509.CertPool) string {
	t.Helper()
	raw, err := dialFrom(src, dst)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", dst, src, err)
	}
	c := tls.Client(raw, &tls.Config{ServerName: sni, RootCAs: roots, MinVersion: tls.VersionTLS12})
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(answerWait))
	if err := c.Handshake(); err != nil {
		t.Fatalf("TLS handshake with %s (sni %q) from %s: %v", dst, sni, src, err)
	}
	name, err := greeting(c)
	if err != nil {
		t.Fatalf("%s (sni %q) from %s: %v", dst, sni, src, err)
	}
	if name != "" {
		checkEcho(t, c, name)
	}
	return name
}

// udpFrom opens a UDP socket bound to src, connected to dst.
func udpFrom(t *testing.T, src, dst string) *net.UDPConn {
	t.Helper()
	raddr, err := net.ResolveUDPAddr("udp", dst)
	if err != nil {
		t.Fatal(err)
	}
	var laddr *net.UDPAddr
	if src != "" {
		laddr = &net.UDPAddr{IP: net.ParseIP(src)}
	}
	c, err := net.DialUDP("udp", laddr, raddr)
	if err != nil {
		t.Fatalf("udp %s from %s: %v", dst, src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// udpAsk sends payload and waits for one reply: the backend's name and
// the echoed payload. ok is false if nothing came back within wait.
func udpAsk(t *testing.T, c *net.UDPConn, payload []byte, wait time.Duration) (name string, echo []byte, ok bool) {
	t.Helper()
	if _, err := c.Write(payload); err != nil {
		t.Fatalf("udp write: %v", err)
	}
	buf := make([]byte, 70000)
	_ = c.SetReadDeadline(time.Now().Add(wait))
	n, err := c.Read(buf)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return "", nil, false
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("udp: %s refused the datagram (nothing listens)", c.RemoteAddr())
		}
		t.Fatalf("udp read: %v", err)
	}
	head, rest, found := bytes.Cut(buf[:n], []byte("\n"))
	if !found {
		t.Fatalf("udp reply without a name line: %q", buf[:min(n, 64)])
	}
	return string(head), rest, true
}

// whoUDP sends one datagram from a fresh socket and returns the backend
// name of the reply, or "" when no reply came within silenceWait.
func whoUDP(t *testing.T, src, dst string) string {
	t.Helper()
	c := udpFrom(t, src, dst)
	defer c.Close()
	payload := []byte("hello " + dst)
	wait := answerWait
	name, echo, ok := udpAsk(t, c, payload, wait)
	if !ok {
		return ""
	}
	if !bytes.Equal(echo, payload) {
		t.Fatalf("udp echo via %s: got %q, want %q", name, echo, payload)
	}
	return name
}

// expectNoUDPReply sends a datagram and asserts that nothing comes back
// within silenceWait.
func expectNoUDPReply(t *testing.T, src, dst string) {
	t.Helper()
	c := udpFrom(t, src, dst)
	defer c.Close()
	if name, _, ok := udpAsk(t, c, []byte("anyone?"), silenceWait); ok {
		t.Fatalf("udp %s from %s: got a reply from %q, want none", dst, src, name)
	}
}

// ---------------------------------------------------------------------
// TLS material

// testCert is a self-signed certificate for names that a client trusts
// with its Pool.
type testCert = *e2e.Cert

// newTestCert is e2e.NewCert.
var newTestCert = e2e.NewCert

// sslObject is a static SSL object serving c for snis.
func sslObject(c testCert, id string, snis ...string) map[string]any {
	return map[string]any{"id": id, "cert": c.CertPEM, "key": c.KeyPEM, "snis": snis}
}

// ---------------------------------------------------------------------
// Special backends

// tcpServer runs handle for every connection accepted on a fresh
// 127.0.0.1 port until the test ends, and returns the address.
func tcpServer(t *testing.T, handle func(c *net.TCPConn)) string {
	t.Helper()
	return e2e.ServeTCP(t, func(c net.Conn) { handle(c.(*net.TCPConn)) })
}

// pattern is a deterministic pseudo-random byte stream for a seed.
func pattern(seed byte) io.Reader {
	return mrand.NewChaCha8([32]byte{seed})
}

// hashedCopy copies n bytes of src to dst and returns the SHA-256 of
// what it copied.
func hashedCopy(dst io.Writer, src io.Reader, n int64) ([32]byte, int64, error) {
	h := sha256.New()
	m, err := io.CopyBuffer(io.MultiWriter(dst, h), io.LimitReader(src, n), make([]byte, 256<<10))
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum, m, err
}

// drainHash reads r to EOF and returns the SHA-256 and count of its bytes.
func drainHash(r io.Reader) ([32]byte, int64, error) {
	return hashedCopy(io.Discard, r, 1<<62)
}

// containsLogged reports whether out holds s as written or as escaped in
// a JSON log line.
func containsLogged(out, s string) bool {
	return strings.Contains(out, s) || strings.Contains(out, strings.ReplaceAll(s, `"`, `\"`))
}

// newTLSBackend starts a TLS echo server on 127.0.0.1 with cert; after the
// handshake it writes "<name> sni=<server name>" and a newline, then
// echoes. It returns the address.
func newTLSBackend(t *testing.T, name string, cert testCert) string {
	t.Helper()
	pair, err := tls.X509KeyPair([]byte(cert.CertPEM), []byte(cert.KeyPEM))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	return tcpServer(t, func(c *net.TCPConn) {
		_ = c.SetDeadline(time.Now().Add(answerWait))
		tc := tls.Server(c, cfg)
		if err := tc.Handshake(); err != nil {
			return
		}
		_ = c.SetDeadline(time.Time{})
		if _, err := fmt.Fprintf(tc, "%s sni=%s\n", name, tc.ConnectionState().ServerName); err != nil {
			return
		}
		_, _ = io.Copy(tc, tc)
	})
}
