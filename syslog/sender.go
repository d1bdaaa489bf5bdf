package syslog

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// The socket logger's retries (lua-resty-logger-socket max_retry_times
// and retry_interval, which APISIX leaves at their defaults).
const (
	sendRetries   = 3
	retryInterval = 100 * time.Millisecond
)

// maxDatagram is the largest UDP payload over IPv4.
const maxDatagram = 65507

var errBufferFull = errors.New("logger buffer is full, this log message will be dropped")

// sender is the socket logger APISIX's syslog plugin sends batches
// through (resty.logger.socket): messages are buffered until flush_limit
// bytes are waiting, then sent; a message that would take the buffer past
// drop_limit is refused. One connection is kept open between flushes.
//
// Over TCP (and TLS) the buffered messages are written back to back, each
// ending in "\n". Over UDP every message is its own datagram (RFC 5426),
// where the Lua library would send the whole buffer as one.
//
// A sender is used by one goroutine only.
type sender struct {
	cfg  *Config
	addr string
	stop <-chan struct{} // cuts retry waits short

	buf  [][]byte
	size int
	conn net.Conn

	st     *counters
	errorf func(format string, args ...any)
}

// log buffers msgs (one batch) and flushes when the buffer reaches the
// flush limit. It fails only when the batch does not fit under the drop
// limit, even after a flush.
func (s *sender) log(msgs [][]byte) error {
	n := 0
	for _, m := range msgs {
		n += len(m)
	}
	if n+s.size < s.cfg.FlushLimit {
		s.add(msgs, n)
		return nil
	}
	if n+s.size > s.cfg.DropLimit {
		s.flush()
		if n+s.size > s.cfg.DropLimit {
			return errBufferFull
		}
	}
	s.add(msgs, n)
	if s.size >= s.cfg.FlushLimit {
		s.flush()
	}
	return nil
}

func (s *sender) add(msgs [][]byte, n int) {
	s.buf = append(s.buf, msgs...)
	s.size += n
}

// flush sends the buffer, trying again sendRetries times a retryInterval
// apart; what could not be sent stays buffered for the next flush.
func (s *sender) flush() {
	for attempt := 0; len(s.buf) > 0; attempt++ {
		err := s.send()
		if err == nil {
			return
		}
		s.closeConn()
		if attempt == sendRetries {
			s.st.flushErrors.Add(1)
			s.errorf("failed to send log messages to %s after %d retries: %v", s.addr, sendRetries, err)
			return
		}
		select {
		case <-s.stop:
			s.st.flushErrors.Add(1)
			return
		case <-time.After(retryInterval):
		}
	}
}

// send writes the whole buffer on the connection, dialling it first.
func (s *sender) send() error {
	if s.conn != nil && s.cfg.Network == "tcp" && peerClosed(s.conn) {
		s.closeConn()
	}
	if s.conn == nil {
		c, err := s.dial()
		if err != nil {
			return err
		}
		s.conn = c
	}
	if err := s.conn.SetWriteDeadline(time.Now().Add(s.cfg.Timeout)); err != nil {
		return err
	}
	if s.cfg.Network == "udp" {
		for len(s.buf) > 0 {
			m := s.buf[0]
			if len(m) > maxDatagram {
				s.st.dropped.Add(1)
				s.errorf("dropped a log message of %d bytes: too long for a UDP datagram", len(m))
			} else if _, err := s.conn.Write(m); err != nil {
				return err
			} else {
				s.st.sent.Add(1)
			}
			s.size -= len(m)
			s.buf[0] = nil
			s.buf = s.buf[1:]
		}
		s.buf = nil
		return nil
	}
	bufs := net.Buffers(append([][]byte(nil), s.buf...))
	if _, err := bufs.WriteTo(s.conn); err != nil {
		return err
	}
	s.st.sent.Add(int64(len(s.buf)))
	s.buf, s.size = nil, 0
	return nil
}

func (s *sender) dial() (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
	defer cancel()
	if s.cfg.TLS && s.cfg.Network == "tcp" {
		conf := &tls.Config{}
		if s.cfg.TLSConfig != nil {
			conf = s.cfg.TLSConfig.Clone()
		}
		if conf.ServerName == "" {
			conf.ServerName = s.cfg.Host
		}
		d := &tls.Dialer{Config: conf}
		return d.DialContext(ctx, "tcp", s.addr)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, s.cfg.Network, s.addr)
	if err != nil {
		return nil, fmt.Errorf("failed to connect to the log server: %w", err)
	}
	return c, nil
}

func (s *sender) closeConn() {
	if s.conn != nil {
		_ = s.conn.Close()
		s.conn = nil
	}
}

func joinHostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}
