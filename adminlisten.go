package stream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// Limits of the admin_listen server: those of Caddy's own admin server
// (caddy admin.go replaceLocalAdminServer), so that a slow or oversized
// client is cut off the same way on either endpoint. Bodies are limited
// by the Admin API itself (adminapi.MaxBodySize, APISIX's 1.5 MiB).
const (
	adminReadTimeout       = 10 * time.Second
	adminReadHeaderTimeout = 5 * time.Second
	adminIdleTimeout       = 60 * time.Second
	adminMaxHeaderBytes    = 64 << 10
	// adminStopWait bounds how long Stop waits for requests in flight.
	adminStopWait = 5 * time.Second
)

// parseAdminListen parses the admin_listen address: one host:port (a
// bare ":port" listens on all interfaces) or a unix socket, as Caddy's
// own admin.listen.
func parseAdminListen(s string) (*caddy.NetworkAddress, error) {
	na, err := caddy.ParseNetworkAddress(caddy.NewReplacer().ReplaceKnown(s, ""))
	if err != nil {
		return nil, fmt.Errorf("admin_listen: %w", err)
	}
	if na.PortRangeSize() != 1 {
		return nil, fmt.Errorf("admin_listen: want exactly one address, got %s", s)
	}
	if na.IsFdNetwork() || (na.Network != "tcp" && na.Network != "tcp4" && na.Network != "tcp6" && !na.IsUnixNetwork()) {
		return nil, fmt.Errorf("admin_listen: want a TCP address or a unix socket, got %s", s)
	}
	return &na, nil
}

// AdminTLS is the certificate admin_listen serves HTTPS with, and the CAs
// of the client certificates it may require, as APISIX's
// deployment.admin.https_admin with admin_api_mtls.admin_ssl_cert,
// admin_ssl_cert_key and admin_ssl_ca_cert. The files are read when the
// config loads, so a reload picks up a renewed certificate; {env.*}
// placeholders expand.
type AdminTLS struct {
	// CertFile is the PEM certificate chain, leaf first.
	CertFile string `json:"cert_file"`
	// KeyFile is the PEM private key of the leaf certificate.
	KeyFile string `json:"key_file"`
	// CAFile, when set, is a PEM file of CA certificates, and every
	// client must present a certificate one of them signed (mutual TLS):
	// a client without one is refused in the handshake, before any
	// request, key or allow_admin check.
	CAFile string `json:"ca_file,omitempty"`
}

