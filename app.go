package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/caddy-apisix/stream/adminapi"
	"github.com/caddy-apisix/stream/datacrypt"
	"github.com/caddy-apisix/stream/etcdstore"
	"github.com/caddy-apisix/stream/listen"
	"github.com/caddy-apisix/stream/live"
	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/proxy"
	"github.com/caddy-apisix/stream/rawsock"
	"github.com/caddy-apisix/stream/registry"
	"github.com/caddy-apisix/stream/router"
	"github.com/caddy-apisix/stream/standalone"
)

func init() {
	caddy.RegisterModule(new(App))
}

// App is the apisix app: APISIX's stream proxy inside Caddy. It listens on
// the stream_proxy addresses, serves the live stream routes, upstreams and
// SSL objects, and holds the settings of the Admin API.
type App struct {
	// StreamProxy lists the TCP and UDP listen addresses, as APISIX's
	// apisix.stream_proxy. Absent, stream mode is off and the Admin API
	// refuses every stream_routes call.
	StreamProxy *StreamProxy `json:"stream_proxy,omitempty"`

	// AdminKey are the Admin API keys, as APISIX's
	// deployment.admin.admin_key. None means no key check.
	AdminKey []AdminKey `json:"admin_key,omitempty"`

	// AdminListen is an address ("0.0.0.0:9180", ":9180", a unix socket)
	// on which the APISIX Admin API, the control API and the dashboard are
	// served on their own, behind admin_key and allow_admin, as APISIX's
	// deployment.admin.admin_listen. Caddy's own admin routes are not
	// served there. Default: none, the Admin API rides on Caddy's admin
	// endpoint, which must stay on loopback.
	AdminListen string `json:"admin_listen,omitempty"`

	// AdminTLS serves admin_listen over HTTPS with a certificate and key
	// from PEM files, as APISIX's deployment.admin.https_admin with
	// admin_api_mtls.admin_ssl_cert and admin_ssl_cert_key. Default:
	// plain HTTP.
	AdminTLS *AdminTLS `json:"admin_tls,omitempty"`

	// AdminOrigins are the origins ("host:port" or
	// "https://host:port") whose pages may send state-changing requests
	// (PUT, POST, PATCH, DELETE) to admin_listen from a browser, as
	// Caddy's admin.origins. A browser request from any other origin is
	// refused with 403; the dashboard served on admin_listen itself is
	// always allowed when reached by an IP address or localhost, and
	// needs its name listed here when reached by a DNS name. Clients
	// that are not browsers (curl, SDKs) are not affected.
	AdminOrigins []string `json:"admin_origins,omitempty"`

	// AllowAdmin are the IPs and CIDRs allowed to use the Admin API.
	// Default: 127.0.0.0/24 and ::1.
	AllowAdmin []string `json:"allow_admin,omitempty"`

	// FallbackSNI is the SNI assumed when a client sends none
	// (apisix.ssl.fallback_sni): for the certificate, route sni matching
	// and the SNI sent to TLS upstreams.
	FallbackSNI string `json:"fallback_sni,omitempty"`

	// AccessLog writes one line per ended TCP connection to the
	// apisix.access logger: client and local address, route, upstream
	// node, status (200, 502, 503), bytes each way and duration. Off by
	// default, as APISIX's stream access log.
	AccessLog bool `json:"access_log,omitempty"`

	// Role is APISIX's deployment.role: "traditional" (default: Admin
	// API and stream listeners), "control_plane" (Admin API, no stream
	// listeners) or "data_plane" (stream listeners; the Admin API is
	// read-only and etcd is never written).
	Role string `json:"role,omitempty"`

	// ConfigProvider says where objects live: "embedded" (Caddy storage;
	// the default without etcd), "etcd" (the default with etcd), "yaml"
	// or "json" (a standalone document, config_file).
	ConfigProvider string `json:"config_provider,omitempty"`

	// ConfigFile is the standalone document of the yaml and json
	// providers. Default: apisix.yaml (or apisix.json) in Caddy's config
	// directory.
	ConfigFile string `json:"config_file,omitempty"`

	// Etcd is APISIX's deployment.etcd: objects live in etcd under
	// APISIX's key layout, shared by every node that watches it.
	Etcd *etcdstore.Config `json:"etcd,omitempty"`

	// DataEncryption is APISIX's apisix.data_encryption: the keyring
	// that encrypts SSL private keys and upstream client keys at rest, in
	// etcd and in the embedded store alike. Default: APISIX's keyring.
	DataEncryption *datacrypt.Config `json:"data_encryption,omitempty"`

	// StreamRoutes, Upstreams, SSLs and Services are static objects, each
	// with its own "id", like APISIX's standalone apisix.yaml: served,
	// listed by the Admin API, and read-only there.
	StreamRoutes []json.RawMessage `json:"stream_routes,omitempty"`
	Upstreams    []json.RawMessage `json:"upstreams,omitempty"`
	SSLs         []json.RawMessage `json:"ssls,omitempty"`
	Services     []json.RawMessage `json:"services,omitempty"`

	static      []*registry.Object
	deploy      deployment
	listeners   []listenSpec
	admin       *adminapi.Config
	adminListen *caddy.NetworkAddress
	adminOpts   adminListenOptions
	storage     storageRef
	logger      *zap.Logger

	mu      sync.Mutex
	running bool
	prev    *App
	// watcher is the file watcher of a file-driven data plane, guarded
	// by the activation lock (live.WithActivation): the live app's runs, the others are stopped.
	watcher *standalone.Watcher
	tcp     []net.Listener
	tcpOpts []proxy.ListenerOptions
	udp     []*net.UDPConn
	udpSrv  []*proxy.UDPServer
	// unhold let go of the runtime's record of each bound listener
	// (Runtime.HoldListener), whose series go when none serves them
	unhold   []func()
	adminSrv *adminServer
	// metrics is the config's metrics registry, also served by
	// admin_listen at /metrics
	metrics *prometheus.Registry
}

