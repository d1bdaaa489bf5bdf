// Package vars resolves a stream session's variables (nginx's and
// APISIX's ctx.var in the stream subsystem) and the "$var" templates that
// name them: chash keys, limit-conn keys, traffic-split match.vars and log
// formats all read one Set through one resolver.
package vars

import (
	"net/netip"
	"strconv"
)

// Set is one session's variables. The zero value has none; a Set must
// not be shared between sessions at the same time.
type Set struct {
	// Remote is the client address (after a PROXY protocol header):
	// $remote_addr, $remote_port.
	Remote netip.AddrPort
	// Local is the address the client connected to: $server_addr,
	// $server_port.
	Local netip.AddrPort
	// ServerName is the TLS SNI or the fallback SNI: $server_name.
	ServerName string
	// RouteID and ServiceID are the matched stream route and its
	// service: $route_id, $service_id.
	RouteID, ServiceID string
	// Protocol is "TCP" or "UDP": $protocol.
	Protocol string

	// extra holds the variables plugins set (mqtt-proxy's
	// mqtt_client_id), in the order first set.
	extra []kv
}

type kv struct{ name, value string }

// Kind is a variable the resolver knows without a lookup by name.
type Kind uint8

// Variables with a Kind of their own; any other name is Other.
const (
	Other Kind = iota
	RemoteAddr
	RemotePort
	ServerAddr
	ServerPort
	ServerName
	RouteID
	ServiceID
	Protocol
	// Empty is always empty: arg_* (no query string in stream).
	Empty
)

// Var is a parsed variable name.
type Var struct {
	Kind Kind
	// Name is the name as written, looked up among the set variables
	// for Other.
	Name string
}

// Parse resolves a variable name (without "$").
func Parse(name string) Var {
	k := Other
	switch name {
	case "remote_addr":
		k = RemoteAddr
	case "remote_port":
		k = RemotePort
	case "server_addr":
		k = ServerAddr
	case "server_port":
		k = ServerPort
	case "server_name":
		k = ServerName
	case "route_id":
		k = RouteID
	case "service_id":
		k = ServiceID
	case "protocol":
		k = Protocol
	default:
		if len(name) > 4 && name[:4] == "arg_" {
			k = Empty
		}
	}
	return Var{Kind: k, Name: name}
}

// Get is the value of the variable name, "" when it has none.
func (s *Set) Get(name string) string { return s.Value(Parse(name)) }

// Value is v's value, "" when it has none.
func (s *Set) Value(v Var) string {
	switch v.Kind {
	case RemoteAddr, RemotePort, ServerAddr, ServerPort:
		return string(s.Append(nil, v))
	case ServerName:
		return s.ServerName
	case RouteID:
		return s.RouteID
	case ServiceID:
		return s.ServiceID
	case Protocol:
		return s.Protocol
	case Other:
		for i := range s.extra {
			if s.extra[i].name == v.Name {
				return s.extra[i].value
			}
		}
	}
	return ""
}

// Append appends v's value to dst without allocating for the address
// variables.
func (s *Set) Append(dst []byte, v Var) []byte {
	switch v.Kind {
	case RemoteAddr:
		if s.Remote.IsValid() {
			return s.Remote.Addr().Unmap().AppendTo(dst)
		}
		return dst
	case RemotePort:
		if s.Remote.IsValid() {
			return strconv.AppendUint(dst, uint64(s.Remote.Port()), 10)
		}
		return dst
	case ServerAddr:
		if s.Local.IsValid() {
			return s.Local.Addr().Unmap().AppendTo(dst)
		}
		return dst
	case ServerPort:
		if s.Local.IsValid() {
			return strconv.AppendUint(dst, uint64(s.Local.Port()), 10)
		}
		return dst
	}
	return append(dst, s.Value(v)...)
}

// Has reports whether v has a non-empty value.
func (s *Set) Has(v Var) bool {
	switch v.Kind {
	case RemoteAddr, RemotePort:
		return s.Remote.IsValid()
	case ServerAddr, ServerPort:
		return s.Local.IsValid()
	}
	return s.Value(v) != ""
}

// Put sets a variable of its own (a plugin's, such as mqtt_client_id);
// the built-in ones are fields of Set.
func (s *Set) Put(name, value string) {
	for i := range s.extra {
		if s.extra[i].name == name {
			s.extra[i].value = value
			return
		}
	}
	s.extra = append(s.extra, kv{name, value})
}
