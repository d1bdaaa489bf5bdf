// Package health runs APISIX's upstream health checks (docs/apisix/upstreams.md#health-checks)
// for one upstream: active TCP or HTTP(S) probes of every node, passive
// reports from the proxy, and the lua-resty-healthcheck state machine
// that decides which nodes the balancer may pick.
//
// Unlike APISIX, which creates a checker on the first session through an
// upstream, the caller starts a Checker when the upstream is created, so
// probing begins before any traffic (docs/differences.md#health-checks-start-at-once).
package health

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-apisix/stream/model"
)

// Checker checks the nodes of one upstream. It is safe for concurrent use;
// a nil *Checker reports every node healthy.
type Checker struct {
	cfg     Config
	name    string // the upstream's id, for the log
	log     *zap.Logger
	targets []*target
	byAddr  map[string]*target
	dialer  net.Dialer
	sem     chan struct{}

	ctx       context.Context
	cancel    context.CancelFunc
	startOnce sync.Once
	wg        sync.WaitGroup
}

// target is one node under check.
type target struct {
	addr      string // as the balancer knows it
	host      string
	port      int
	probeAddr string
	state     atomic.Int32
	probing   atomic.Bool
	ip        atomic.Pointer[string] // peer IP of the last probe connect
	ctr       counters
}

// NodeStatus is one node in the control API (docs/apisix/upstreams.md#health-checks).
type NodeStatus struct {
	// Addr is the node address as given to NewChecker.
	Addr string `json:"-"`
	// Host is the node's host name or IP.
	Host string `json:"hostname"`
	// IP is the address the last probe connected to (Host before that).
	IP string `json:"ip"`
	// Port is the node's port.
	Port int `json:"port"`
	// Healthy tells whether the balancer may pick the node.
	Healthy bool `json:"-"`
	// Status is "healthy", "mostly_healthy", "mostly_unhealthy" or
	// "unhealthy".
	Status string `json:"status"`
	// Counters are the events counted since the last change of health.
	Counters Counters `json:"counter"`
}

// NewChecker validates checks and prepares the checks of the nodes at
// addrs (host:port, IPv6 bracketed) of the upstream name (its id, as the
// log lines name it). Nodes start healthy. logger may be nil.
func NewChecker(checks *model.HealthChecks, addrs []string, name string, logger *zap.Logger) (*Checker, error) {
	cfg, err := NewConfig(checks)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	c := &Checker{
		cfg:    cfg,
		name:   name,
		log:    logger,
		byAddr: make(map[string]*target, len(addrs)),
		sem:    make(chan struct{}, cfg.Concurrency),
	}
	for _, addr := range addrs {
		if c.byAddr[addr] != nil {
			continue
		}
		host, portStr, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("health check: invalid node address %q: %w", addr, err)
		}
		port, err := strconv.Atoi(portStr)
		if err != nil {
			return nil, fmt.Errorf("health check: invalid port in node address %q: %w", addr, err)
		}
		if port < 0 || port > 65535 {
			return nil, fmt.Errorf("health check: invalid port in node address %q", addr)
		}
		pp := port
		if cfg.Port != 0 {
			pp = cfg.Port
		}
		t := &target{addr: addr, host: host, port: port, probeAddr: net.JoinHostPort(host, strconv.Itoa(pp))}
		c.targets = append(c.targets, t)
		c.byAddr[addr] = t
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// Config is the checker's configuration with defaults filled in.
func (c *Checker) Config() Config { return c.cfg }

// Type is the active check type ("tcp", "http" or "https").
func (c *Checker) Type() string { return c.cfg.Type }

// Start begins probing every node at once, then every healthy.interval
// (healthy nodes) or unhealthy.interval (unhealthy ones). It does nothing
// after the first call or after Stop.
func (c *Checker) Start() {
	c.startOnce.Do(func() {
		if c.ctx.Err() != nil {
			return
		}
		c.wg.Add(2)
		go c.loop(true, c.cfg.HealthyInterval)
		go c.loop(false, c.cfg.UnhealthyInterval)
	})
}

// Stop ends probing and waits for every probe to return; probes in flight
// are cut short. It is safe to call more than once.
func (c *Checker) Stop() {
	c.startOnce.Do(func() {}) // a later Start must not begin
	c.cancel()
	c.wg.Wait()
}

// loop probes the nodes that are (up) or are not (!up) usable, one round
// per interval; a round waits for its probes, as lua-resty-healthcheck's.
func (c *Checker) loop(up bool, interval time.Duration) {
	defer c.wg.Done()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-timer.C:
		}
		c.round(up)
		timer.Reset(interval)
	}
}