// StreamProxy is the stream_proxy block.
type StreamProxy struct {
	// TCP entries: a port (all interfaces, IPv4 and IPv6), "ip:port",
	// "[v6]:port", a range "2000-2005", or an object {addr, tls,
	// tls_passthrough, proxy_protocol, proxy_protocol_to_upstream}.
	TCP []listen.Entry `json:"tcp,omitempty"`
	// UDP entries: a port, "ip:port", "[v6]:port" or a range.
	UDP []listen.Entry `json:"udp,omitempty"`

	// UDPMaxSessions caps the live sessions of each UDP listener (each
	// address a udp entry expands to); a datagram from a new client
	// beyond it is dropped. Default 0: no cap per listener.
	UDPMaxSessions int `json:"udp_max_sessions,omitempty"`
	// UDPMaxSessionsTotal caps the live UDP sessions of the process, over
	// every listener and the layer4 servers' apisix handlers. Default 0:
	// no cap.
	UDPMaxSessionsTotal int `json:"udp_max_sessions_total,omitempty"`
	// UDPUnansweredTimeout is the idle timeout of a UDP session whose
	// upstream has not answered yet; once it has, the upstream's idle
	// timeout applies. Sources that send one datagram and never again
	// (a spoofed sweep) then hold their socket this long, not 10
	// minutes. Default 5s.
	UDPUnansweredTimeout caddy.Duration `json:"udp_unanswered_timeout,omitempty"`
	// TCPMaxConnections caps the concurrent TCP sessions of the process
	// (stream_proxy listeners and the layer4 handlers); a connection
	// beyond it is closed at once. Default 0: no cap.
	TCPMaxConnections int `json:"tcp_max_connections,omitempty"`
	// FDReserve is the number of file descriptors kept free for
	// accept(2), upstream connections and the admin endpoint: a new UDP
	// session is refused while fewer are free. RLIMIT_NOFILE is raised to
	// its hard limit at start. Default: 256, at most a quarter of
	// RLIMIT_NOFILE; -1 turns the reserve off.
	FDReserve int `json:"fd_reserve,omitempty"`
	// TCPCopy is how a plain TCP connection's bytes are moved (neither
	// side TLS), on Linux: "buffer" reads into and writes from a pooled
	// 32 KiB buffer, "splice" moves them with splice(2) through a pooled
	// pipe without copying them through user space, and "auto" measures
	// both once per process, in the background when the config starts,
	// and takes the one that cost the whole pipeline (sender, proxy,
	// receiver) less CPU per byte; it logs both figures and its choice,
	// and copies through the buffer until then (open connections switch
	// at their next chunk). Which one wins
	// depends on the CPU: splice on the AMD EPYC of
	// docs/performance-run-amd.md, buffer on the Intel Xeon of
	// docs/performance-run-intel.md (docs/performance.md, changes 14 and
	// 15). Connections with TLS on either side, and every connection on
	// other systems, use the buffered copy whatever the value. Default
	// "auto".
	TCPCopy string `json:"tcp_copy,omitempty"`
}

