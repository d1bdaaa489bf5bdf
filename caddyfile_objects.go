package stream

import (
	"encoding/json"
	"os"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// The static objects of the apisix global option: stream_route, upstream,
// ssl and service blocks become the app's stream_routes, upstreams, ssls
// and services, the
// same APISIX objects the Admin API takes (docs/apisix/stream-routes.md,
// upstreams.md, tls.md). Common fields are subdirectives; every other
// field, however nested, is reachable with
//
//	json <field> <JSON value>
//
// which sets the field to the value as written (a JSON object, array,
// string, number or boolean). Validation happens when the config loads,
// with the Admin API's texts.
//
// Syntax:
//
//	upstream <id> {
//		node <host:port> [<weight> [<priority>]]
//		nodes <host:port[=weight]>...
//		type        roundrobin|chash|least_conn|ewma
//		hash_on     vars|...
//		key         <variable>
//		retries     <n>
//		retry_timeout <seconds>
//		timeout     <connect> <send> <read>
//		scheme      tcp|udp|tls
//		tls {
//			client_cert_id <ssl id>
//			client_cert    <PEM file>
//			client_key     <PEM file>
//			verify
//		}
//		checks      <JSON>
//		name|desc   <text>
//		label       <key> <value>
//		json        <field> <JSON>
//	}
//	stream_route <id> {
//		remote_addr <ip|cidr>
//		server_addr <ip|cidr>
//		server_port <port>
//		sni         <name>
//		snis        <name>...
//		tls_passthrough
//		upstream_id <id>
//		service_id  <id>
//		upstream {
//			<the upstream subdirectives>
//		}
//		plugin      <name> [<JSON conf>]
//		name|desc   <text>
//		label       <key> <value>
//		json        <field> <JSON>
//	}
//	service <id> {
//		upstream_id <id>
//		upstream {
//			<the upstream subdirectives>
//		}
//		plugin      <name> [<JSON conf>]
//		name|desc   <text>
//		label       <key> <value>
//		json        <field> <JSON>
//	}
//	ssl <id> {
//		cert   <PEM file>
//		key    <PEM file>
//		certs  <PEM file>...
//		keys   <PEM file>...
//		sni    <name>
//		snis   <name>...
//		type   server|client
//		client {
//			ca    <PEM file>
//			depth <n>
//		}
//		ssl_protocols TLSv1.1|TLSv1.2|TLSv1.3...
//		status 1|0
//		desc   <text>
//		label  <key> <value>
//		json   <field> <JSON>
//	}
//
// A PEM argument is a file, read when the Caddyfile is adapted (so
// caddy reload picks up a renewed file), or a value that already is PEM
// text or an APISIX secret reference ($env://..., $secret://...), kept
// as written.

// parseObjectBlock parses "<kind> <id> { ... }" into an APISIX object.
func parseObjectBlock(d *caddyfile.Dispenser, kind string) (json.RawMessage, error) {
	if !d.NextArg() {
		return nil, d.Errf("%s: want <id>", kind)
	}
	obj := map[string]any{"id": d.Val()}
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	var parse func(*caddyfile.Dispenser, map[string]any, string) error
	switch kind {
	case "upstream":
		parse = parseUpstreamField
	case "stream_route":
		parse = parseRouteField
	case "ssl":
		parse = parseSSLField
	case "service":
		parse = parseServiceField
	}
	if err := parseFields(d, obj, parse); err != nil {
		return nil, err
	}
	return json.Marshal(obj)
}

// parseFields runs parse on every subdirective of the current block.
func parseFields(d *caddyfile.Dispenser, obj map[string]any, parse func(*caddyfile.Dispenser, map[string]any, string) error) error {
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if err := parse(d, obj, d.Val()); err != nil {
			return err
		}
	}
	return nil
}

// parseCommonField handles the fields every object has and the json
// escape hatch; it reports false for a field it does not know.
func parseCommonField(d *caddyfile.Dispenser, obj map[string]any, field string) (bool, error) {
	switch field {
	case "name", "desc":
		v, err := oneArg(d)
		obj[field] = v
		return true, err
	case "label":
		args := d.RemainingArgs()
		if len(args) != 2 {
			return true, d.Errf("label: want <key> <value>")
		}
		labels, _ := obj["labels"].(map[string]any)
		if labels == nil {
			labels = map[string]any{}
			obj["labels"] = labels
		}
		labels[args[0]] = args[1]
		return true, nil
	case "json":
		args := d.RemainingArgs()
		if len(args) != 2 {
			return true, d.Errf("json: want <field> <JSON value>")
		}
		var v any
		if err := json.Unmarshal([]byte(args[1]), &v); err != nil {
			return true, d.Errf("json %s: invalid JSON: %v", args[0], err)
		}
		obj[args[0]] = v
		return true, nil
	}
	return false, nil
}

