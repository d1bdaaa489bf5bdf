package health

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-apisix/stream/balancer"
)

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// listen opens a loopback listener served by handle until the test ends.
func listen(t *testing.T, network, addr string, handle func(net.Conn)) net.Listener {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				handle(c)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln
}

func closeAtOnce(net.Conn) {}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func newChecker(t *testing.T, js string, addrs ...string) *Checker {
	t.Helper()
	c, err := NewChecker(checks(t, js), addrs, "1", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

const fastTCP = `{"active":{"type":"tcp","timeout":0.5,"healthy":{"interval":0.02},"unhealthy":{"interval":0.02}}}`

func TestTCPCheckDownAndUp(t *testing.T) {
	up := listen(t, "tcp", "127.0.0.1:0", closeAtOnce).Addr().String()
	down := closedAddr(t)
	c := newChecker(t, fastTCP, up, down)
	bal, err := balancer.New("roundrobin", "", "", []balancer.Node{{Addr: up, Weight: 1}, {Addr: down, Weight: 1}}, c)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Healthy(up) || !c.Healthy(down) {
		t.Fatal("nodes must start healthy")
	}
	c.Start()
	waitFor(t, down+" unhealthy", func() bool { return !c.Healthy(down) })
	if !c.Healthy(up) {
		t.Fatalf("%s became unhealthy", up)
	}
	// The balancer skips the down node.
	ctx := &balancer.Context{}
	for range 50 {
		ctx.Reset()
		n, err := bal.Pick(ctx)
		if err != nil || n.Addr != up {
			t.Fatalf("picked %v %v, want %s", n, err, up)
		}
	}
	st := c.Status()
	if st[1].Status != "unhealthy" || st[1].Healthy || st[0].Status != "healthy" {
		t.Fatalf("status = %+v", st)
	}
	// The port opens: the node recovers after two successes.
	var ln net.Listener
	waitFor(t, "listening on "+down, func() bool {
		ln, err = net.Listen("tcp", down)
		return err == nil
	})
	ln.Close()
	listen(t, "tcp", down, closeAtOnce)
	waitFor(t, down+" healthy again", func() bool { return c.Healthy(down) })
	seen := map[string]bool{}
	for range 4 {
		ctx.Reset()
		n, _ := bal.Pick(ctx)
		seen[n.Addr] = true
	}
	if len(seen) != 2 {
		t.Fatalf("after recovery picked %v", seen)
	}
}

func TestAllUnhealthyUsesAll(t *testing.T) {
	a, b := closedAddr(t), closedAddr(t)
	c := newChecker(t, fastTCP, a, b)
	bal, err := balancer.New("least_conn", "", "", []balancer.Node{{Addr: a, Weight: 1}, {Addr: b, Weight: 1}}, c)
	if err != nil {
		t.Fatal(err)
	}
	c.Start()
	waitFor(t, "both unhealthy", func() bool { return !c.Healthy(a) && !c.Healthy(b) })
	ctx := &balancer.Context{}
	seen := map[string]bool{}
	for range 2 {
		n, err := bal.Pick(ctx)
		if err != nil {
			t.Fatal(err)
		}
		seen[n.Addr] = true
	}
	if !seen[a] || !seen[b] {
		t.Fatalf("all unhealthy: picked %v, want both", seen)
	}
}

// httpServer answers probes with the status line status() gives and
// records the requests.
type httpServer struct {
	status   atomic.Value // string
	mu       sync.Mutex
	requests []string
}

func (s *httpServer) handle(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	var req []string
	for range 50 {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if line == "\r\n" {
			break
		}
		req = append(req, strings.TrimRight(line, "\r\n"))
	}
	s.mu.Lock()
	s.requests = append(s.requests, strings.Join(req, "|"))
	s.mu.Unlock()
	fmt.Fprintf(c, "%s\r\nContent-Length: 0\r\n\r\n", s.status.Load())
}

func (s *httpServer) last() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) == 0 {
		return ""
	}
	return s.requests[len(s.requests)-1]
}

