package live

import (
	"sync"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-apisix/stream/logredact"
)

// Caddy's admin server logs every request at INFO (logger admin.api,
// "received request") with its uri and headers, through Caddy's default
// logger and before any admin module sees the request. It blanks Cookie
// and Authorization, not X-API-KEY or ?api_key= (caddy admin.go
// adminHandler.ServeHTTP, internal/logmarshalers.go). No config option
// changes that, so the plugin wraps the default logger's core with
// logredact.Core. Each config load builds a new default logger (caddy
// logging.go setupNewDefault) before it provisions admin modules and
// apps, and both the admin module and the app call ProtectDefaultLog in
// Provision: the wrapper is on before the new admin endpoint serves.

// protectMu serialises the wrapping of the process-wide default logger.
var protectMu sync.Mutex

// ProtectDefaultLog wraps Caddy's current default logger with
// logredact.Core, once. caddy.BufferedLog and caddy.UnbufferDefaultLogger
// are the exported way to swap the default logger's zap.Logger: the first
// returns the current one, the second installs a replacement (and flushes
// whatever was logged in between into it).
func ProtectDefaultLog() {
	protectMu.Lock()
	defer protectMu.Unlock()
	if logredact.IsWrapped(caddy.Log().Core()) {
		return
	}
	_, cur, _ := caddy.BufferedLog()
	caddy.UnbufferDefaultLogger(cur.WithOptions(zap.WrapCore(logredact.Core)))
}
