// Package syslog is the client of APISIX's syslog logger plugin
// (apisix/stream/plugins/syslog.lua, apisix/plugins/syslog/init.lua): log
// entries encoded as JSON, framed as RFC 5424, collected by a batch
// processor (apisix/utils/batch-processor.lua) and sent over TCP, UDP or
// TLS through a buffering socket logger (resty.logger.socket).
//
// Logging never waits on the network: entries go to a bounded backlog
// that one goroutine per Client drains, and entries past the backlog's
// limit are dropped and counted. A syslog server that is down, slow or
// blackholed costs the caller nothing but those drops.
package syslog

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Config is one logger's configuration; New fills in the zero fields with
// APISIX's defaults.
type Config struct {
	// Network is "tcp" (default) or "udp": the plugin's sock_type.
	Network string
	// Host and Port are the syslog server's address.
	Host string
	Port int
	// TLS sends over TLS (TCP only), verifying the server's certificate
	// for Host. TLSConfig, if not nil, is the base configuration (roots,
	// server name).
	TLS       bool
	TLSConfig *tls.Config
	// Timeout bounds each connect and each write (default 3s).
	Timeout time.Duration
	// FlushLimit is the number of buffered bytes that makes the socket
	// logger send (default 4096); DropLimit the most it buffers (default
	// 1 MiB) while the server cannot be reached.
	FlushLimit int
	DropLimit  int
	// BatchMaxSize is the most entries in one batch (default 1000).
	BatchMaxSize int
	// InactiveTimeout sends a batch once no entry came for that long
	// (default 5s); BufferDuration once its oldest entry is that old
	// (default 60s), checked every InactiveTimeout.
	InactiveTimeout time.Duration
	BufferDuration  time.Duration
	// MaxRetryCount is how many times a batch the socket logger refused
	// is offered again, RetryDelay apart (defaults 0 and 1s).
	MaxRetryCount int
	RetryDelay    time.Duration
	// MaxPendingEntries bounds the entries waiting to be sent (default
	// 8192, batch-processor-manager.lua's max_pending_entries); past it
	// new entries are dropped.
	MaxPendingEntries int
	// Name names the batch processor in error messages (the plugin's
	// name field, default "stream sys logger").
	Name string
	// Hostname, AppName and PID fill the RFC 5424 header; APISIX sends
	// the host variable (none in stream: "-"), "apisix" and the worker's
	// pid (default: this process's).
	Hostname string
	AppName  string
	PID      int
	// Errorf, if not nil, receives the logger's errors (a failed flush,
	// drops, at most one drop report per second).
	Errorf func(format string, args ...any)
}

// setDefaults fills in APISIX's defaults.
func (c *Config) setDefaults() {
	setInt := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	setDur := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	if c.Network == "" {
		c.Network = "tcp"
	}
	setDur(&c.Timeout, 3*time.Second)
	setInt(&c.FlushLimit, 4096)
	setInt(&c.DropLimit, 1048576)
	setInt(&c.BatchMaxSize, 1000)
	setDur(&c.InactiveTimeout, 5*time.Second)
	setDur(&c.BufferDuration, 60*time.Second)
	setInt(&c.MaxPendingEntries, 8192)
	if c.Name == "" {
		c.Name = "stream sys logger"
	}
	if c.AppName == "" {
		c.AppName = "apisix"
	}
	setInt(&c.PID, os.Getpid())
}

// Stats are a Client's counters since New.
type Stats struct {
	// Logged is the entries Log accepted into the backlog.
	Logged int64
	// Sent is the messages written to the server's socket.
	Sent int64
	// Dropped is the entries lost: backlog full, socket logger buffer
	// full after the retries, too long for a datagram, or pending at
	// shutdown.
	Dropped int64
	// FlushErrors is the flushes that failed after their retries.
	FlushErrors int64
}

type counters struct {
	logged, sent, dropped, flushErrors atomic.Int64
}

// Client sends log entries to one syslog server. Its methods may be
// called from any goroutine.
type Client struct {
	cfg Config
	st  counters

	mu         sync.Mutex
	cur        [][]byte // the batch being filled
	firstT     time.Time
	lastT      time.Time
	ready      [][][]byte // full batches waiting for the worker
	pending    int        // entries in cur, ready and the worker's hands
	closed     bool
	lastReport time.Time // of the last drop report
	maxPending int       // Config.MaxPendingEntries, or SetMaxPendingEntries's

	wake chan struct{}
	stop chan struct{}
	done chan struct{}
}

