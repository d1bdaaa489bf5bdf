package adminapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"net/netip"
)

// ClientAllowed applies allow_admin to the connection's peer address
// (APISIX does it with nginx allow/deny, so proxies in front are not
// looked through). A peer that is not an IP address, as on Caddy's
// unix-socket admin endpoint, is local and allowed: the socket's file
// permissions guard it. With no allow_admin, the APISIX default
// 127.0.0.0/24 (and ::1) applies.
func ClientAllowed(r *http.Request, cfg *Config) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return true
	}
	addr = addr.Unmap().WithZone("")
	nets := cfg.AllowAdmin
	if len(nets) == 0 {
		nets = defaultAllowAdmin
	}
	for _, p := range nets {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// requestKey finds the admin key in APISIX's order: the api_key query
// argument, the X-API-KEY header, the x_api_key cookie. A present but
// empty value counts as given (it is a wrong key, not a missing one).
func requestKey(r *http.Request) (string, bool) {
	if vs, ok := r.URL.Query()["api_key"]; ok {
		return vs[0], true
	}
	if vs := r.Header.Values("X-API-KEY"); len(vs) > 0 {
		return vs[0], true
	}
	if c, err := r.Cookie("x_api_key"); err == nil {
		return c.Value, true
	}
	return "", false
}

// checkToken returns "" when the request may proceed, else APISIX's
// reason: "missing apikey", "wrong apikey" or "invalid method for role
// viewer".
func checkToken(r *http.Request, cfg *Config) string {
	role, reason := KeyRole(r, cfg)
	if reason == "" && role == "viewer" && r.Method != http.MethodGet {
		return "invalid method for role viewer"
	}
	return reason
}

// KeyRole returns the role ("admin" or "viewer") of the request's admin
// key, or APISIX's reason when it has none: "missing apikey" or "wrong
// apikey". With no keys configured every request is "admin". Keys are
// compared in constant time through their SHA-256 digests, so neither the
// key nor its length leaks through timing.
func KeyRole(r *http.Request, cfg *Config) (role, reason string) {
	if len(cfg.Keys) == 0 {
		return "admin", ""
	}
	given, ok := requestKey(r)
	if !ok {
		return "", "missing apikey"
	}
	sum := sha256.Sum256([]byte(given))
	match := -1
	for i, k := range cfg.Keys {
		ks := sha256.Sum256([]byte(k.Key))
		eq := subtle.ConstantTimeCompare(sum[:], ks[:])
		// An empty configured key never matches: APISIX replaces it
		// with a generated one, so it can never be the right answer.
		if eq == 1 && k.Key != "" && match < 0 {
			match = i
		}
	}
	if match < 0 {
		return "", "wrong apikey"
	}
	if cfg.Keys[match].Role == "viewer" {
		return "viewer", ""
	}
	return "admin", ""
}

// Forbid answers a client outside allow_admin as APISIX's nginx does:
// 403 with nginx's error page.
func Forbid(w http.ResponseWriter) {
	writeText(w, http.StatusForbidden, "text/html", nginxPage(http.StatusForbidden))
}
