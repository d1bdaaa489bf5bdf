package model

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"

	"github.com/caddy-apisix/stream/internal/lua"
)

// Error is a validation failure whose Msg is APISIX's error_msg text, exactly.
type Error struct{ Msg string }

// Error returns Msg.
func (e *Error) Error() string { return e.Msg }

// Refs lets validation look up other objects. A nil func means "not found".
type Refs struct {
	// UpstreamExists reports whether the upstream with this id exists.
	UpstreamExists func(id string) bool
	// SSLType returns the type ("server"/"client") of an SSL object,
	// ok=false if it is missing.
	SSLType func(id string) (typ string, ok bool)
	// ServiceExists reports whether the service exists.
	ServiceExists func(id string) bool
	// SkipUnknownPlugins skips, unchecked, the plugins this build does not
	// have, as APISIX does for the items its watcher loads from etcd
	// (apisix/plugin.lua stream_plugin_checker and plugin_checker: skip
	// disabled plugins unless in_cp or a yaml/json config); the Admin API
	// rejects them.
	SkipUnknownPlugins bool
}

// Every Check function below validates a body already decoded with
// json.Decoder.UseNumber into map[string]any. Like APISIX's jsonschema
// library they insert schema defaults into obj (for example an upstream
// gets "hash_on":"vars", "pass_host":"pass", "scheme":"http" and
// "type":"roundrobin"), so the caller should store obj as modified.

// Check validates obj as an object of kind with that kind's Check
// function. plugin_metadata has none (CheckPluginMetadata checks it by
// plugin name): it passes.
func Check(kind Kind, obj map[string]any, refs Refs) error {
	switch kind {
	case StreamRoutes:
		return CheckStreamRoute(obj, refs)
	case Upstreams:
		return CheckUpstream(obj, refs)
	case Services:
		return CheckService(obj, refs)
	case SSLs:
		return CheckSSL(obj)
	}
	return nil
}

// RefsExist is the Refs of a check that takes every reference to exist
// (an SSL as a client certificate): schema/validate, and the re-check of
// items another writer stored.
func RefsExist() Refs {
	return Refs{
		UpstreamExists: func(string) bool { return true },
		SSLType:        func(string) (string, bool) { return "client", true },
		ServiceExists:  func(string) bool { return true },
	}
}

// CheckStreamRoute validates a stream route body after the admin layer's id
// and create_time checks, in APISIX's order (docs/apisix/admin-api.md#validation-order):
// schema, upstream_id, service_id, plugins, address semantics, protocol.
// The inline upstream is only schema-checked. Errors are *Error.
func CheckStreamRoute(obj map[string]any, refs Refs) error {
	if ok, msg := streamRouteSchema.validate(obj); !ok {
		return &Error{Msg: "invalid configuration: " + msg}
	}
	if err := checkUpstreamID(obj, refs); err != nil {
		return err
	}
	if id, ok := obj["service_id"]; ok {
		sid := IDString(id)
		if refs.ServiceExists == nil || !refs.ServiceExists(sid) {
			return &Error{Msg: "failed to fetch service info by service id [" + sid + "], response code: 404"}
		}
	}
	// xRPC superior_id checks (step 7) are skipped: no protocol is
	// registered, so step 10 rejects every protocol anyway.
	if plugins, ok := obj["plugins"].(map[string]any); ok {
		if err := streamRoutePlugins.check(plugins, refs.SkipUnknownPlugins); err != nil {
			return err
		}
	}
	for _, f := range []string{"remote_addr", "server_addr"} {
		if s, ok := obj[f].(string); ok && !validCIDROrIP(s) {
			return &Error{Msg: "invalid " + f + ": " + s}
		}
	}
	if p, ok := obj["protocol"].(map[string]any); ok {
		name, _ := p["name"].(string)
		return &Error{Msg: "unknown protocol [" + name + "]"}
	}
	return nil
}

// checkUpstreamID requires obj's upstream_id, if any, to exist.
func checkUpstreamID(obj map[string]any, refs Refs) error {
	id, ok := obj["upstream_id"]
	if !ok {
		return nil
	}
	sid := IDString(id)
	if refs.UpstreamExists == nil || !refs.UpstreamExists(sid) {
		return &Error{Msg: "failed to fetch upstream info by upstream id [" + sid + "], response code: 404"}
	}
	return nil
}

// CheckUpstream is the full /upstreams check: schema, then
// check_upstream_conf (bracketed IPv6 array hosts, object-key ports,
// tls.client_cert_id, pass_host rewrite, tls client cert/key, chash key).
// Errors are *Error.
func CheckUpstream(obj map[string]any, refs Refs) error {
	if ok, msg := upstreamSchema.validate(obj); !ok {
		return &Error{Msg: "invalid configuration: " + msg}
	}
	switch nodes := obj["nodes"].(type) {
	case []any:
		for _, n := range nodes {
			m, _ := n.(map[string]any)
			host, _ := m["host"].(string)
			if _, v6 := parseIPv6(host); v6 && !strings.HasPrefix(host, "[") {
				return &Error{Msg: "invalid configuration: IPv6 address must be enclosed with '[' and ']'"}
			}
		}
	case map[string]any:
		for _, addr := range sortedKeys(nodes) {
			if _, port, ok := ParseNodeKey(addr); ok && (port < 1 || port > 65535) {
				return &Error{Msg: "invalid port " + lua.FormatNumber(port)}
			}
		}
	}
	tls, _ := obj["tls"].(map[string]any)
	if id, ok := tls["client_cert_id"]; ok {
		sid := IDString(id)
		var typ string
		found := false
		if refs.SSLType != nil {
			typ, found = refs.SSLType(sid)
		}
		if !found {
			return &Error{Msg: "failed to fetch ssl info by ssl id [" + sid + "], response code: 404"}
		}
		if typ != "client" {
			return &Error{Msg: "failed to fetch ssl info by ssl id [" + sid + "], wrong ssl type"}
		}
	}
	if obj["pass_host"] == "rewrite" {
		if h, _ := obj["upstream_host"].(string); h == "" {
			return &Error{Msg: "`upstream_host` can't be empty when `pass_host` is `rewrite`"}
		}
	}
	if cert, ok := tls["client_cert"].(string); ok {
		key, _ := tls["client_key"].(string)
		if err := validateCertKey(cert, key, true); err != nil {
			return err
		}
	}
	if obj["type"] != "chash" {
		return nil
	}
	hashOn, _ := obj["hash_on"].(string)
	key, hasKey := obj["key"]
	if hashOn != "consumer" && !hasKey {
		return &Error{Msg: "missing key"}
	}
	if ks := hashKeySchemas[hashOn]; ks != nil {
		if ok, msg := ks.validate(key); !ok {
			return &Error{Msg: "invalid configuration: " + msg}
		}
	}
	return nil
}

