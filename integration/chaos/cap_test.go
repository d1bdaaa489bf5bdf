//go:build linux

package chaos

import (
	"context"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// The cap gateway's stream_proxy.tcp_max_connections, and how many
// connections beyond it each round opens.
const (
	capConns  = 32
	capExtras = 8
)

// refusedRe finds apisix_stream_sessions_refused_total's samples in a
// /metrics text: the reason and the value.
var refusedRe = regexp.MustCompile(`(?m)^apisix_stream_sessions_refused_total\{reason="([a-z_]+)"\} (\S+)$`)

// refusedOf reads apisix_stream_sessions_refused_total{reason=reason}
// from the Caddy admin endpoint at admin; -1 when it cannot.
func refusedOf(admin, reason string) float64 {
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get("http://" + admin + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return -1
	}
	for _, m := range refusedRe.FindAllSubmatch(b, -1) {
		if string(m[1]) == reason {
			if v, err := strconv.ParseFloat(string(m[2]), 64); err == nil {
				return v
			}
		}
	}
	return -1
}

// refusedWarns counts the WARNs of refusals for reason in a gateway's
// log.
func refusedWarns(log, reason string) int64 {
	n := int64(0)
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "session refused: limit reached") && strings.Contains(line, `"reason":"`+reason+`"`) {
			n++
		}
	}
	return n
}

// capLoop exercises the cap gateway's TCP session cap (capConns) every
// few seconds until ctx ends: it opens capConns connections and holds
// them, each served (echo), then capExtras more at once, each of which
// must be closed without a byte back while the refusal counter grows by
// exactly capExtras; then it closes the held ones and waits (at most
// 10 s) until a new connection is served again.
func capLoop(ctx context.Context, c *counters, p *e2e.Proc, admin, addr string) {
	for ctx.Err() == nil {
		c.capRounds.Add(1)
		var held []net.Conn
		for range capConns {
			conn, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				c.capHeldFailed.Add(1)
				continue
			}
			held = append(held, conn)
			if echoOnce(conn) {
				c.capHeld.Add(1)
			} else {
				c.capHeldFailed.Add(1)
			}
		}
		before := refusedOf(admin, "tcp_max_connections")
		results := make(chan int, capExtras) // 0 closed, 1 served, 2 left open
		for range capExtras {
			go func() { results <- refusedOnce(addr) }()
		}
		for range capExtras {
			switch <-results {
			case 0:
				c.capRefused.Add(1)
			case 1:
				c.capServed.Add(1)
			default:
				c.capHung.Add(1)
			}
		}
		refusalsCounted(before, refusedOf(admin, "tcp_max_connections"), &c.capMetric, &c.capMetricWrong)
		for _, conn := range held {
			conn.Close()
		}
		if !servedAgain(p, 50*time.Millisecond, func() bool {
			conn, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				return false
			}
			defer conn.Close()
			return echoOnce(conn)
		}) {
			c.capNotRecovered.Add(1)
		}
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
	c.capWarns.Store(refusedWarns(p.Output(), "tcp_max_connections"))
}

// refusedOnce opens a connection beyond the cap: 0 when the gateway
// closed it without a byte back (refused), 1 when it was served, 2 when
// it stayed open for 3 s.
func refusedOnce(addr string) int {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		// not served either (a loopback dial does not fail while the
		// listener is up)
		return 0
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	_, _ = conn.Write([]byte("ping-0123456789"))
	var b [16]byte
	n, err := conn.Read(b[:])
	switch {
	case n > 0:
		return 1
	case isTimeout(err):
		return 2
	case err != nil:
		return 0 // EOF or reset: closed at once
	}
	return 2
}

// udpCapLoop exercises the cap gateway's UDP session cap per listener
// (udp_max_sessions capConns) every few seconds until ctx ends: capConns
// sockets with their own source ports each open a session (a datagram
// echoed), then capExtras more each send one datagram, which must get no
// answer while refused_total{udp_max_sessions} grows by exactly
// capExtras; then the held sessions expire (the route's read timeout)
// and a new source must be served again within 10 s. The cap
// gateway's UDP route ends a session 3 s after its last datagram.
func udpCapLoop(ctx context.Context, c *counters, p *e2e.Proc, admin, addr string) {
	dial := func() net.Conn {
		conn, err := net.Dial("udp", addr)
		if err != nil {
			return nil
		}
		return conn
	}
	for ctx.Err() == nil {
		c.udpCapRounds.Add(1)
		var held []net.Conn
		for range capConns {
			conn := dial()
			if conn == nil {
				c.udpCapHeldFailed.Add(1)
				continue
			}
			held = append(held, conn)
			if udpEchoOnce(conn, time.Second) {
				c.udpCapHeld.Add(1)
			} else {
				c.udpCapHeldFailed.Add(1)
			}
		}
		before := refusedOf(admin, "udp_max_sessions")
		// all at once, well within the held sessions' 3 s
		answered := make(chan bool, capExtras)
		for range capExtras {
			go func() {
				conn := dial()
				if conn == nil {
					answered <- false
					return
				}
				defer conn.Close()
				answered <- udpEchoOnce(conn, 500*time.Millisecond)
			}()
		}
		for range capExtras {
			if <-answered {
				c.udpCapServed.Add(1)
			} else {
				c.udpCapRefused.Add(1)
			}
		}
		refusalsCounted(before, refusedOf(admin, "udp_max_sessions"), &c.udpCapMetric, &c.udpCapMetricWrong)
		for _, conn := range held {
			conn.Close()
		}
		if !servedAgain(p, 200*time.Millisecond, func() bool {
			conn := dial()
			if conn == nil {
				return false
			}
			defer conn.Close()
			return udpEchoOnce(conn, 200*time.Millisecond)
		}) {
			c.udpCapNotRecovered.Add(1)
		}
		// until the session that answered has expired too, so that the
		// next round finds every slot free
		select {
		case <-ctx.Done():
		case <-time.After(4 * time.Second):
		}
	}
	c.udpCapWarns.Store(refusedWarns(p.Output(), "udp_max_sessions"))
}

// udpEchoOnce sends one datagram on conn and reports whether it came back
// within wait.
func udpEchoOnce(conn net.Conn, wait time.Duration) bool {
	msg := []byte("udp-cap-0123456")
	if _, err := conn.Write(msg); err != nil {
		return false
	}
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	var b [64]byte
	n, err := conn.Read(b[:])
	return err == nil && string(b[:n]) == string(msg)
}

// servedAgain tries served every pause until it succeeds, for at most
// 10 s while the gateway p runs.
func servedAgain(p *e2e.Proc, pause time.Duration, served func() bool) bool {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && !p.Exited(); time.Sleep(pause) {
		if served() {
			return true
		}
	}
	return false
}

// refusalsCounted adds the growth of a refusal counter read before and
// after a round to growth, and counts the round in wrong when the counter
// could not be read or did not grow by exactly capExtras.
func refusalsCounted(before, after float64, growth, wrong *atomic.Int64) {
	if before >= 0 && after >= 0 {
		growth.Add(int64(after - before))
	}
	if before < 0 || after < 0 || after-before != capExtras {
		wrong.Add(1)
	}
}