func parseUpstreamField(d *caddyfile.Dispenser, obj map[string]any, field string) error {
	if ok, err := parseCommonField(d, obj, field); ok {
		return err
	}
	switch field {
	case "node":
		args := d.RemainingArgs()
		if len(args) < 1 || len(args) > 3 {
			return d.Errf("node: want <host:port> [<weight> [<priority>]]")
		}
		host, port, err := splitHostPort(args[0])
		if err != nil {
			return d.Errf("node %q: %v", args[0], err)
		}
		n := map[string]any{"host": host, "port": port, "weight": 1}
		for i, key := range []string{"weight", "priority"} {
			if len(args) > i+1 {
				v, err := strconv.Atoi(args[i+1])
				if err != nil {
					return d.Errf("node %s: %s %q is not an integer", args[0], key, args[i+1])
				}
				n[key] = v
			}
		}
		list, _ := obj["nodes"].([]any)
		obj["nodes"] = append(list, n)
	case "nodes":
		args := d.RemainingArgs()
		if len(args) == 0 {
			return d.ArgErr()
		}
		for _, a := range args {
			addr, w, found := strings.Cut(a, "=")
			host, port, err := splitHostPort(addr)
			if err != nil {
				return d.Errf("nodes %q: %v", a, err)
			}
			n := map[string]any{"host": host, "port": port, "weight": 1}
			if found {
				weight, err := strconv.Atoi(w)
				if err != nil {
					return d.Errf("nodes %q: weight %q is not an integer", a, w)
				}
				n["weight"] = weight
			}
			list, _ := obj["nodes"].([]any)
			obj["nodes"] = append(list, n)
		}
	case "type", "hash_on", "key", "scheme", "pass_host", "upstream_host", "discovery_type", "service_name":
		v, err := oneArg(d)
		obj[field] = v
		return err
	case "retries":
		return intArg(d, obj, field)
	case "retry_timeout":
		return numberArg(d, obj, field)
	case "timeout":
		args := d.RemainingArgs()
		if len(args) != 3 {
			return d.Errf("timeout: want <connect> <send> <read> in seconds")
		}
		t := map[string]any{}
		for i, k := range []string{"connect", "send", "read"} {
			f, err := strconv.ParseFloat(args[i], 64)
			if err != nil {
				return d.Errf("timeout %s: %q is not a number", k, args[i])
			}
			t[k] = json.Number(strconv.FormatFloat(f, 'f', -1, 64))
		}
		obj[field] = t
	case "checks":
		return jsonArg(d, obj, field)
	case "tls":
		if d.NextArg() {
			return d.ArgErr()
		}
		t := map[string]any{}
		obj["tls"] = t
		return parseFields(d, t, func(d *caddyfile.Dispenser, t map[string]any, f string) error {
			switch f {
			case "client_cert_id":
				v, err := oneArg(d)
				t[f] = v
				return err
			case "client_cert", "client_key":
				return pemArg(d, t, f)
			case "verify":
				if d.NextArg() {
					return d.ArgErr()
				}
				t[f] = true
				return nil
			}
			return d.Errf("unknown upstream tls option %q", f)
		})
	default:
		return d.Errf("unknown upstream option %q (use json <field> <value> for others)", field)
	}
	return nil
}

// parseServiceField reads a service's fields: those a stream route shares
// with it (apisix/schema_def.lua service: upstream, upstream_id, plugins).
func parseServiceField(d *caddyfile.Dispenser, obj map[string]any, field string) error {
	switch field {
	case "upstream_id", "upstream", "plugin", "name", "desc", "label", "json":
		return parseRouteField(d, obj, field)
	}
	return d.Errf("unknown service option %q (use json <field> <value> for others)", field)
}