// config reads the key pair (and the client CAs) into a server TLS
// configuration (TLS 1.2 and later, Go's defaults otherwise).
func (t *AdminTLS) config() (*tls.Config, error) {
	if t.CertFile == "" || t.KeyFile == "" {
		return nil, errors.New("admin_tls: cert_file and key_file are both required")
	}
	repl := caddy.NewReplacer()
	certFile, keyFile := repl.ReplaceKnown(t.CertFile, ""), repl.ReplaceKnown(t.KeyFile, "")
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		// the error names the files, never the key's bytes
		return nil, fmt.Errorf("admin_tls: loading %s and %s: %w", certFile, keyFile, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		caFile := repl.ReplaceKnown(t.CAFile, "")
		pemBytes, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("admin_tls: ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("admin_tls: ca_file %s holds no PEM certificate", caFile)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// originCheck refuses state-changing browser requests that come from
// another origin (cross-site request forgery: a page elsewhere posting
// to the Admin API with the dashboard's x_api_key cookie), the way
// Caddy's admin endpoint checks its origins (caddy admin.go
// checkOrigin): a request that carries Origin or Sec-Fetch-Mode is a
// browser's, and its Origin (else Referer) must be allowed. Safe methods
// are not checked, so a link to the dashboard from elsewhere still
// opens it; clients that are not browsers send neither header.
type originCheck struct {
	// allowed are the admin_origins; a scheme-less one matches either
	// scheme
	allowed []*url.URL
}

// parseOrigins parses admin_origins: "host:port" or
// "scheme://host[:port]", as Caddy's admin.origins.
func parseOrigins(list []string) (originCheck, error) {
	var oc originCheck
	for _, o := range list {
		raw := o
		if !strings.Contains(raw, "://") {
			raw = "//" + raw
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil ||
			(u.Scheme != "" && u.Scheme != "http" && u.Scheme != "https") {
			return oc, fmt.Errorf("admin_origins: %q is not an origin (host:port or http[s]://host[:port])", o)
		}
		oc.allowed = append(oc.allowed, u)
	}
	return oc, nil
}

// check returns why r is refused, or "".
func (oc originCheck) check(r *http.Request) string {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return ""
	}
	_, hasOrigin := r.Header["Origin"]
	_, hasFetch := r.Header["Sec-Fetch-Mode"]
	if !hasOrigin && !hasFetch {
		return ""
	}
	raw := r.Header.Get("Origin")
	if raw == "" {
		raw = r.Header.Get("Referer")
	}
	u, err := url.Parse(raw)
	if raw == "" || raw == "null" || err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "required Origin header is missing or invalid"
	}
	if oc.sameOrigin(u, r) {
		return ""
	}
	for _, a := range oc.allowed {
		if (a.Scheme == "" || a.Scheme == u.Scheme) && strings.EqualFold(a.Host, u.Host) {
			return ""
		}
	}
	return fmt.Sprintf("client is not allowed to access from origin '%s'", raw)
}

// sameOrigin reports whether origin is the one r was sent to, reached by
// an IP address or localhost. A page served under a DNS name is same
// origin by this test too, but that name may have been rebound to this
// address by an attacker (DNS rebinding), so names must be listed in
// admin_origins.
func (oc originCheck) sameOrigin(origin *url.URL, r *http.Request) bool {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if origin.Scheme != scheme || !strings.EqualFold(origin.Host, r.Host) {
		return false
	}
	host := origin.Hostname()
	if strings.EqualFold(host, "localhost") {
		return true
	}
	_, err := netip.ParseAddr(host)
	return err == nil
}

// wrap refuses what check refuses, with 403 and APISIX's error body.
func (oc originCheck) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if msg := oc.check(r); msg != "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_ = json.NewEncoder(w).Encode(map[string]string{"error_msg": msg})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// adminListenOptions are what admin_listen serves with.
type adminListenOptions struct {
	// tls, when not nil, serves HTTPS
	tls     *tls.Config
	origins originCheck
	// metrics, when not nil, is served at /metrics
	metrics *prometheus.Registry
}

// adminServer serves the routes of the admin.api.apisix module (the
// APISIX Admin API, the control API, the dashboard) on admin_listen, and
// the config's metrics at /metrics (as APISIX's prometheus export server
// does on its own port: without the admin key, to allow_admin clients),
// and nothing else: Caddy's
// /config/, /load and /debug/ answer 404 there.
type adminServer struct {
	srv *http.Server
	ln  net.Listener
}

// startAdminServer listens on na and serves the module's routes. The
// listener comes from Caddy's listener pool, so a reload that keeps the
// address hands it over without a gap.
func startAdminServer(na caddy.NetworkAddress, opts adminListenOptions, logger *zap.Logger) (*adminServer, error) {
	l, err := na.Listen(context.Background(), 0, net.ListenConfig{})
	if err != nil {
		return nil, fmt.Errorf("admin_listen %s: %w", na, err)
	}
	ln, ok := l.(net.Listener)
	if !ok {
		_ = closeAny(l)
		return nil, fmt.Errorf("admin_listen %s: not a stream listener", na)
	}
	if opts.tls != nil {
		ln = tls.NewListener(ln, opts.tls)
	}
	api := &AdminAPI{logger: logger}
	mux := http.NewServeMux()
	for _, route := range api.Routes() {
		h := route.Handler
		mux.Handle(route.Pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := h.ServeHTTP(w, r); err != nil {
				// the module writes its own answers; this is a bug guard
				logger.Error("admin request failed", zap.String("path", r.URL.Path), zap.Error(err))
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}))
	}
	if metrics := opts.metrics; metrics != nil {
		// keyless, as a scraper sends no X-API-KEY, but for allow_admin
		// clients only, as the control API
		mh := promhttp.HandlerFor(metrics, promhttp.HandlerOpts{ErrorLog: zap.NewStdLog(logger)})
		mux.Handle("/metrics", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if controlRequest(w, r) {
				mh.ServeHTTP(w, r)
			}
		}))
	}
	s := &adminServer{ln: ln, srv: &http.Server{
		Handler:           opts.origins.wrap(mux),
		ReadTimeout:       adminReadTimeout,
		ReadHeaderTimeout: adminReadHeaderTimeout,
		IdleTimeout:       adminIdleTimeout,
		MaxHeaderBytes:    adminMaxHeaderBytes,
		ErrorLog:          zap.NewStdLog(logger),
	}}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("admin_listen server stopped", zap.Error(err))
		}
	}()
	logger.Info("admin_listen serving the APISIX Admin API", zap.String("address", na.String()), zap.Bool("tls", opts.tls != nil))
	return s, nil
}

// stop lets requests in flight finish (bounded by adminStopWait) and
// releases the listener.
func (s *adminServer) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), adminStopWait)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
	}
	_ = s.ln.Close()
}

func closeAny(v any) error {
	if c, ok := v.(interface{ Close() error }); ok {
		return c.Close()
	}
	return nil
}
