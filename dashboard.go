package stream

import (
	"net/http"

	"github.com/caddy-apisix/stream/adminapi"
	"github.com/caddy-apisix/stream/dashboard"
	"github.com/caddy-apisix/stream/live"
)

// serveDashboard serves the dashboard (package dashboard) with the
// running app's Admin API settings and overview facts.
func (a *AdminAPI) serveDashboard(w http.ResponseWriter, r *http.Request) error {
	// one read of the settings, as serve does: a request sees one config
	cfg := live.AdminConfig()
	dashboard.Handler{
		Config: func() *adminapi.Config { return cfg },
		Info:   dashboardInfo,
	}.ServeHTTP(w, r)
	return nil
}

// dashboardInfo is the overview of the live app: its listeners and store.
func dashboardInfo() dashboard.Info {
	var a *App
	live.WithActivation(func(st *live.Activation) { a = liveApp(st) })
	info := dashboard.Info{Store: dashboard.Store{Provider: "embedded", Status: "ok"}}
	if a == nil {
		info.Store.Status = adminapi.NotRunning
		return info
	}
	info.StreamEnabled = a.StreamProxy != nil
	for _, l := range a.listeners {
		info.Listeners = append(info.Listeners, dashboard.Listener{
			Network: l.network, Addr: l.addr.String(),
			TLS: l.opts.TLS, TLSPassthrough: l.opts.TLSPassthrough, ProxyProtocol: l.opts.ProxyProtocol,
		})
	}
	return info
}