// withFastIntervals adds an http type, short intervals and
// http_failures 2 to an active check object.
func withFastIntervals(t *testing.T, active string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(active), &m); err != nil {
		t.Fatal(err)
	}
	m["type"] = "http"
	for _, k := range []string{"healthy", "unhealthy"} {
		sub, _ := m[k].(map[string]any)
		if sub == nil {
			sub = map[string]any{}
		}
		sub["interval"] = 0.02
		m[k] = sub
	}
	m["unhealthy"].(map[string]any)["http_failures"] = 2
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHTTPCheck(t *testing.T) {
	tests := []struct {
		name, checks, status string
		healthy              bool
		request              string
	}{
		{"default 200", `{"http_path":"/status"}`, "HTTP/1.1 200 OK", true, "GET /status HTTP/1.0|Host: 127.0.0.1"},
		{"redirect", `{}`, "HTTP/1.1 302 Found", true, "GET / HTTP/1.0|Host: 127.0.0.1"},
		{"500", `{"host":"svc.test","req_headers":["X-Probe: 1"]}`, "HTTP/1.1 500 Oops", false, "GET / HTTP/1.0|X-Probe: 1|Host: svc.test"},
		{"200 not in list", `{"healthy":{"http_statuses":[204]}}`, "HTTP/1.1 200 OK", false, ""},
		{"garbage", `{}`, "SSH-2.0-x", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &httpServer{}
			srv.status.Store(tt.status)
			addr := listen(t, "tcp", "127.0.0.1:0", srv.handle).Addr().String()
			js := withFastIntervals(t, tt.checks)
			c := newChecker(t, `{"active":`+js+`}`, addr)
			c.Start()
			if tt.healthy {
				waitFor(t, "two probes", func() bool {
					srv.mu.Lock()
					defer srv.mu.Unlock()
					return len(srv.requests) >= 2
				})
				if !c.Healthy(addr) {
					t.Fatalf("unhealthy: %+v", c.Status())
				}
			} else {
				waitFor(t, "unhealthy", func() bool { return !c.Healthy(addr) })
			}
			if tt.request != "" && srv.last() != tt.request {
				t.Fatalf("request %q, want %q", srv.last(), tt.request)
			}
		})
	}
}

func TestHTTPSCheck(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the verifying checker's failed handshakes
	srv.StartTLS()
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "https://")
	insecure := newChecker(t, `{"active":{"type":"https","https_verify_certificate":false,"healthy":{"interval":0.02},"unhealthy":{"interval":0.02}}}`, addr)
	verify := newChecker(t, `{"active":{"type":"https","healthy":{"interval":0.02},"unhealthy":{"interval":0.02}}}`, addr)
	insecure.Start()
	verify.Start()
	// The test certificate is not trusted: verification fails.
	waitFor(t, "verify failure", func() bool { return !verify.Healthy(addr) })
	waitFor(t, "insecure probes", func() bool {
		return insecure.Status()[0].Counters.Success > 0 || insecure.Status()[0].IP == "127.0.0.1"
	})
	if !insecure.Healthy(addr) {
		t.Fatalf("insecure https: %+v", insecure.Status())
	}
}

func TestTimeouts(t *testing.T) {
	// Accepts and never answers: each http probe times out.
	var conns atomic.Int32
	silent := listen(t, "tcp", "127.0.0.1:0", func(c net.Conn) {
		conns.Add(1)
		_, _ = io.Copy(io.Discard, c)
	}).Addr().String()
	c := newChecker(t, `{"active":{"type":"http","timeout":0.05,"healthy":{"interval":0.01},"unhealthy":{"interval":0.01}}}`, silent)
	c.Start()
	waitFor(t, "timeouts", func() bool { return !c.Healthy(silent) })
	if n := conns.Load(); n < 3 {
		t.Fatalf("unhealthy after %d probes, want 3 timeouts", n)
	}
}

func TestPassive(t *testing.T) {
	const addr = "127.0.0.1:9"
	// Without checks.passive, reports are ignored (APISIX).
	c := newChecker(t, `{"active":{"type":"tcp"}}`, addr)
	for range 10 {
		c.ReportFailure(addr, false)
	}
	if !c.Healthy(addr) || c.Status()[0].Counters != (Counters{}) {
		t.Fatalf("without passive: %+v", c.Status())
	}

	c = newChecker(t, `{"active":{"type":"tcp"},"passive":{}}`, addr)
	steps := []struct {
		do      func()
		status  string
		counter Counters
	}{
		{func() { c.ReportSuccess(addr) }, "healthy", Counters{}},
		{func() { c.ReportFailure(addr, true) }, "mostly_healthy", Counters{TimeoutFailure: 1}},
		{func() { c.ReportFailure(addr, false) }, "mostly_healthy", Counters{TCPFailure: 1, TimeoutFailure: 1}},
		{func() { c.ReportSuccess(addr) }, "mostly_healthy", Counters{Success: 1, TCPFailure: 1, TimeoutFailure: 1}},
		{func() { c.ReportFailure(addr, false) }, "unhealthy", Counters{}},
		{func() { c.ReportFailure(addr, false) }, "unhealthy", Counters{}},
		{func() { c.ReportSuccess(addr) }, "mostly_unhealthy", Counters{Success: 1}},
		{func() {
			for range 4 {
				c.ReportSuccess(addr)
			}
		}, "healthy", Counters{}},
	}
	for i, s := range steps {
		s.do()
		st := c.Status()[0]
		if st.Status != s.status || st.Counters != s.counter || st.Healthy != (s.status == "healthy" || s.status == "mostly_healthy") {
			t.Fatalf("step %d: %+v, want %s %+v", i, st, s.status, s.counter)
		}
	}
	// Seven timeouts make it unhealthy.
	for i := range 7 {
		if !c.Healthy(addr) {
			t.Fatalf("unhealthy after %d timeouts", i)
		}
		c.ReportFailure(addr, true)
	}
	if c.Healthy(addr) {
		t.Fatal("healthy after 7 timeouts")
	}
	// Unknown nodes and a nil checker are healthy.
	var nilc *Checker
	if !c.Healthy("127.0.0.1:1") || !nilc.Healthy(addr) || nilc.Status() != nil {
		t.Fatal("unknown node or nil checker unhealthy")
	}
	nilc.ReportFailure(addr, false)
}

