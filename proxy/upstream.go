package proxy

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-apisix/stream/balancer"
	"github.com/caddy-apisix/stream/health"
	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/plugin"
	"github.com/caddy-apisix/stream/tlsx"
)

// Upstream is a compiled upstream, shared by every snapshot in which its
// definition is unchanged, so balancer state and health survive changes
// elsewhere.
type Upstream struct {
	key string
	raw []byte
	// deps identifies the versions of the objects the upstream uses
	// besides its own JSON (the SSL object of tls.client_cert_id): a
	// rotated client certificate must not be served from a reused
	// upstream.
	deps string
	// clientCertID is tls.client_cert_id, what deps names
	clientCertID string

	Nodes []balancer.Node
	// hostNames is true when a node is a host name, resolved when dialled.
	hostNames bool
	// hashed is true for chash, the only balancer that reads the
	// connection's variables.
	hashed bool
	// sessions resumes TLS sessions with the nodes (scheme tls).
	sessions       tls.ClientSessionCache
	balancer       balancer.Balancer
	checker        *health.Checker
	retries        int
	retryTimeout   time.Duration
	connectTimeout time.Duration
	idleTimeout    time.Duration
	tls            bool
	tlsVerify      bool
	clientCert     *tls.Certificate
	// static is the route of layer4.handlers.apisix_proxy's sessions.
	static *Route
	// staticMetrics holds static's series until Close
	staticMetrics *streamMetrics
	closeOnce     sync.Once
	// nodeSet is Nodes by address, built on first use (hasNode)
	nodeSet     map[string]struct{}
	nodeSetOnce sync.Once
}

// hasNode reports whether addr is one of the upstream's nodes. The set
// is built once per compiled upstream, when a route using it is first
// scoped, so a route write does not cost its upstream's node count.
func (u *Upstream) hasNode(addr string) bool {
	u.nodeSetOnce.Do(func() {
		u.nodeSet = make(map[string]struct{}, len(u.Nodes))
		for _, n := range u.Nodes {
			u.nodeSet[n.Addr] = struct{}{}
		}
	})
	_, ok := u.nodeSet[addr]
	return ok
}

// ID names the upstream in logs: the upstream object's id, or the key of
// an inline upstream (stream_routes/<id>, services/<id>, the route and
// plugin of a traffic-split upstream, static for layer4.handlers.apisix_proxy).
func (u *Upstream) ID() string {
	if id, ok := strings.CutPrefix(u.key, "upstreams/"); ok {
		return id
	}
	return u.key
}

// StreamUpstream marks *Upstream as a plugin.Upstream.
func (u *Upstream) StreamUpstream() {}

// Defaults of nginx's stream proxy, which APISIX does not override.
const (
	defaultConnectTimeout = 60 * time.Second
	defaultIdleTimeout    = 10 * time.Minute
)

