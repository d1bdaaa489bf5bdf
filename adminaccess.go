package stream

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"unsafe"

	"github.com/caddyserver/caddy/v2"
)

// Caddy's own admin routes (/config/, /load, /stop, /debug/pprof) check
// neither admin_key nor allow_admin, and /config/ returns the apisix app's
// settings. So while the apisix app is loaded, Caddy's admin endpoint must
// stay on loopback (docs: README "Admin access"): remote clients use
// admin_listen for the APISIX Admin API, and Caddy's admin.remote (mutual
// TLS with access_control) for Caddy's own API.

// loadedConfig returns the Caddy config that ctx provisions. caddy.Context
// keeps it in an unexported field and no exported accessor returns it, so
// it is read by reflection; TestLoadedConfig fails if a Caddy upgrade
// renames or retypes the field, and at run time a missing field is an
// error, so that the check below never passes by accident.
func loadedConfig(ctx caddy.Context) (*caddy.Config, error) {
	f := reflect.ValueOf(&ctx).Elem().FieldByName("cfg")
	if !f.IsValid() || f.Type() != reflect.TypeFor[*caddy.Config]() {
		return nil, errors.New("cannot read Caddy's admin settings from this Caddy version")
	}
	return *(**caddy.Config)(unsafe.Pointer(f.UnsafeAddr())), nil
}

// adminEndpoint returns the address of Caddy's local admin endpoint in cfg
// ("" when it is disabled), resolved as Caddy does: an empty listen
// address is caddy.DefaultAdminListen (CADDY_ADMIN), placeholders expand.
func adminEndpoint(cfg *caddy.Config) (caddy.NetworkAddress, bool, error) {
	listen := ""
	if cfg != nil && cfg.Admin != nil {
		if cfg.Admin.Disabled {
			return caddy.NetworkAddress{}, false, nil
		}
		listen = cfg.Admin.Listen
	}
	listen = caddy.NewReplacer().ReplaceKnown(listen, "")
	if listen == "" {
		listen = caddy.DefaultAdminListen
	}
	na, err := caddy.ParseNetworkAddress(listen)
	if err != nil {
		return caddy.NetworkAddress{}, false, err
	}
	return na, true, nil
}

// isLoopback reports whether na only accepts local clients: a unix socket,
// a file descriptor, "localhost" or a loopback IP (127.0.0.0/8, ::1).
func isLoopback(na caddy.NetworkAddress) bool {
	if na.IsUnixNetwork() || na.IsFdNetwork() {
		return true
	}
	host := strings.ToLower(na.Host)
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.Unmap().IsLoopback()
}

// checkAdminAccess refuses a config whose Caddy admin endpoint listens
// beyond loopback, and an admin_listen on the same address as that
// endpoint. Caddy's admin.remote endpoint needs no check: it only accepts
// clients whose certificates its access_control lists.
func checkAdminAccess(cfg *caddy.Config, adminListen *caddy.NetworkAddress) error {
	na, enabled, err := adminEndpoint(cfg)
	if err != nil || !enabled {
		return nil // Caddy itself refuses a bad admin address
	}
	if !isLoopback(na) {
		return fmt.Errorf("admin.listen %s is beyond loopback: Caddy's /config/, /load and "+
			"/debug/pprof routes answer any client without admin_key or allow_admin (and /config/ shows the apisix "+
			"app's settings). Keep \"admin.listen\" on loopback (e.g. 127.0.0.1:2019 or a unix socket), serve the "+
			"APISIX Admin API to other hosts with the apisix app's \"admin_listen\" (e.g. \"0.0.0.0:9180\"), and "+
			"administer Caddy remotely through Caddy's \"admin.remote\" (mutual TLS with access_control)", na)
	}
	if adminListen != nil && adminListen.String() == na.String() {
		return fmt.Errorf("admin_listen %s is Caddy's admin endpoint; give admin_listen an address of its own", na)
	}
	return nil
}
