package health

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// probe runs one active check of t and returns what it observed, and
// why in a few words for the log ("connect refused", "http status
// 500"). It returns evNone when the checker is stopping.
func (c *Checker) probe(ctx context.Context, t *target) (event, string) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	conn, err := c.dialer.DialContext(ctx, "tcp", t.probeAddr)
	if err != nil {
		return c.failure("connect", err)
	}
	defer conn.Close()
	if ip, _, err := net.SplitHostPort(conn.RemoteAddr().String()); err == nil {
		t.ip.Store(&ip)
	}
	if c.cfg.Type == "tcp" {
		return evSuccess, "connect succeeded"
	}
	// The deadline bounds the exchange; cancellation (Stop) cuts it short.
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if c.cfg.Type == "https" {
		tc := tls.Client(conn, &tls.Config{
			ServerName:         c.serverName(t),
			InsecureSkipVerify: !c.cfg.VerifyCertificate, // #nosec G402 -- https_verify_certificate: false
		})
		if err := tc.HandshakeContext(ctx); err != nil {
			return c.failure("tls handshake", err)
		}
		conn = tc
	}
	if _, err := conn.Write(c.request(t)); err != nil {
		return c.failure("send", err)
	}
	line, err := bufio.NewReaderSize(conn, 512).ReadSlice('\n')
	if err != nil {
		return c.failure("receive", err)
	}
	status, err := parseStatusLine(string(line))
	if err != nil {
		c.log.Debug("health check: bad response", zapAddr(t), zapErr(err))
		return evTCPFailure, "bad response"
	}
	return c.cfg.classify(status), "http status " + strconv.Itoa(status)
}

// failure classifies the error of a probe's step op ("connect", "send"
// ...) and names it: "connect refused", "receive timeout", "tls handshake
// failed: <error>". Nothing is counted while stopping.
func (c *Checker) failure(op string, err error) (event, string) {
	if c.ctx.Err() != nil {
		return evNone, ""
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout()):
		return evTimeout, op + " timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return evTCPFailure, op + " refused"
	case errors.Is(err, syscall.ECONNRESET):
		return evTCPFailure, op + " reset"
	}
	return evTCPFailure, op + " failed: " + err.Error()
}

// hostHeader is the Host of http(s) probes: active.host, else the node's
// host.
func (c *Checker) hostHeader(t *target) string {
	if c.cfg.Host != "" {
		return c.cfg.Host
	}
	if strings.Contains(t.host, ":") {
		return "[" + t.host + "]"
	}
	return t.host
}

// serverName is the SNI of https probes; IP addresses send none.
func (c *Checker) serverName(t *target) string {
	h := c.cfg.Host
	if h == "" {
		h = t.host
	}
	if net.ParseIP(h) != nil {
		return ""
	}
	return h
}

// request is lua-resty-healthcheck's probe: GET <path> HTTP/1.0, the extra
// headers, then Host.
func (c *Checker) request(t *target) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.0\r\n", c.cfg.HTTPPath)
	for _, h := range c.cfg.ReqHeaders {
		b.WriteString(h)
		b.WriteString("\r\n")
	}
	fmt.Fprintf(&b, "Host: %s\r\n\r\n", c.hostHeader(t))
	return []byte(b.String())
}

// classify maps a probe status to an event: a healthy status is a
// success; an unhealthy one (by default, any other) an HTTP failure; a
// status in neither configured list is not counted.
func (c *Config) classify(status int) event {
	if len(c.HealthyStatuses) > 0 {
		if slices.Contains(c.HealthyStatuses, status) {
			return evSuccess
		}
	} else if status >= 200 && status < 400 {
		return evSuccess
	}
	if len(c.UnhealthyStatuses) == 0 || slices.Contains(c.UnhealthyStatuses, status) {
		return evHTTPFailure
	}
	return evNone
}

// parseStatusLine returns the status code of "HTTP/1.x NNN reason".
func parseStatusLine(line string) (int, error) {
	line = strings.TrimRight(line, "\r\n")
	proto, rest, ok := strings.Cut(line, " ")
	if !ok || !strings.HasPrefix(proto, "HTTP/") {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	code, _, _ := strings.Cut(rest, " ")
	if len(code) != 3 {
		return 0, fmt.Errorf("bad status code in %q", line)
	}
	n := 0
	for i := 0; i < 3; i++ {
		if code[i] < '0' || code[i] > '9' {
			return 0, fmt.Errorf("bad status code in %q", line)
		}
		n = n*10 + int(code[i]-'0')
	}
	if n < 100 {
		return 0, fmt.Errorf("bad status code in %q", line)
	}
	return n, nil
}
