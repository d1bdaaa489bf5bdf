package syslog

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/internal/testcert"
)

func TestAppendRFC5424(t *testing.T) {
	at := time.Date(2026, 12, 2, 15, 4, 5, 7_000_000, time.FixedZone("CET", 3600))
	tests := []struct {
		host, app string
		want      string
	}{
		{"", "apisix", `<46>1 2026-12-02T14:04:05.007Z - apisix 4242 - - {"a":1}` + "\n"},
		{"gw1", "", `<46>1 2026-12-02T14:04:05.007Z gw1 - 4242 - - {"a":1}` + "\n"},
	}
	for _, tt := range tests {
		got := string(AppendRFC5424(nil, FacilitySyslog, SeverityInfo, at, tt.host, tt.app, 4242, []byte(`{"a":1}`)))
		if got != tt.want {
			t.Errorf("got  %q\nwant %q", got, tt.want)
		}
	}
}

func TestEncodeJSON(t *testing.T) {
	got, err := encodeJSON(map[string]any{"url": "tcp://a/b", "h": "<&>", "n": json.Number("1.5"), "o": map[string]any{"x": nil}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"h":"<&>","n":1.5,"o":{"x":null},"url":"tcp:\/\/a\/b"}`; string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	var back map[string]any
	if err := json.Unmarshal(got, &back); err != nil || back["url"] != "tcp://a/b" {
		t.Errorf("not valid JSON: %v %v", back, err)
	}
}

// lineServer is a TCP (optionally TLS) syslog server that collects lines.
type lineServer struct {
	ln    net.Listener
	mu    sync.Mutex
	lines []string
	conns []net.Conn
	cond  *sync.Cond
}

func newLineServer(t *testing.T, conf *tls.Config) *lineServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if conf != nil {
		ln = tls.NewListener(ln, conf)
	}
	s := &lineServer{ln: ln}
	s.cond = sync.NewCond(&s.mu)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					s.mu.Lock()
					s.lines = append(s.lines, sc.Text())
					s.cond.Broadcast()
					s.mu.Unlock()
				}
			}()
		}
	}()
	return s
}

// dropConns closes the connections accepted so far.
func (s *lineServer) dropConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
}

func (s *lineServer) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// wait returns the first n lines once they are there; the watchdog only
// catches a hang.
func (s *lineServer) wait(t *testing.T, n int) []string {
	t.Helper()
	timer := time.AfterFunc(20*time.Second, func() { s.mu.Lock(); s.cond.Broadcast(); s.mu.Unlock() })
	defer timer.Stop()
	deadline := time.Now().Add(20 * time.Second)
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.lines) < n {
		if time.Now().After(deadline) {
			t.Fatalf("got %d lines, want %d: %q", len(s.lines), n, s.lines)
		}
		s.cond.Wait()
	}
	return append([]string(nil), s.lines[:n]...)
}

func (s *lineServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.lines)
}

var lineRe = regexp.MustCompile(`^<46>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z - apisix (\d+) - - (\{.*\})$`)

// entryOf checks a line's framing and returns its JSON entry.
func entryOf(t *testing.T, line string) map[string]any {
	t.Helper()
	m := lineRe.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("line %q is not APISIX's RFC 5424 frame", line)
	}
	var e map[string]any
	if err := json.Unmarshal([]byte(m[2]), &e); err != nil {
		t.Fatalf("entry %q: %v", m[2], err)
	}
	return e
}

func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		<-c.Done()
	})
	return c
}

// idle waits until the worker holds nothing: every logged entry but the
// batch being filled has been given to the socket logger.
func idle(t *testing.T, c *Client) {
	t.Helper()
	for i := 0; ; i++ {
		c.mu.Lock()
		p := c.pending - len(c.cur)
		c.mu.Unlock()
		if p == 0 {
			return
		}
		if i > 2000 {
			t.Fatalf("%d entries still pending", p)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBatchMaxSizeOverTCP(t *testing.T) {
	srv := newLineServer(t, nil)
	c := newClient(t, Config{Port: srv.port(), BatchMaxSize: 3, FlushLimit: 1, InactiveTimeout: time.Hour})
	for i := range 5 {
		if err := c.Log(map[string]any{"i": i, "client_ip": "127.0.0.1"}); err != nil {
			t.Fatal(err)
		}
	}
	lines := srv.wait(t, 3)
	for i, l := range lines {
		if e := entryOf(t, l); e["i"] != float64(i) || e["client_ip"] != "127.0.0.1" {
			t.Errorf("line %d entry %v", i, e)
		}
	}
	idle(t, c)
	if n := srv.count(); n != 3 {
		t.Errorf("%d lines before the second batch is full, want 3", n)
	}
	c.Log(map[string]any{"i": 5})
	for i, l := range srv.wait(t, 6)[3:] {
		if e := entryOf(t, l); e["i"] != float64(3+i) {
			t.Errorf("line %d entry %v", 3+i, e)
		}
	}
	idle(t, c)
	if st := c.Stats(); st.Logged != 6 || st.Sent != 6 || st.Dropped != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestInactiveTimeoutSendsAPartialBatch(t *testing.T) {
	srv := newLineServer(t, nil)
	c := newClient(t, Config{Port: srv.port(), BatchMaxSize: 1000, FlushLimit: 1, InactiveTimeout: 50 * time.Millisecond})
	c.Log(map[string]any{"k": "v"})
	c.Log(map[string]any{"k": "w"})
	lines := srv.wait(t, 2)
	if entryOf(t, lines[0])["k"] != "v" || entryOf(t, lines[1])["k"] != "w" {
		t.Errorf("lines %q", lines)
	}
}

func TestBufferDurationBoundsABusyBatch(t *testing.T) {
	srv := newLineServer(t, nil)
	// Entries keep coming faster than the inactive timeout: only the
	// buffer duration sends the batch.
	c := newClient(t, Config{Port: srv.port(), BatchMaxSize: 1000000, FlushLimit: 1, DropLimit: 1 << 30,
		MaxPendingEntries: 1 << 20, InactiveTimeout: 40 * time.Millisecond, BufferDuration: 200 * time.Millisecond})
	stop := make(chan struct{})
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				c.Log(map[string]any{"i": i})
			}
		}
	}()
	srv.wait(t, 1)
	close(stop)
}

func TestFlushLimitHoldsSmallBatches(t *testing.T) {
	srv := newLineServer(t, nil)
	c := newClient(t, Config{Port: srv.port(), BatchMaxSize: 1, FlushLimit: 300})
	c.Log(map[string]any{"n": 1}) // about 70 bytes framed
	c.Log(map[string]any{"n": 2})
	idle(t, c)
	if n := srv.count(); n != 0 || c.Stats().Sent != 0 {
		t.Fatalf("%d lines sent under the flush limit", n)
	}
	for i := 3; i <= 5; i++ {
		c.Log(map[string]any{"n": i, "pad": strings.Repeat("x", 20)})
	}
	lines := srv.wait(t, 4)
	for i, l := range lines {
		if e := entryOf(t, l); e["n"] != float64(i+1) {
			t.Errorf("line %d entry %v", i, e)
		}
	}
}

func TestUDPOneDatagramPerMessage(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	c := newClient(t, Config{Network: "udp", Port: pc.LocalAddr().(*net.UDPAddr).Port, BatchMaxSize: 3, FlushLimit: 1})
	for i := range 3 {
		c.Log(map[string]any{"i": i, "vip": "127.0.0.1"})
	}
	buf := make([]byte, 70000)
	_ = pc.SetReadDeadline(time.Now().Add(20 * time.Second))
	for i := range 3 {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		d := string(buf[:n])
		if !strings.HasSuffix(d, "\n") || strings.Count(d, "\n") != 1 {
			t.Fatalf("datagram %q is not one message", d)
		}
		if e := entryOf(t, strings.TrimSuffix(d, "\n")); e["i"] != float64(i) || e["vip"] != "127.0.0.1" {
			t.Errorf("datagram %d entry %v", i, e)
		}
	}
}

func TestTLS(t *testing.T) {
	cert, pool := selfSigned(t, "logs.test")
	srv := newLineServer(t, &tls.Config{Certificates: []tls.Certificate{cert}})
	c := newClient(t, Config{Port: srv.port(), TLS: true, BatchMaxSize: 1, FlushLimit: 1,
		TLSConfig: &tls.Config{RootCAs: pool, ServerName: "logs.test"}})
	c.Log(map[string]any{"over": "tls"})
	if e := entryOf(t, srv.wait(t, 1)[0]); e["over"] != "tls" {
		t.Errorf("entry %v", e)
	}

	// A server whose certificate is not trusted gets nothing.
	bad := newClient(t, Config{Port: srv.port(), TLS: true, BatchMaxSize: 1, FlushLimit: 1})
	bad.Log(map[string]any{"over": "untrusted"})
	for i := 0; bad.Stats().FlushErrors == 0; i++ {
		if i > 2000 {
			t.Fatal("no flush error against an untrusted certificate")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if srv.count() != 1 {
		t.Errorf("an untrusted server got data")
	}
}

func TestReconnectsAfterTheServerClosed(t *testing.T) {
	srv := newLineServer(t, nil)
	c := newClient(t, Config{Port: srv.port(), BatchMaxSize: 1, FlushLimit: 1})
	c.Log(map[string]any{"n": 1})
	srv.wait(t, 1)
	srv.dropConns()
	// The next entry must not be lost in the dead kept connection.
	c.Log(map[string]any{"n": 2})
	if e := entryOf(t, srv.wait(t, 2)[1]); e["n"] != float64(2) {
		t.Errorf("entry %v", e)
	}
	idle(t, c)
	if st := c.Stats(); st.Sent != 2 || st.FlushErrors != 0 {
		t.Errorf("stats %+v", st)
	}
}

func selfSigned(t *testing.T, name string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	certPEM, keyPEM := testcert.SelfSigned(t, name)
	cert, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(certPEM))
	return cert, pool
}
