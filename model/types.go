// Package model is the APISIX object model for the stream subsystem: stream
// routes, upstreams and SSL objects as the Admin API stores them, their
// validation with APISIX's exact error texts, and their parsed forms.
package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/caddy-apisix/stream/internal/lua"
)

// Kind names an Admin API resource, spelled as in the URL and the etcd key.
type Kind string

// The resources this plugin serves.
const (
	StreamRoutes Kind = "stream_routes"
	Upstreams    Kind = "upstreams"
	SSLs         Kind = "ssls"
	// Services group a stream route's plugins and upstream (APISIX's
	// apisix/admin/services.lua).
	Services Kind = "services"
	// PluginMetadata holds one object per plugin name, keyed by the name
	// (apisix/admin/plugin_metadata.lua).
	PluginMetadata Kind = "plugin_metadata"
)

// Noun is the word APISIX uses for one object of the kind in its error
// texts ("missing stream route id", "wrong upstream id").
func (k Kind) Noun() string {
	switch k {
	case StreamRoutes:
		return "stream route"
	case Upstreams:
		return "upstream"
	case SSLs:
		return "ssl"
	case Services:
		return "service"
	case PluginMetadata:
		return "plugin_metadata"
	}
	return string(k)
}

// ID is an object id as APISIX accepts it: a string or a positive integer.
// Its String form is what keys and references compare.
type ID string

// UnmarshalJSON accepts a JSON string or number.
func (id *ID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*id = ID(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("id must be a string or an integer")
	}
	*id = ID(n.String())
	return nil
}

// StreamRoute is an APISIX stream route (docs/apisix/stream-routes.md#schema, docs/apisix/stream-routes.md#several-snis).
type StreamRoute struct {
	ID         ID                         `json:"id,omitempty"`
	Name       string                     `json:"name,omitempty"`
	Desc       string                     `json:"desc,omitempty"`
	Labels     map[string]string          `json:"labels,omitempty"`
	RemoteAddr string                     `json:"remote_addr,omitempty"`
	ServerAddr string                     `json:"server_addr,omitempty"`
	ServerPort int                        `json:"server_port,omitempty"`
	SNI        string                     `json:"sni,omitempty"`
	SNIs       []string                   `json:"snis,omitempty"`
	Upstream   *Upstream                  `json:"upstream,omitempty"`
	UpstreamID ID                         `json:"upstream_id,omitempty"`
	ServiceID  ID                         `json:"service_id,omitempty"`
	Plugins    map[string]json.RawMessage `json:"plugins,omitempty"`
	Protocol   json.RawMessage            `json:"protocol,omitempty"`
	// TLSPassthrough, on a listener with both tls and tls_passthrough,
	// forwards the matched connection's TLS bytes untouched (docs/apisix/tls.md#tls-passthrough).
	TLSPassthrough bool  `json:"tls_passthrough,omitempty"`
	CreateTime     int64 `json:"create_time,omitempty"`
	UpdateTime     int64 `json:"update_time,omitempty"`
}