// CheckSSL validates an SSL object: schema
// (docs/apisix/tls.md#ssl-object-schema), then APISIX's
// check_ssl_conf: cert/key parse, certs/keys pairing, client.ca. As an
// addition to APISIX, each private key must match its certificate.
// Errors are *Error.
func CheckSSL(obj map[string]any) error {
	if ok, msg := sslSchema.validate(obj); !ok {
		return &Error{Msg: "invalid configuration: " + msg}
	}
	cert, _ := obj["cert"].(string)
	key, _ := obj["key"].(string)
	if !isSecretRef(cert) && !isSecretRef(key) {
		if err := validateCertKey(cert, key, true); err != nil {
			return err
		}
	}
	if obj["type"] == "client" {
		return nil
	}
	certs, _ := obj["certs"].([]any)
	keys, _ := obj["keys"].([]any)
	if len(certs) != len(keys) {
		return &Error{Msg: "mismatched number of certs and keys"}
	}
	for i := range certs {
		c, _ := certs[i].(string)
		k, _ := keys[i].(string)
		if isSecretRef(c) || isSecretRef(k) {
			continue
		}
		if err := validateCertKey(c, k, true); err != nil {
			return &Error{Msg: "failed to handle cert-key pair[" + strconv.Itoa(i+1) + "]: " + err.Error()}
		}
	}
	if client, ok := obj["client"].(map[string]any); ok {
		ca, _ := client["ca"].(string)
		if err := validateCertKey(ca, "", false); err != nil {
			return &Error{Msg: "failed to validate client_cert: " + err.Error()}
		}
	}
	return nil
}

// ParseStreamRoute decodes a validated stream route body.
func ParseStreamRoute(b []byte) (*StreamRoute, error) {
	var r StreamRoute
	if err := decodeStrict(b, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// ParseUpstream decodes a validated upstream body.
func ParseUpstream(b []byte) (*Upstream, error) {
	var u Upstream
	if err := decodeStrict(b, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

// ParseSSL decodes a validated SSL body.
func ParseSSL(b []byte) (*SSL, error) {
	var s SSL
	if err := decodeStrict(b, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// decodeStrict decodes one JSON value into v and rejects trailing data.
// Numbers are first rewritten the way Lua holds them: an integral value
// such as 1.0 or 1e2 (a valid APISIX "integer") becomes 1 or 100, so it
// fits the int fields of the typed forms.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return err
	}
	if dec.More() {
		return &Error{Msg: "invalid request body: trailing data after JSON value"}
	}
	nb, err := json.Marshal(normalizeNumbers(tree))
	if err != nil {
		return err
	}
	return json.Unmarshal(nb, v)
}

// normalizeNumbers rewrites integral numbers within ±2^53 in decimal
// integer form, in place.
func normalizeNumbers(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = normalizeNumbers(x)
		}
	case []any:
		for i, x := range t {
			t[i] = normalizeNumbers(x)
		}
	case json.Number:
		if f, ok := lua.Number(t); ok && math.Mod(f, 1) == 0 && math.Abs(f) <= 1<<53 {
			return json.Number(strconv.FormatInt(int64(f), 10))
		}
	}
	return v
}

// IDString is tostring(id) of a schema-valid id (string or integer): the
// form keys and references compare, as APISIX does.
func IDString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	if f, ok := lua.Number(v); ok {
		return lua.FormatNumber(f)
	}
	return ""
}

// isSecretRef reports an APISIX secret reference, resolved at use time.
func isSecretRef(s string) bool {
	return strings.HasPrefix(s, "$secret://") || strings.HasPrefix(strings.ToUpper(s), "$ENV://")
}

// jsonNum is an integer as the decoder would have produced it.
func jsonNum(n int) json.Number { return json.Number(strconv.Itoa(n)) }

// numList is a list of integers as decoded JSON.
func numList(ns ...int) []any {
	out := make([]any, len(ns))
	for i, n := range ns {
		out[i] = jsonNum(n)
	}
	return out
}

// CheckUpstreamSchema validates v against the upstream schema alone, as a
// plugin schema that embeds schema_def.upstream does (traffic-split's
// inline upstreams); the error is the bare jsonschema text.
func CheckUpstreamSchema(v any) error {
	if ok, msg := upstreamSchema.validate(v); !ok {
		return &Error{Msg: msg}
	}
	return nil
}
