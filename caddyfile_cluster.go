package stream

import (
	"strconv"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-apisix/stream/datacrypt"
	"github.com/caddy-apisix/stream/etcdstore"
)

// unmarshalEtcd parses the etcd block (syntax in UnmarshalCaddyfile).
func unmarshalEtcd(d *caddyfile.Dispenser) (*etcdstore.Config, error) {
	cfg := new(etcdstore.Config)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		key := d.Val()
		if key == "host" {
			cfg.Host = append(cfg.Host, d.RemainingArgs()...)
			if len(cfg.Host) == 0 {
				return nil, d.ArgErr()
			}
			continue
		}
		if key == "tls" {
			if d.NextArg() {
				return nil, d.ArgErr()
			}
			t, err := unmarshalEtcdTLS(d)
			if err != nil {
				return nil, err
			}
			cfg.TLS = t
			continue
		}
		val, err := oneArg(d)
		if err != nil {
			return nil, err
		}
		switch key {
		case "prefix":
			cfg.Prefix = val
		case "timeout":
			if err := cfg.Timeout.UnmarshalJSON([]byte(strconv.Quote(val))); err != nil {
				return nil, d.Err(err.Error())
			}
		case "user":
			cfg.User = val
		case "password":
			cfg.Password = val
		default:
			return nil, d.Errf("unknown etcd option %q", key)
		}
	}
	return cfg, nil
}

func unmarshalEtcdTLS(d *caddyfile.Dispenser) (*etcdstore.TLS, error) {
	t := new(etcdstore.TLS)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		key := d.Val()
		val, err := oneArg(d)
		if err != nil {
			return nil, err
		}
		switch key {
		case "cert":
			t.Cert = val
		case "key":
			t.Key = val
		case "ca":
			t.CA = val
		case "sni":
			t.SNI = val
		case "verify":
			b, err := strconv.ParseBool(val)
			if err != nil {
				return nil, d.Errf("etcd.tls.verify: want true or false, got %q", val)
			}
			t.Verify = &b
		default:
			return nil, d.Errf("unknown etcd.tls option %q", key)
		}
	}
	return t, nil
}

// unmarshalDataEncryption parses the data_encryption block.
func unmarshalDataEncryption(d *caddyfile.Dispenser) (*datacrypt.Config, error) {
	cfg := new(datacrypt.Config)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch key := d.Val(); key {
		case "keyring":
			cfg.Keyring = append(cfg.Keyring, d.RemainingArgs()...)
			if len(cfg.Keyring) == 0 {
				return nil, d.ArgErr()
			}
		case "enable_encrypt_fields":
			val, err := oneArg(d)
			if err != nil {
				return nil, err
			}
			b, err := strconv.ParseBool(val)
			if err != nil {
				return nil, d.Errf("data_encryption.enable_encrypt_fields: want true or false, got %q", val)
			}
			cfg.EnableEncryptFields = &b
		default:
			return nil, d.Errf("unknown data_encryption option %q", key)
		}
	}
	return cfg, nil
}

// oneArg reads exactly one argument of the current directive.
func oneArg(d *caddyfile.Dispenser) (string, error) {
	if !d.NextArg() {
		return "", d.ArgErr()
	}
	val := d.Val()
	if d.NextArg() {
		return "", d.ArgErr()
	}
	return val, nil
}
