package stream

import (
	"encoding/json"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	"github.com/caddy-apisix/stream/listen"
	"github.com/caddy-apisix/stream/proxy"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("apisix", parseGlobalOption)
}

func parseGlobalOption(d *caddyfile.Dispenser, _ any) (any, error) {
	app := new(App)
	if err := app.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "apisix", Value: caddyconfig.JSON(app, nil)}, nil
}

// UnmarshalCaddyfile sets up the app from the apisix global option.
// Syntax:
//
//	apisix {
//		stream_proxy {
//			tcp <addr>...
//			tcp <addr> {
//				tls
//				tls_passthrough
//				proxy_protocol
//				proxy_protocol_to_upstream
//			}
//			udp <addr>...
//			udp_max_sessions <n>
//			udp_max_sessions_total <n>
//			udp_unanswered_timeout <duration>
//			tcp_max_connections <n>
//			fd_reserve <n>
//			tcp_copy auto|buffer|splice
//		}
//		admin_key <name> <key> [admin|viewer]
//		admin_listen <addr> {
//			tls <cert_file> <key_file> [<client_ca_file>]
//			origins <origin>...
//		}
//		allow_admin <cidr>...
//		fallback_sni <name>
//		access_log
//		role traditional|data_plane|control_plane
//		config_provider embedded|etcd|yaml|json
//		config_file <path>
//		etcd {
//			host <url>...
//			prefix <prefix>
//			timeout <duration>
//			user <name>
//			password <password>
//			tls {
//				cert <file>
//				key <file>
//				ca <file>
//				verify true|false
//				sni <name>
//			}
//		}
//		upstream <id> { ... }
//		stream_route <id> { ... }
//		ssl <id> { ... }
//		service <id> { ... }
//		data_encryption {
//			enable_encrypt_fields true|false
//			keyring <16 or 32 byte key>...
//		}
//	}
//
// An <addr> is a port (all interfaces), ip:port, [v6]:port or a range;
// admin_listen takes one host:port or a unix socket; its tls serves it
// over HTTPS (and, with a client CA file, requires client certificates
// signed by it), its origins are the browser origins allowed to write
// (admin_tls and admin_origins in JSON). A <key> may be an
// {env.NAME} or {file./path} placeholder.
// The upstream, stream_route and ssl blocks are static objects; their
// subdirectives are in caddyfile_objects.go.
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the option name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "stream_proxy":
			if d.NextArg() {
				return d.ArgErr()
			}
			if a.StreamProxy == nil {
				a.StreamProxy = new(StreamProxy)
			}
			for nesting := d.Nesting(); d.NextBlock(nesting); {
				network := d.Val()
				if network == "tcp_copy" {
					mode, err := oneArg(d)
					if err != nil {
						return err
					}
					if _, err := proxy.ParseCopyMode(mode); err != nil {
						return d.Errf("tcp_copy: %v", err)
					}
					a.StreamProxy.TCPCopy = mode
					continue
				}
				if handled, err := a.StreamProxy.unmarshalLimit(d); handled || err != nil {
					if err != nil {
						return err
					}
					continue
				}
				if network != "tcp" && network != "udp" {
					return d.Errf("unknown stream_proxy directive %q (want tcp, udp, tcp_copy or a limit)", network)
				}
				var entries []listen.Entry
				for d.NextArg() {
					var e listen.Entry
					if err := json.Unmarshal(addrJSON(d.Val()), &e); err != nil {
						return d.Errf("invalid stream_proxy.%s entry %q: %v", network, d.Val(), err)
					}
					entries = append(entries, e)
				}
				if len(entries) == 0 {
					return d.ArgErr()
				}
				var opts listen.Options
				if network != "tcp" {
					if d.NextBlock(d.Nesting()) {
						return d.Errf("stream_proxy.udp entries take no options")
					}
				} else if err := opts.UnmarshalCaddyfile(d, "tcp"); err != nil {
					return err
				}
				for i := range entries {
					entries[i].Options = opts
				}
				if network == "tcp" {
					a.StreamProxy.TCP = append(a.StreamProxy.TCP, entries...)
				} else {
					a.StreamProxy.UDP = append(a.StreamProxy.UDP, entries...)
				}
			}
		case "admin_key":
			args := d.RemainingArgs()
			if len(args) < 2 || len(args) > 3 {
				return d.Errf("admin_key: want <name> <key> [role]")
			}
			k := AdminKey{Name: args[0], Key: args[1], Role: "admin"}
			if len(args) == 3 {
				k.Role = args[2]
			}
			a.AdminKey = append(a.AdminKey, k)
		case "admin_listen":
			val, err := oneArg(d)
			if err != nil {
				return err
			}
			a.AdminListen = val
			for nesting := d.Nesting(); d.NextBlock(nesting); {
				switch d.Val() {
				case "tls":
					args := d.RemainingArgs()
					if len(args) != 2 && len(args) != 3 {
						return d.Errf("admin_listen tls: want <cert_file> <key_file> [<client_ca_file>]")
					}
					a.AdminTLS = &AdminTLS{CertFile: args[0], KeyFile: args[1]}
					if len(args) == 3 {
						a.AdminTLS.CAFile = args[2]
					}
				case "origins":
					args := d.RemainingArgs()
					if len(args) == 0 {
						return d.ArgErr()
					}
					a.AdminOrigins = append(a.AdminOrigins, args...)
				default:
					return d.Errf("unknown admin_listen option %q (want tls or origins)", d.Val())
				}
			}
		case "allow_admin":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			a.AllowAdmin = append(a.AllowAdmin, args...)
		case "fallback_sni":
			val, err := oneArg(d)
			if err != nil {
				return err
			}
			a.FallbackSNI = val
		case "access_log":
			if d.NextArg() {
				return d.ArgErr()
			}
			a.AccessLog = true
		case "stream_route", "upstream", "ssl", "service":
			kind := d.Val()
			obj, err := parseObjectBlock(d, kind)
			if err != nil {
				return err
			}
			switch kind {
			case "stream_route":
				a.StreamRoutes = append(a.StreamRoutes, obj)
			case "upstream":
				a.Upstreams = append(a.Upstreams, obj)
			case "service":
				a.Services = append(a.Services, obj)
			default:
				a.SSLs = append(a.SSLs, obj)
			}
		case "role", "config_provider", "config_file":
			opt := d.Val()
			val, err := oneArg(d)
			if err != nil {
				return err
			}
			switch opt {
			case "role":
				a.Role = val
			case "config_provider":
				a.ConfigProvider = val
			default:
				a.ConfigFile = val
			}
		case "etcd":
			if d.NextArg() {
				return d.ArgErr()
			}
			cfg, err := unmarshalEtcd(d)
			if err != nil {
				return err
			}
			a.Etcd = cfg
		case "data_encryption":
			if d.NextArg() {
				return d.ArgErr()
			}
			cfg, err := unmarshalDataEncryption(d)
			if err != nil {
				return err
			}
			a.DataEncryption = cfg
		default:
			return d.Errf("unknown apisix option %q", d.Val())
		}
	}
	return nil
}