// Upstream is an APISIX upstream (docs/apisix/upstreams.md).
type Upstream struct {
	ID            ID                `json:"id,omitempty"`
	Name          string            `json:"name,omitempty"`
	Desc          string            `json:"desc,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
	Nodes         Nodes             `json:"nodes,omitempty"`
	Type          string            `json:"type,omitempty"`
	HashOn        string            `json:"hash_on,omitempty"`
	Key           string            `json:"key,omitempty"`
	Retries       *int              `json:"retries,omitempty"`
	RetryTimeout  float64           `json:"retry_timeout,omitempty"`
	Timeout       *Timeout          `json:"timeout,omitempty"`
	Scheme        string            `json:"scheme,omitempty"`
	TLS           *UpstreamTLS      `json:"tls,omitempty"`
	Checks        *HealthChecks     `json:"checks,omitempty"`
	PassHost      string            `json:"pass_host,omitempty"`
	UpstreamHost  string            `json:"upstream_host,omitempty"`
	KeepalivePool json.RawMessage   `json:"keepalive_pool,omitempty"`
	ServiceName   string            `json:"service_name,omitempty"`
	DiscoveryType string            `json:"discovery_type,omitempty"`
	DiscoveryArgs json.RawMessage   `json:"discovery_args,omitempty"`
	CreateTime    int64             `json:"create_time,omitempty"`
	UpdateTime    int64             `json:"update_time,omitempty"`
}

// Timeout holds an upstream's timeouts in seconds.
type Timeout struct {
	Connect float64 `json:"connect"`
	Send    float64 `json:"send"`
	Read    float64 `json:"read"`
}

// UpstreamTLS configures TLS towards the upstream (scheme "tls").
type UpstreamTLS struct {
	ClientCert   string `json:"client_cert,omitempty"`
	ClientKey    string `json:"client_key,omitempty"`
	ClientCertID ID     `json:"client_cert_id,omitempty"`
	Verify       bool   `json:"verify,omitempty"`
}

// HealthChecks is the upstream `checks` object.
type HealthChecks struct {
	Active  *ActiveCheck  `json:"active,omitempty"`
	Passive *PassiveCheck `json:"passive,omitempty"`
}

// ActiveCheck is `checks.active`.
type ActiveCheck struct {
	Type        string  `json:"type,omitempty"`
	Timeout     float64 `json:"timeout,omitempty"`
	Concurrency int     `json:"concurrency,omitempty"`
	Host        string  `json:"host,omitempty"`
	Port        int     `json:"port,omitempty"`
	// HTTPPath is the path an http/https probe requests (default "/").
	HTTPPath string `json:"http_path,omitempty"`
	// HTTPSVerifyCertificate verifies the node's certificate in https
	// probes (default true).
	HTTPSVerifyCertificate *bool `json:"https_verify_certificate,omitempty"`
	// ReqHeaders are extra "Name: value" header lines for http/https probes.
	ReqHeaders []string `json:"req_headers,omitempty"`
	Healthy    *struct {
		Interval  float64 `json:"interval,omitempty"`
		Successes int     `json:"successes,omitempty"`
		// HTTPStatuses are the probe statuses counted as success
		// (default: any 2xx or 3xx).
		HTTPStatuses []int `json:"http_statuses,omitempty"`
	} `json:"healthy,omitempty"`
	Unhealthy *struct {
		Interval     float64 `json:"interval,omitempty"`
		TCPFailures  int     `json:"tcp_failures,omitempty"`
		Timeouts     int     `json:"timeouts,omitempty"`
		HTTPFailures int     `json:"http_failures,omitempty"`
		// HTTPStatuses are the probe statuses counted as HTTP failures
		// (default: every status that is not a success).
		HTTPStatuses []int `json:"http_statuses,omitempty"`
	} `json:"unhealthy,omitempty"`
}

// PassiveCheck is `checks.passive`.
type PassiveCheck struct {
	Type    string `json:"type,omitempty"`
	Healthy *struct {
		Successes int `json:"successes,omitempty"`
	} `json:"healthy,omitempty"`
	Unhealthy *struct {
		TCPFailures int `json:"tcp_failures,omitempty"`
		Timeouts    int `json:"timeouts,omitempty"`
	} `json:"unhealthy,omitempty"`
}

// Node is one upstream node.
type Node struct {
	Host     string         `json:"host"`
	Port     int            `json:"port,omitempty"`
	Weight   int            `json:"weight"`
	Priority int            `json:"priority,omitempty"`
	Metadata map[string]any `json:"metadata,omitempty"`
}

// Addr is the node's dial address, host:port with IPv6 hosts bracketed.
func (n Node) Addr() string {
	return net.JoinHostPort(strings.Trim(n.Host, "[]"), strconv.Itoa(n.Port))
}

// Nodes accepts both APISIX forms: an object {"host:port": weight} and an
// array of Node. The object form is sorted by key so order is stable.
type Nodes []Node

// UnmarshalJSON accepts the map and the array form.
func (ns *Nodes) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		var m map[string]int
		if err := json.Unmarshal(b, &m); err != nil {
			return err
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out := make(Nodes, 0, len(m))
		for _, k := range keys {
			out = append(out, nodeOfKey(k, m[k]))
		}
		*ns = out
		return nil
	}
	var arr []Node
	if err := json.Unmarshal(b, &arr); err != nil {
		return err
	}
	*ns = arr
	return nil
}

// ParseNodeKey is core.utils.parse_addr (apisix/core/utils.lua) on an
// object-form node key, the one reading of a key for the Admin API check
// (the port must be 1-65535) and for the compiled upstream: host as
// parse_addr returns it (a bracketed IPv6 host keeps its brackets), and the
// port as Lua's tonumber reads it; hasPort=false when the key has no port,
// or one that is not a number (APISIX keeps such a node, with no port).
func ParseNodeKey(addr string) (host string, port float64, hasPort bool) {
	if addr == "" {
		return "", 0, false
	}
	// parse_addr searches for ':' from the second-to-last byte backwards
	colon := strings.LastIndexByte(addr[:len(addr)-1], ':')
	if addr[0] == '[' {
		if addr[len(addr)-1] == ']' || colon < 1 || addr[colon-1] != ']' {
			return addr, 0, false // "[v6]", or malformed
		}
	} else {
		// a host or IPv4 has a dot before any second colon; two colons
		// first make it a bare IPv6 address, which has no port
		colons := 0
		for i := 0; i < len(addr) && addr[i] != '.'; i++ {
			if addr[i] == ':' {
				if colons++; colons == 2 {
					return addr, 0, false
				}
			}
		}
		if colon < 0 {
			return addr, 0, false
		}
	}
	port, hasPort = lua.ToNumber(addr[colon+1:])
	return addr[:colon], port, hasPort
}

// nodeOfKey is the node an object-form key and weight stand for. A port
// outside 1-65535 (which the Admin API refuses) or missing gives port 0,
// a node that cannot be dialled; a fractional one is truncated, as
// nginx's balancer takes it as a C int.
func nodeOfKey(key string, weight int) Node {
	host, port, ok := ParseNodeKey(key)
	if len(host) >= 2 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	n := Node{Host: host, Weight: weight}
	if ok && port >= 1 && port <= 65535 {
		n.Port = int(port)
	}
	return n
}

// SSL is an APISIX SSL object (docs/apisix/tls.md#ssl-object-schema).
type SSL struct {
	ID           ID                `json:"id,omitempty"`
	Desc         string            `json:"desc,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	Type         string            `json:"type,omitempty"`
	Cert         string            `json:"cert,omitempty"`
	Key          string            `json:"key,omitempty"`
	SNI          string            `json:"sni,omitempty"`
	SNIs         []string          `json:"snis,omitempty"`
	Certs        []string          `json:"certs,omitempty"`
	Keys         []string          `json:"keys,omitempty"`
	Client       *SSLClient        `json:"client,omitempty"`
	Status       *int              `json:"status,omitempty"`
	SSLProtocols []string          `json:"ssl_protocols,omitempty"`
	CreateTime   int64             `json:"create_time,omitempty"`
	UpdateTime   int64             `json:"update_time,omitempty"`
}

// SSLClient is the mTLS part of an SSL object.
type SSLClient struct {
	CA               string   `json:"ca"`
	Depth            *int     `json:"depth,omitempty"`
	SkipMTLSURIRegex []string `json:"skip_mtls_uri_regex,omitempty"`
}

// Enabled reports whether the SSL object takes part in SNI matching.
func (s *SSL) Enabled() bool { return s.Status == nil || *s.Status != 0 }

// IsClient reports whether this is an upstream client certificate.
func (s *SSL) IsClient() bool { return s.Type == "client" }

// Names are the SNIs the object serves, lowercased.
func (s *SSL) Names() []string {
	var out []string
	if s.SNI != "" {
		out = append(out, strings.ToLower(s.SNI))
	}
	for _, n := range s.SNIs {
		out = append(out, strings.ToLower(n))
	}
	return out
}