// New starts a Client. It dials nothing yet: the first flush does.
func New(cfg Config) (*Client, error) {
	cfg.setDefaults()
	switch {
	case cfg.Network != "tcp" && cfg.Network != "udp":
		return nil, fmt.Errorf("syslog: sock_type must be tcp or udp, not %q", cfg.Network)
	case cfg.Host == "" || cfg.Port <= 0 || cfg.Port > 65535:
		return nil, fmt.Errorf("syslog: bad server address %q port %d", cfg.Host, cfg.Port)
	case cfg.FlushLimit >= cfg.DropLimit:
		// resty.logger.socket init's check
		return nil, errors.New(`syslog: "flush_limit" should be < "drop_limit"`)
	}
	c := &Client{
		cfg:        cfg,
		maxPending: cfg.MaxPendingEntries,
		wake:       make(chan struct{}, 1),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	s := &sender{cfg: &c.cfg, addr: joinHostPort(cfg.Host, cfg.Port), stop: c.stop, st: &c.st, errorf: c.errorf}
	go c.run(s)
	return c, nil
}

// Log queues one entry: entry is encoded as JSON and framed as an RFC
// 5424 message now, sent later. It never blocks on the network; an entry
// that finds the backlog full is dropped and counted.
func (c *Client) Log(entry any) error {
	js, err := encodeJSON(entry)
	if err != nil {
		return fmt.Errorf("error occurred while encoding the data: %w", err)
	}
	msg := AppendRFC5424(make([]byte, 0, len(js)+64), FacilitySyslog, SeverityInfo, time.Now(),
		c.cfg.Hostname, c.cfg.AppName, c.cfg.PID, js)
	c.push(msg)
	return nil
}

func (c *Client) push(msg []byte) {
	now := time.Now()
	c.mu.Lock()
	if c.closed || c.pending >= c.maxPending {
		c.mu.Unlock()
		c.st.dropped.Add(1)
		c.reportDrop("max pending entries limit exceeded. discarding entry.")
		return
	}
	if len(c.cur) == 0 {
		c.firstT = now
	}
	c.lastT = now
	c.cur = append(c.cur, msg)
	c.pending++
	if len(c.cur) >= c.cfg.BatchMaxSize {
		c.ready = append(c.ready, c.cur)
		c.cur = nil
	}
	c.mu.Unlock()
	c.st.logged.Add(1)
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// SetMaxPendingEntries changes the backlog's bound (plugin_metadata's
// max_pending_entries, which can change at runtime); n < 1 restores the
// configured one.
func (c *Client) SetMaxPendingEntries(n int) {
	if n < 1 {
		n = c.cfg.MaxPendingEntries
	}
	c.mu.Lock()
	c.maxPending = n
	c.mu.Unlock()
}

// Stats returns the counters.
func (c *Client) Stats() Stats {
	return Stats{
		Logged:      c.st.logged.Load(),
		Sent:        c.st.sent.Load(),
		Dropped:     c.st.dropped.Load(),
		FlushErrors: c.st.flushErrors.Load(),
	}
}

// Close stops the Client without waiting: what is pending gets one last
// attempt to be sent (each connect and write bounded by Timeout), then
// the connection closes and Done is closed. Entries logged after Close
// are dropped.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		close(c.stop)
	}
}

// Done is closed when a closed Client has finished.
func (c *Client) Done() <-chan struct{} { return c.done }

func (c *Client) errorf(format string, args ...any) {
	if c.cfg.Errorf != nil {
		c.cfg.Errorf(format, args...)
	}
}

// reportDrop reports drops at most once a second, as
// batch-processor-manager.lua report_discard does.
func (c *Client) reportDrop(what string) {
	if c.cfg.Errorf == nil {
		return
	}
	now := time.Now()
	c.mu.Lock()
	due := now.Sub(c.lastReport) >= time.Second
	if due {
		c.lastReport = now
	}
	c.mu.Unlock()
	if due {
		c.errorf("%s dropped entries so far: %d, server %s", what, c.st.dropped.Load(), joinHostPort(c.cfg.Host, c.cfg.Port))
	}
}