// addrJSON turns a Caddyfile address token into the JSON form that
// listen.Entry parses: a bare port stays a number, like in APISIX YAML.
func addrJSON(tok string) []byte {
	if _, err := strconv.Atoi(tok); err == nil {
		return []byte(tok)
	}
	b, _ := json.Marshal(tok)
	return b
}

// unmarshalLimit parses a session limit of the stream_proxy block, if the
// current token names one.
func (sp *StreamProxy) unmarshalLimit(d *caddyfile.Dispenser) (bool, error) {
	name := d.Val()
	var dst *int
	switch name {
	case "udp_max_sessions":
		dst = &sp.UDPMaxSessions
	case "udp_max_sessions_total":
		dst = &sp.UDPMaxSessionsTotal
	case "tcp_max_connections":
		dst = &sp.TCPMaxConnections
	case "fd_reserve":
		dst = &sp.FDReserve
	case "udp_unanswered_timeout":
	default:
		return false, nil
	}
	val, err := oneArg(d)
	if err != nil {
		return true, err
	}
	if dst == nil {
		dur, err := caddy.ParseDuration(val)
		if err != nil {
			return true, d.Errf("%s: %v", name, err)
		}
		sp.UDPUnansweredTimeout = caddy.Duration(dur)
		return true, nil
	}
	n, err := strconv.Atoi(val)
	if err != nil {
		return true, d.Errf("%s: not an integer: %s", name, val)
	}
	*dst = n
	return true, nil
}