func parseRouteField(d *caddyfile.Dispenser, obj map[string]any, field string) error {
	if ok, err := parseCommonField(d, obj, field); ok {
		return err
	}
	switch field {
	case "remote_addr", "server_addr", "sni", "upstream_id", "service_id":
		v, err := oneArg(d)
		obj[field] = v
		return err
	case "server_port":
		return intArg(d, obj, field)
	case "snis":
		args := d.RemainingArgs()
		if len(args) == 0 {
			return d.ArgErr()
		}
		obj[field] = args
	case "tls_passthrough":
		if d.NextArg() {
			return d.ArgErr()
		}
		obj[field] = true
	case "upstream":
		if d.NextArg() {
			return d.Errf("upstream: an inline upstream takes a block; use upstream_id <id> to refer to one")
		}
		up := map[string]any{}
		obj[field] = up
		return parseFields(d, up, parseUpstreamField)
	case "plugin":
		args := d.RemainingArgs()
		if len(args) < 1 || len(args) > 2 {
			return d.Errf("plugin: want <name> [<JSON conf>]")
		}
		var conf any = map[string]any{}
		if len(args) == 2 {
			if err := json.Unmarshal([]byte(args[1]), &conf); err != nil {
				return d.Errf("plugin %s: invalid JSON: %v", args[0], err)
			}
		}
		plugins, _ := obj["plugins"].(map[string]any)
		if plugins == nil {
			plugins = map[string]any{}
			obj["plugins"] = plugins
		}
		plugins[args[0]] = conf
	default:
		return d.Errf("unknown stream_route option %q (use json <field> <value> for others)", field)
	}
	return nil
}

func parseSSLField(d *caddyfile.Dispenser, obj map[string]any, field string) error {
	if ok, err := parseCommonField(d, obj, field); ok {
		return err
	}
	switch field {
	case "cert", "key":
		return pemArg(d, obj, field)
	case "certs", "keys":
		args := d.RemainingArgs()
		if len(args) == 0 {
			return d.ArgErr()
		}
		var list []any
		for _, a := range args {
			v, err := pemValue(a)
			if err != nil {
				return d.Errf("%s: %v", field, err)
			}
			list = append(list, v)
		}
		obj[field] = list
	case "sni", "type":
		v, err := oneArg(d)
		obj[field] = v
		return err
	case "snis", "ssl_protocols":
		args := d.RemainingArgs()
		if len(args) == 0 {
			return d.ArgErr()
		}
		obj[field] = args
	case "status":
		return intArg(d, obj, field)
	case "client":
		if d.NextArg() {
			return d.ArgErr()
		}
		c := map[string]any{}
		obj[field] = c
		return parseFields(d, c, func(d *caddyfile.Dispenser, c map[string]any, f string) error {
			switch f {
			case "ca":
				return pemArg(d, c, f)
			case "depth":
				return intArg(d, c, f)
			case "skip_mtls_uri_regex":
				args := d.RemainingArgs()
				if len(args) == 0 {
					return d.ArgErr()
				}
				c[f] = args
				return nil
			}
			return d.Errf("unknown ssl client option %q", f)
		})
	default:
		return d.Errf("unknown ssl option %q (use json <field> <value> for others)", field)
	}
	return nil
}

func intArg(d *caddyfile.Dispenser, obj map[string]any, field string) error {
	v, err := oneArg(d)
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return d.Errf("%s: %q is not an integer", field, v)
	}
	obj[field] = n
	return nil
}

func numberArg(d *caddyfile.Dispenser, obj map[string]any, field string) error {
	v, err := oneArg(d)
	if err != nil {
		return err
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return d.Errf("%s: %q is not a number", field, v)
	}
	obj[field] = json.Number(strconv.FormatFloat(f, 'f', -1, 64))
	return nil
}

func jsonArg(d *caddyfile.Dispenser, obj map[string]any, field string) error {
	v, err := oneArg(d)
	if err != nil {
		return err
	}
	var val any
	if err := json.Unmarshal([]byte(v), &val); err != nil {
		return d.Errf("%s: invalid JSON: %v", field, err)
	}
	obj[field] = val
	return nil
}

func pemArg(d *caddyfile.Dispenser, obj map[string]any, field string) error {
	v, err := oneArg(d)
	if err != nil {
		return err
	}
	s, err := pemValue(v)
	if err != nil {
		return d.Errf("%s: %v", field, err)
	}
	obj[field] = s
	return nil
}

// pemValue reads a PEM file, unless v already is PEM text or an APISIX
// secret reference.
func pemValue(v string) (string, error) {
	lower := strings.ToLower(v)
	if strings.HasPrefix(v, "-----") || strings.HasPrefix(lower, "$env://") || strings.HasPrefix(lower, "$secret://") {
		return v, nil
	}
	b, err := os.ReadFile(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// splitHostPort splits a node address; the host may be a name, an IPv4
// address or a bracketed IPv6 address.
func splitHostPort(s string) (string, int, error) {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 {
		return "", 0, errMissingPort
	}
	host := s[:i]
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	port, err := strconv.Atoi(s[i+1:])
	if err != nil || host == "" {
		return "", 0, errMissingPort
	}
	return host, port, nil
}

type constError string

func (e constError) Error() string { return string(e) }

const errMissingPort = constError("want host:port")