// limits are the stream_proxy session limits for the data path.
func (sp *StreamProxy) limits() proxy.Limits {
	if sp == nil {
		return proxy.Limits{}
	}
	return proxy.Limits{
		UDPSessionsPerListener: sp.UDPMaxSessions,
		UDPSessionsTotal:       sp.UDPMaxSessionsTotal,
		UDPUnansweredTimeout:   time.Duration(sp.UDPUnansweredTimeout),
		TCPConnections:         sp.TCPMaxConnections,
		FDReserve:              sp.FDReserve,
	}
}

// copyMode is stream_proxy.tcp_copy for the data path (checked at
// provision: an unknown value never gets here).
func (sp *StreamProxy) copyMode() proxy.CopyMode {
	if sp == nil {
		return proxy.CopyAuto
	}
	m, _ := proxy.ParseCopyMode(sp.TCPCopy)
	return m
}

// AdminKey is one Admin API key.
type AdminKey struct {
	// Name names the key in logs.
	Name string `json:"name,omitempty"`
	// Key is the secret sent as X-API-KEY, ?api_key= or the x_api_key
	// cookie. It is never logged. It may be (or contain) a placeholder,
	// {env.NAME} or {file./path/to/key} (trailing newline dropped),
	// resolved when the config loads, so that Caddy's /config/ shows the
	// placeholder and never the key.
	Key string `json:"key"`
	// Role is "admin" (everything) or "viewer" (GET only).
	Role string `json:"role,omitempty"`
}

type listenSpec struct {
	network string // "tcp" or "udp"
	addr    listen.Address
	opts    proxy.ListenerOptions
}