func TestStatusJSON(t *testing.T) {
	c := newChecker(t, `{"active":{"type":"tcp"}}`, "127.0.0.1:1995", "[::1]:1996", "127.0.0.1:1995")
	b, err := json.Marshal(c.Status())
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"hostname":"127.0.0.1","ip":"127.0.0.1","port":1995,"status":"healthy","counter":{"success":0,"tcp_failure":0,"timeout_failure":0,"http_failure":0}},` +
		`{"hostname":"::1","ip":"::1","port":1996,"status":"healthy","counter":{"success":0,"tcp_failure":0,"timeout_failure":0,"http_failure":0}}]`
	if string(b) != want {
		t.Fatalf("status JSON\n%s\nwant\n%s", b, want)
	}
	if c.Type() != "tcp" || c.Config().Type != "tcp" {
		t.Fatalf("Type = %q", c.Type())
	}
}

func TestIPv6AndPortOverride(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatalf("IPv6 loopback: %v", err)
	}
	ln.Close()
	up := listen(t, "tcp", "[::1]:0", closeAtOnce)
	port := up.Addr().(*net.TCPAddr).Port
	// The node's own port is closed; the check port is open.
	node := "[::1]:" + fmt.Sprint(closedAddr(t)[len("127.0.0.1:"):])
	c := newChecker(t, fmt.Sprintf(`{"active":{"type":"tcp","port":%d,"healthy":{"interval":0.02},"unhealthy":{"interval":0.02}}}`, port), node)
	c.Start()
	waitFor(t, "a probe", func() bool { return c.Status()[0].IP == "::1" && c.Status()[0].Port != port })
	if !c.Healthy(node) {
		t.Fatalf("%+v", c.Status())
	}
}

func TestConcurrencyBound(t *testing.T) {
	var cur, peak atomic.Int32
	slow := func(c net.Conn) {
		n := cur.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		cur.Add(-1)
	}
	var addrs []string
	var accepted atomic.Int32
	for range 6 {
		addrs = append(addrs, listen(t, "tcp", "127.0.0.1:0", func(c net.Conn) {
			accepted.Add(1)
			slow(c)
		}).Addr().String())
	}
	// http probes hold the connection until the server closes it.
	c := newChecker(t, `{"active":{"type":"http","concurrency":2,"healthy":{"interval":0.01}}}`, addrs...)
	c.Start()
	waitFor(t, "18 probes", func() bool { return accepted.Load() >= 18 })
	c.Stop()
	if p := peak.Load(); p > 2 {
		t.Fatalf("%d probes at once, want at most 2", p)
	}
}

func TestStopCutsProbesShort(t *testing.T) {
	var accepted atomic.Int32
	silent := listen(t, "tcp", "127.0.0.1:0", func(c net.Conn) {
		accepted.Add(1)
		_, _ = io.Copy(io.Discard, c)
	}).Addr().String()
	c, err := NewChecker(checks(t, `{"active":{"type":"http","timeout":60}}`), []string{silent}, "1", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Start()
	waitFor(t, "a probe in flight", func() bool { return accepted.Load() > 0 })
	done := make(chan struct{})
	go func() {
		c.Stop()
		close(done)
	}()
	// The probe would wait 60 s; Stop must not.
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Stop waited for the probe timeout")
	}
	if got := c.Status()[0].Counters; got != (Counters{}) {
		t.Fatalf("the cancelled probe was counted: %+v", got)
	}
	// Again, and Start after Stop: no effect, no hang.
	c.Stop()
	c.Start()
	c.Stop()
}

// TestTransitionLog: a change of health is logged as "upstream <id> node
// <addr> unhealthy: <why>" at WARN and "... healthy: <why>" at INFO, with
// what the probe saw.
func TestTransitionLog(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	srv := &httpServer{}
	srv.status.Store("HTTP/1.1 500 Oops")
	httpAddr := listen(t, "tcp", "127.0.0.1:0", srv.handle).Addr().String()
	down := closedAddr(t)
	c, err := NewChecker(checks(t, `{"active":`+withFastIntervals(t, `{}`)+`}`), []string{httpAddr, down}, "7", zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	c.Start()
	logged := func(level zapcore.Level, msg string) bool {
		return logs.FilterLevelExact(level).FilterMessage(msg).Len() > 0
	}
	waitFor(t, "both unhealthy", func() bool {
		return logged(zap.WarnLevel, "upstream 7 node "+down+" unhealthy: connect refused") &&
			logged(zap.WarnLevel, "upstream 7 node "+httpAddr+" unhealthy: http status 500")
	})
	srv.status.Store("HTTP/1.1 200 OK")
	waitFor(t, "healthy again", func() bool {
		return logged(zap.InfoLevel, "upstream 7 node "+httpAddr+" healthy: http status 200")
	})
}