func (c *Checker) round(up bool) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, t := range c.targets {
		if state(t.state.Load()).up() != up || !t.probing.CompareAndSwap(false, true) {
			continue
		}
		select {
		case c.sem <- struct{}{}:
		case <-c.ctx.Done():
			t.probing.Store(false)
			return
		}
		wg.Go(func() {
			defer func() {
				<-c.sem
				t.probing.Store(false)
			}()
			ev, why := c.probe(c.ctx, t)
			c.record(t, ev, c.activeLimit(ev), "active", why)
		})
	}
}

func (c *Checker) activeLimit(ev event) int {
	switch ev {
	case evSuccess:
		return c.cfg.HealthySuccesses
	case evTCPFailure:
		return c.cfg.UnhealthyTCPFailures
	case evTimeout:
		return c.cfg.UnhealthyTimeouts
	}
	return c.cfg.UnhealthyHTTPFailures
}

// record feeds ev into t's state machine and logs a change of health,
// why being what the event was: "upstream 3 node 127.0.0.1:5432
// unhealthy: connect refused" at WARN, "... healthy: connect succeeded"
// at INFO.
func (c *Checker) record(t *target, ev event, limit int, source, why string) {
	if ev == evNone {
		return
	}
	cur, next := t.ctr.record(&t.state, ev, limit)
	if next.up() != cur.up() {
		fields := []zap.Field{zapAddr(t), zap.String("status", next.String()), zap.String("by", source), zap.String("reason", why)}
		if next.up() {
			c.log.Info(fmt.Sprintf("upstream %s node %s healthy: %s", c.name, t.addr, why), fields...)
		} else {
			c.log.Warn(fmt.Sprintf("upstream %s node %s unhealthy: %s", c.name, t.addr, why), fields...)
		}
	}
}

// Healthy reports whether the node at addr may be picked. Unknown
// addresses are healthy. It implements balancer.Health without locking.
func (c *Checker) Healthy(addr string) bool {
	if c == nil {
		return true
	}
	t := c.byAddr[addr]
	return t == nil || state(t.state.Load()).up()
}

// ReportFailure is a passive report of a failed connect to addr (timeout
// true when it timed out). It counts only with `checks.passive`.
func (c *Checker) ReportFailure(addr string, timeout bool) {
	if c == nil || !c.cfg.Passive {
		return
	}
	if t := c.byAddr[addr]; t != nil {
		if timeout {
			c.record(t, evTimeout, c.cfg.PassiveTimeouts, "passive", "proxied connect timeout")
		} else {
			c.record(t, evTCPFailure, c.cfg.PassiveTCPFailures, "passive", "proxied connect failed")
		}
	}
}

// ReportSuccess is a passive report of a good session with addr. It
// counts only with `checks.passive`.
func (c *Checker) ReportSuccess(addr string) {
	if c == nil || !c.cfg.Passive {
		return
	}
	if t := c.byAddr[addr]; t != nil {
		c.record(t, evSuccess, c.cfg.PassiveSuccesses, "passive", "proxied session succeeded")
	}
}

// Status lists every node's health, in the order given to NewChecker.
func (c *Checker) Status() []NodeStatus {
	if c == nil {
		return nil
	}
	out := make([]NodeStatus, 0, len(c.targets))
	for _, t := range c.targets {
		ip := t.host
		if p := t.ip.Load(); p != nil {
			ip = *p
		}
		st := state(t.state.Load())
		out = append(out, NodeStatus{
			Addr:     t.addr,
			Host:     t.host,
			IP:       ip,
			Port:     t.port,
			Healthy:  st.up(),
			Status:   st.String(),
			Counters: t.ctr.get(),
		})
	}
	return out
}

func zapAddr(t *target) zap.Field { return zap.String("node", t.addr) }
func zapErr(err error) zap.Field  { return zap.Error(err) }
