package proxy

import (
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// udpBlackhole reads datagrams and never answers.
func udpBlackhole(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, maxDatagram)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	return pc.LocalAddr().String()
}

// testUDPServer serves one UDP listener of rt on 127.0.0.1.
func testUDPServer(t *testing.T, rt *Runtime) (*UDPServer, string) {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := rt.NewUDPServer(pc)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve() }()
	t.Cleanup(func() { pc.Close(); srv.Close() })
	return srv, pc.LocalAddr().String()
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestUDPSessionCaps(t *testing.T) {
	tests := []struct {
		name   string
		limits Limits
		reason string
	}{
		{"per listener", Limits{UDPSessionsPerListener: 2}, refusedUDPListener},
		{"total", Limits{UDPSessionsTotal: 2}, refusedUDPTotal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hole := udpBlackhole(t)
			rt, _ := newTestRuntime(t, map[string]string{"1": `{"upstream":{"nodes":{"` + hole + `":1}}}`}, nil)
			rt.SetLimits(tt.limits)
			srv, addr := testUDPServer(t, rt)
			before := testutil.ToFloat64(rt.metrics.refused(tt.reason))
			for i := range 5 {
				c, err := net.Dial("udp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if _, err := c.Write([]byte("x")); err != nil {
					t.Fatal(err)
				}
				want := min(i+1, 2)
				waitFor(t, "the session count", func() bool { return srv.Sessions() == want })
			}
			waitFor(t, "the refusals", func() bool { return testutil.ToFloat64(rt.metrics.refused(tt.reason))-before == 3 })
			if srv.Sessions() != 2 {
				t.Fatalf("%d sessions, want the cap 2", srv.Sessions())
			}
		})
	}
}

// A session whose upstream never answered ends after the unanswered
// timeout; one that was answered keeps the upstream's idle timeout.
func TestUDPUnansweredTimeout(t *testing.T) {
	if portableUDP {
		t.Skip("the portable UDP server has no unanswered timeout (README: Platforms)")
	}
	hole, echo := udpBlackhole(t), udpEcho(t, "E:")
	rt, reg := newTestRuntime(t, nil, nil)
	rt.SetLimits(Limits{UDPUnansweredTimeout: 200 * time.Millisecond})
	holeSrv, holeAddr := testUDPServer(t, rt)
	echoSrv, echoAddr := testUDPServer(t, rt)
	putAll(t, reg, nil, map[string]string{
		"hole": fmt.Sprintf(`{"server_port":%d,"upstream":{"nodes":{%q:1}}}`, holeSrv.local.Port(), hole),
		"echo": fmt.Sprintf(`{"server_port":%d,"upstream":{"nodes":{%q:1}}}`, echoSrv.local.Port(), echo),
	})
	hc, err := net.Dial("udp", holeAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	if _, err := hc.Write([]byte("anyone?")); err != nil {
		t.Fatal(err)
	}
	ec, err := net.Dial("udp", echoAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	if got, err := udpAsk(t, ec, []byte("ping")); err != nil || string(got) != "E:ping" {
		t.Fatalf("echo session: %q %v", got, err)
	}
	waitFor(t, "the unanswered session's end", func() bool { return holeSrv.Sessions() == 0 })
	// the answered session outlived the unanswered one, quiet as long
	if n := echoSrv.Sessions(); n != 1 {
		t.Fatalf("answered sessions: %d, want 1", n)
	}
}

func TestTCPConnectionCap(t *testing.T) {
	be := benchTCPServer(t, benchEcho)
	rt, _ := newTestRuntime(t, map[string]string{"1": `{"upstream":{"nodes":{"` + be + `":1}}}`}, nil)
	rt.SetLimits(Limits{TCPConnections: 1})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() { _ = rt.ServeTCP(ln, ListenerOptions{}) }()
	before := testutil.ToFloat64(rt.metrics.refused(refusedTCP))

	first, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	buf := make([]byte, 4)
	_ = first.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := first.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(first, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("first connection: %q %v", buf, err)
	}
	second, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	_ = second.SetDeadline(time.Now().Add(5 * time.Second))
	if n, err := second.Read(buf); err == nil {
		t.Fatalf("second connection over the cap read %d bytes, want it closed", n)
	}
	if got := testutil.ToFloat64(rt.metrics.refused(refusedTCP)) - before; got != 1 {
		t.Fatalf("refused counter +%v, want +1", got)
	}
	first.Close()
	waitFor(t, "the first session's end", func() bool { return rt.limits.tcpLive.Load() == 0 })
	third, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	_ = third.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := third.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(third, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("connection after the first ended: %q %v", buf, err)
	}
}
