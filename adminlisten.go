package stream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
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
		return nil, fmt.Errorf("admin_listen: %v", err)
	}
	if na.PortRangeSize() != 1 {
		return nil, fmt.Errorf("admin_listen: want exactly one address, got %s", s)
	}
	if na.IsFdNetwork() || (na.Network != "tcp" && na.Network != "tcp4" && na.Network != "tcp6" && !na.IsUnixNetwork()) {
		return nil, fmt.Errorf("admin_listen: want a TCP address or a unix socket, got %s", s)
	}
	return &na, nil
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
func startAdminServer(na caddy.NetworkAddress, logger *zap.Logger, metrics *prometheus.Registry) (*adminServer, error) {
	l, err := na.Listen(context.Background(), 0, net.ListenConfig{})
	if err != nil {
		return nil, fmt.Errorf("admin_listen %s: %v", na, err)
	}
	ln, ok := l.(net.Listener)
	if !ok {
		_ = closeAny(l)
		return nil, fmt.Errorf("admin_listen %s: not a stream listener", na)
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
	if metrics != nil {
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
		Handler:           mux,
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
	logger.Info("admin_listen serving the APISIX Admin API", zap.String("address", na.String()))
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