// CaddyModule returns the Caddy module information.
func (*App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "apisix",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision parses and validates the config. It binds nothing and changes
// no global state: it also runs for caddy validate and caddy adapt.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	live.ProtectDefaultLog()
	if err := a.provisionDeployment(ctx); err != nil {
		return err
	}
	if err := a.provisionListeners(ctx); err != nil {
		return err
	}
	if err := a.provisionAdminAccess(ctx); err != nil {
		return err
	}
	cfg := &adminapi.Config{StreamEnabled: a.StreamProxy != nil, FallbackSNI: a.FallbackSNI}
	cfg.Listeners, cfg.LocalNets = a.routeListeners(ctx)
	repl := caddy.NewReplacer()
	for i, k := range a.AdminKey {
		if k.Key == "" {
			return fmt.Errorf("admin_key[%d] (%s): empty key", i, k.Name)
		}
		switch k.Role {
		case "", "admin", "viewer":
		default:
			return fmt.Errorf("admin_key[%d] (%s): role must be admin or viewer, got %q", i, k.Name, k.Role)
		}
		key, err := resolveKey(repl, k.Key)
		if err != nil {
			return fmt.Errorf("admin_key[%d] (%s): %w", i, k.Name, err)
		}
		cfg.Keys = append(cfg.Keys, adminapi.Key{Name: k.Name, Key: key, Role: k.Role})
	}
	for _, s := range a.AllowAdmin {
		p, err := router.ParsePrefix(s)
		if err != nil || !p.IsValid() { // "" parses as "no filter"
			return fmt.Errorf("allow_admin: %q is not an IP or CIDR", s)
		}
		cfg.AllowAdmin = append(cfg.AllowAdmin, p)
	}
	if a.Etcd != nil {
		cfg.KeyPrefix = a.Etcd.Prefix
		cfg.StoreBody = true // APISIX's values; readers apply the defaults
	}
	a.admin = cfg
	a.provisionStandalone()
	static, err := staticObjects(a.Upstreams, a.SSLs, a.Services, a.StreamRoutes)
	if err != nil {
		return err
	}
	a.static = static
	a.storage = storageRef{ctx.Storage(), caddy.AppDataDir()}
	// served by Caddy's admin endpoint and admin_listen at /metrics
	a.metrics = ctx.GetMetricsRegistry()
	if err := live.Runtime().RegisterMetrics(a.metrics); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	if err := live.StoreMetrics().Register(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	if a.Etcd != nil {
		if err := live.EtcdMetrics().Register(ctx.GetMetricsRegistry()); err != nil {
			return fmt.Errorf("registering metrics: %w", err)
		}
	}
	return nil
}

// provisionAdminAccess parses admin_listen and refuses a Caddy admin
// endpoint beyond loopback (adminaccess.go).
func (a *App) provisionAdminAccess(ctx caddy.Context) error {
	if a.AdminListen != "" {
		na, err := parseAdminListen(a.AdminListen)
		if err != nil {
			return err
		}
		a.adminListen = na
		if a.AdminTLS != nil {
			if a.adminOpts.tls, err = a.AdminTLS.config(); err != nil {
				return err
			}
		}
		if a.adminOpts.origins, err = parseOrigins(a.AdminOrigins); err != nil {
			return err
		}
	} else if a.AdminTLS != nil || len(a.AdminOrigins) > 0 {
		return fmt.Errorf("admin_tls and admin_origins apply to admin_listen, which is not set")
	}
	cfg, err := loadedConfig(ctx)
	if err != nil {
		return err
	}
	return checkAdminAccess(cfg, a.adminListen)
}

// resolveKey expands the {env.*} and {file.*} placeholders of an admin key
// with Caddy's replacer. A placeholder that is unset or empty (a missing
// variable, a missing or empty file) is an error: it would silently turn
// into a shorter key.
func resolveKey(repl *caddy.Replacer, key string) (string, error) {
	if !strings.Contains(key, "{") {
		return key, nil
	}
	out, err := repl.ReplaceOrErr(key, true, true)
	if err != nil {
		return "", fmt.Errorf("%w (an unset environment variable, or a missing or empty file)", err)
	}
	return out, nil
}

func (a *App) provisionListeners(ctx caddy.Context) error {
	if a.StreamProxy == nil {
		return nil
	}
	sp := a.StreamProxy
	for _, f := range []struct {
		name string
		v    int
		min  int
	}{{"udp_max_sessions", sp.UDPMaxSessions, 0}, {"udp_max_sessions_total", sp.UDPMaxSessionsTotal, 0},
		{"tcp_max_connections", sp.TCPMaxConnections, 0}, {"fd_reserve", sp.FDReserve, -1}} {
		if f.v < f.min {
			return fmt.Errorf("stream_proxy.%s: must be >= %d, got %d", f.name, f.min, f.v)
		}
	}
	if _, err := proxy.ParseCopyMode(sp.TCPCopy); err != nil {
		return fmt.Errorf("stream_proxy.tcp_copy: %w", err)
	}
	if sp.UDPUnansweredTimeout < 0 {
		return fmt.Errorf("stream_proxy.udp_unanswered_timeout: must not be negative, got %s", time.Duration(sp.UDPUnansweredTimeout))
	}
	seen := map[string]string{}
	add := func(network string, i int, e listen.Entry) error {
		if network == "udp" && e.HasOptions() {
			return fmt.Errorf("invalid stream_proxy.udp entry: options are for tcp entries only: %s", e.Addr)
		}
		addrs, err := e.Expand()
		if err != nil {
			return fmt.Errorf("invalid stream_proxy.%s entry: %w", network, err)
		}
		for _, ad := range addrs {
			key := network + "/" + ad.String()
			if prev, dup := seen[key]; dup {
				return fmt.Errorf("invalid stream_proxy.%s entry: %s listed twice (%s)", network, ad, prev)
			}
			seen[key] = e.Addr
			a.listeners = append(a.listeners, listenSpec{network: network, addr: ad, opts: e.Options})
		}
		return nil
	}
	for i, e := range a.StreamProxy.TCP {
		if err := add("tcp", i, e); err != nil {
			return err
		}
	}
	for i, e := range a.StreamProxy.UDP {
		if err := add("udp", i, e); err != nil {
			return err
		}
	}
	return a.checkLayer4Conflicts(ctx)
}

// checkLayer4Conflicts refuses addresses that a layer4 server of the same
// config listens on too.
func (a *App) checkLayer4Conflicts(ctx caddy.Context) error {
	used := layer4Addresses(ctx)
	for _, l := range a.listeners {
		for _, u := range used {
			if u.network != l.network || u.port != l.addr.Port {
				continue
			}
			if u.host == "" || l.addr.Host == "" || u.host == l.addr.Host {
				return fmt.Errorf("invalid stream_proxy.%s entry: %s is already used by layer4 server %q (%s)", l.network, l.addr, u.server, u.raw)
			}
		}
	}
	return nil
}

// Start binds the listeners, then publishes the objects and settings.
func (a *App) Start() error {
	rt := live.Runtime()
	// the descriptor limit is raised before binding; the logger and the
	// session limits become the runtime's in activate, which puts the
	// running config's back when this one fails or its reload is undone
	rawsock.RaiseNofile()
	if err := a.bind(); err != nil {
		a.closeListeners()
		return err
	}
	if a.adminListen != nil {
		opts := a.adminOpts
		opts.metrics = a.metrics
		srv, err := startAdminServer(*a.adminListen, opts, a.logger.Named("admin_listen"))
		if err != nil {
			a.closeListeners()
			return err
		}
		a.adminSrv = srv
	}
	if err := activate(a); err != nil {
		a.closeListeners()
		return err
	}
	if len(a.admin.Keys) == 0 {
		a.logger.Warn("no admin_key configured: the Admin API does not check keys; set admin_key to protect it")
	}
	for i, ln := range a.tcp {
		opts := a.tcpOpts[i]
		go func() { _ = rt.ServeTCP(ln, opts) }()
	}
	for i, s := range a.udpSrv {
		addr := a.udp[i].LocalAddr().String()
		go func() {
			// Serve returns on Stop (the socket closed) or when the
			// socket fails for good, which must not pass silently
			if err := s.Serve(); err != nil && !errors.Is(err, net.ErrClosed) {
				a.logger.Error("udp listener stopped serving", zap.String("listen", addr), zap.Error(err))
			}
		}()
	}
	a.logger.Info("apisix stream proxy started", zap.Int("tcp", len(a.tcp)), zap.Int("udp", len(a.udp)),
		zap.Strings("listen", a.boundAddrs()))
	a.warnRoutes()
	return nil
}

// Stop closes the listeners; established connections are left alone.
func (a *App) Stop() error {
	a.closeListeners()
	deactivate(a)
	return nil
}

func (a *App) bind() error {
	if a.deploy.role == roleControlPlane {
		// APISIX's control plane serves no traffic
		if len(a.listeners) > 0 {
			a.logger.Info("role control_plane: stream_proxy listeners are not bound")
		}
		return nil
	}
	// no TCP keepalive on accepted connections, as nginx (and APISIX) by
	// default: it costs four setsockopt calls per connection
	lc := net.ListenConfig{Control: reusePort, KeepAlive: -1}
	for _, l := range a.listeners {
		// a bare port has Host "": Go then binds [::] with IPv4 mapped in,
		// so it serves all IPv4 and IPv6 interfaces
		switch l.network {
		case "tcp":
			ln, err := lc.Listen(context.Background(), "tcp", l.addr.String())
			if err != nil {
				return fmt.Errorf("stream_proxy.tcp %s: %w", l.addr, err)
			}
			a.tcp = append(a.tcp, ln)
			a.tcpOpts = append(a.tcpOpts, l.opts)
			a.unhold = append(a.unhold, live.Runtime().HoldListener(ln.Addr()))
		case "udp":
			pc, err := lc.ListenPacket(context.Background(), "udp", l.addr.String())
			if err != nil {
				return fmt.Errorf("stream_proxy.udp %s: %w", l.addr, err)
			}
			uc := pc.(*net.UDPConn)
			srv, err := live.Runtime().NewUDPServer(uc)
			if err != nil {
				_ = uc.Close()
				return fmt.Errorf("stream_proxy.udp %s: %w", l.addr, err)
			}
			a.udp = append(a.udp, uc)
			a.udpSrv = append(a.udpSrv, srv)
			a.unhold = append(a.unhold, live.Runtime().HoldListener(uc.LocalAddr()))
		}
	}
	return nil
}

func (a *App) closeListeners() {
	for _, ln := range a.tcp {
		_ = ln.Close()
	}
	for i, pc := range a.udp {
		_ = pc.Close()
		if i < len(a.udpSrv) {
			a.udpSrv[i].Close()
		}
	}
	if a.adminSrv != nil {
		a.adminSrv.stop()
	}
	// after the close: no new session comes from these listeners
	for _, release := range a.unhold {
		release()
	}
	a.tcp, a.tcpOpts, a.udp, a.udpSrv, a.adminSrv, a.unhold = nil, nil, nil, nil, nil, nil
}

// staticObjects validates the config's objects as the Admin API would and
// turns them into registry objects.
func staticObjects(upstreams, ssls, services, routes []json.RawMessage) ([]*registry.Object, error) {
	var out []*registry.Object
	ids := map[model.Kind]map[string]bool{}
	sslTypes := map[string]string{}
	refs := model.Refs{
		UpstreamExists: func(id string) bool { return ids[model.Upstreams][id] },
		ServiceExists:  func(id string) bool { return ids[model.Services][id] },
		SSLType: func(id string) (string, bool) {
			t, ok := sslTypes[id]
			return t, ok
		},
	}
	add := func(kind model.Kind, i int, raw json.RawMessage) error {
		obj, err := model.DecodeObject(raw)
		if err != nil {
			return fmt.Errorf("%s[%d]: invalid JSON: %w", kind, i, err)
		}
		id := model.IDString(obj["id"])
		if id == "" {
			return fmt.Errorf("%s[%d]: missing %s id", kind, i, kind.Noun())
		}
		err = model.Check(kind, obj, refs)
		if err == nil && kind == model.SSLs {
			t, _ := obj["type"].(string)
			if t == "" {
				t = "server"
			}
			sslTypes[id] = t
		}
		if err != nil {
			return fmt.Errorf("%s[%d] (id %s): %w", kind, i, id, err)
		}
		if ids[kind] == nil {
			ids[kind] = map[string]bool{}
		}
		if ids[kind][id] {
			return fmt.Errorf("%s[%d]: duplicate id %s", kind, i, id)
		}
		ids[kind][id] = true
		out = append(out, &registry.Object{Kind: kind, ID: id, Value: raw})
		return nil
	}
	for _, group := range []struct {
		kind model.Kind
		list []json.RawMessage
	}{{model.SSLs, ssls}, {model.Upstreams, upstreams}, {model.Services, services}, {model.StreamRoutes, routes}} {
		for i, raw := range group.list {
			if err := add(group.kind, i, raw); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// Interface guards
var (
	_ caddy.App         = (*App)(nil)
	_ caddy.Provisioner = (*App)(nil)
)