func (c *compiler) upstream(key string, u *model.Upstream, raw []byte) (*Upstream, error) {
	if cur, ok := c.next[key]; ok {
		return cur, nil
	}
	deps := c.depsOf(u)
	if old := c.prev[key]; old != nil && bytes.Equal(old.raw, raw) && old.deps == deps {
		c.next[key] = old
		return old, nil
	}
	cu := &Upstream{
		key:            key,
		raw:            raw,
		deps:           deps,
		clientCertID:   certID(u),
		connectTimeout: defaultConnectTimeout,
		idleTimeout:    defaultIdleTimeout,
		tls:            u.Scheme == "tls",
		hashed:         u.Type == "chash",
	}
	for _, n := range u.Nodes {
		cu.Nodes = append(cu.Nodes, balancer.Node{Addr: n.Addr(), Weight: n.Weight, Priority: n.Priority})
		if _, err := netip.ParseAddr(strings.Trim(n.Host, "[]")); err != nil {
			cu.hostNames = true
		}
	}
	cu.retries = len(cu.Nodes) - 1
	if u.Retries != nil {
		cu.retries = *u.Retries
	}
	cu.retryTimeout = seconds(u.RetryTimeout)
	if u.Timeout != nil {
		if u.Timeout.Connect > 0 {
			cu.connectTimeout = seconds(u.Timeout.Connect)
		}
		if idle := max(u.Timeout.Send, u.Timeout.Read); idle > 0 {
			cu.idleTimeout = seconds(idle)
		}
	}
	if cu.tls {
		cu.sessions = tls.NewLRUClientSessionCache(64)
	}
	if u.TLS != nil {
		cu.tlsVerify = u.TLS.Verify
		switch {
		case u.TLS.ClientCert != "":
			cert, err := tlsx.ParseKeyPair(u.TLS.ClientCert, u.TLS.ClientKey)
			if err != nil {
				return nil, fmt.Errorf("upstream %s: client certificate: %w", key, err)
			}
			cu.clientCert = &cert
		case u.TLS.ClientCertID != "":
			s := c.ssl[string(u.TLS.ClientCertID)]
			if s == nil {
				return nil, fmt.Errorf("upstream %s: ssl %s not found", key, u.TLS.ClientCertID)
			}
			cert, err := tlsx.ParseKeyPair(s.Cert, s.Key)
			if err != nil {
				return nil, fmt.Errorf("upstream %s: ssl %s: %w", key, u.TLS.ClientCertID, err)
			}
			cu.clientCert = &cert
		}
	}
	var h balancer.Health
	if u.Checks != nil && u.Checks.Active != nil {
		addrs := make([]string, len(cu.Nodes))
		for i, n := range cu.Nodes {
			addrs[i] = n.Addr
		}
		chk, err := health.NewChecker(u.Checks, addrs, cu.ID(), c.logger.Named("health").With(zap.String("upstream", cu.ID())))
		if err != nil {
			return nil, fmt.Errorf("upstream %s: checks: %w", key, err)
		}
		cu.checker = chk
		h = chk
		c.started = append(c.started, cu)
	}
	b, err := balancer.New(u.Type, u.HashOn, u.Key, cu.Nodes, h)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", key, err)
	}
	cu.balancer = b
	c.next[key] = cu
	return cu, nil
}

// depsOf names the versions of the objects u refers to.
func (c *compiler) depsOf(u *model.Upstream) string {
	return c.depsOfID(certID(u))
}

// depsOfID names the version of the SSL object id ("" for none).
func (c *compiler) depsOfID(id string) string {
	if id == "" {
		return ""
	}
	return fmt.Sprintf("ssl/%s@%d", id, c.sslRev[id])
}

func certID(u *model.Upstream) string {
	if u.TLS == nil {
		return ""
	}
	return string(u.TLS.ClientCertID)
}

func seconds(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

// StaticPrefix starts the route label of every
// layer4.handlers.apisix_proxy handler. No stream route id can hold its
// "/" (ids match ^[a-zA-Z0-9-_.]+$, model/schemadefs.go), and a route
// whose prefer_name name starts with it is labelled by its id: a handler
// and a route never share series, so cleaning up a handler never drops
// a route's.
const StaticPrefix = "apisix_proxy/"

// StaticLabel is the route label of a handler named name: name with
// StaticPrefix in front, unless it starts with it already.
func StaticLabel(name string) string {
	if strings.HasPrefix(name, StaticPrefix) {
		return name
	}
	return StaticPrefix + name
}

// NewStaticUpstream compiles an upstream outside any snapshot, for
// layer4.handlers.apisix_proxy: StaticLabel(name) is its route id and
// upstream id in the metrics and logs. Its health checks start now; Close
// stops them and, once no other handler uses that label, removes its
// series.
func (rt *Runtime) NewStaticUpstream(u *model.Upstream, raw []byte, name string, logger *zap.Logger) (*Upstream, error) {
	name = StaticLabel(name)
	c := &compiler{next: map[string]*Upstream{}, logger: logger, metrics: rt.metrics, ssl: map[string]*model.SSL{}}
	cu, err := c.upstream(name, u, raw)
	if err != nil {
		return nil, err
	}
	cu.static = &Route{ID: name, Upstream: cu, metrics: rt.metrics.holdStatic(name)}
	cu.staticMetrics = rt.metrics
	if cu.checker != nil {
		cu.checker.Start()
	}
	return cu, nil
}

// Close stops the upstream's health checks and lets its series go. It is
// safe to call more than once.
func (u *Upstream) Close() {
	u.closeOnce.Do(func() {
		if u.checker != nil {
			u.checker.Stop()
		}
		if u.static != nil {
			u.staticMetrics.releaseStatic(u.static.ID)
		}
	})
}

// Interface guards
var (
	_ plugin.Upstream = (*Upstream)(nil)
	_ balancer.Health = (*health.Checker)(nil)
)
