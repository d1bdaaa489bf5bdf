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
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// The cap gateway's stream_proxy.tcp_max_connections, and how many
// connections beyond it each round opens.
const (
	capConns  = 32
	capExtras = 8
)

// refusedTCPRe finds the tcp_max_connections refusals in a /metrics text.
var refusedTCPRe = regexp.MustCompile(`(?m)^apisix_stream_sessions_refused_total\{reason="tcp_max_connections"\} (\S+)$`)

// refusedTCP reads apisix_stream_sessions_refused_total{reason="tcp_max_connections"}
// from the Caddy admin endpoint at admin; -1 when it cannot.
func refusedTCP(admin string) float64 {
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
	m := refusedTCPRe.FindSubmatch(b)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		return -1
	}
	return v
}

// refusedWarns counts the WARNs of tcp_max_connections refusals in a
// gateway's log.
func refusedWarns(log string) int64 {
	n := int64(0)
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "session refused: limit reached") && strings.Contains(line, "tcp_max_connections") {
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
		before := refusedTCP(admin)
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
		after := refusedTCP(admin)
		if before >= 0 && after >= 0 {
			c.capMetric.Add(int64(after - before))
		}
		if before < 0 || after < 0 || after-before != capExtras {
			c.capMetricWrong.Add(1)
		}
		for _, conn := range held {
			conn.Close()
		}
		recovered := false
		deadline := time.Now().Add(10 * time.Second)
		for !recovered && time.Now().Before(deadline) && !p.Exited() {
			if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				recovered = echoOnce(conn)
				conn.Close()
			}
			if !recovered {
				time.Sleep(50 * time.Millisecond)
			}
		}
		if !recovered {
			c.capNotRecovered.Add(1)
		}
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
	c.capWarns.Store(refusedWarns(p.Output()))
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
