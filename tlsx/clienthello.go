// Package tlsx holds the TLS building blocks of the stream proxy that do not
// depend on Caddy: reading the ClientHello before any handshake (for SNI
// routing and passthrough), choosing the server certificate of an APISIX SSL
// object by SNI, and the client configuration towards TLS upstreams.
package tlsx

import (
	"errors"
	"fmt"
	"strings"
)

// Limits on what ParseClientHello and PeekClientHello accept.
const (
	// MaxHelloSize is the largest ClientHello handshake message body
	// accepted, 16 KiB: real hellos, even with post-quantum key shares, are
	// a few KiB.
	MaxHelloSize = 16 << 10
	// MaxPeekSize bounds the bytes read before the hello is complete: the
	// hello itself plus the header overhead of fragmenting it into records
	// and room for one more full record.
	MaxPeekSize = 2 * (recordHeaderLen + maxRecordLen)

	recordHeaderLen    = 5
	maxRecordLen       = 16 << 10 // TLSPlaintext.length limit, RFC 8446 §5.1
	recordTypeHandshk  = 0x16
	handshakeTypeHello = 0x01
)

// Errors of ParseClientHello and PeekClientHello. Malformed hellos give an
// error wrapping ErrMalformed.
var (
	// ErrNeedMore means the data is a valid but incomplete prefix of a
	// ClientHello: read more and call again.
	ErrNeedMore = errors.New("tlsx: incomplete ClientHello, need more data")
	// ErrNotTLS means the first bytes are not a TLS handshake record.
	ErrNotTLS = errors.New("tlsx: not a TLS handshake")
	// ErrMalformed is wrapped by every error about a broken ClientHello.
	ErrMalformed = errors.New("tlsx: malformed ClientHello")
	// ErrTooLarge means the hello exceeds MaxHelloSize or needs more than
	// MaxPeekSize bytes of records.
	ErrTooLarge = errors.New("tlsx: ClientHello too large")
)

// ClientHelloInfo is what the proxy needs from a ClientHello.
type ClientHelloInfo struct {
	// ServerName is the SNI host_name, lowercased and without a trailing
	// dot; empty when the client sent none.
	ServerName string
	// ALPNProtocols are the protocols offered in the ALPN extension, in
	// client order.
	ALPNProtocols []string
	// SupportedVersions are the versions of the supported_versions
	// extension, or the legacy_version alone when it is absent.
	SupportedVersions []uint16
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// ParseClientHello parses the ClientHello at the start of data, which holds
// the raw bytes a client sent (TLS records, possibly several). It returns
// ErrNeedMore when data is a valid prefix of an unfinished hello, ErrNotTLS
// when data does not start with a TLS handshake record, and an error
// wrapping ErrMalformed or ErrTooLarge otherwise. Bytes after the hello are
// ignored. data is not retained.
func ParseClientHello(data []byte) (ClientHelloInfo, error) {
	msg, err := reassemble(data)
	if err != nil {
		return ClientHelloInfo{}, err
	}
	return parseHelloBody(msg)
}

// reassemble collects the body of the ClientHello handshake message from
// the records in data.
func reassemble(data []byte) ([]byte, error) {
	var msg []byte // the handshake message so far, when it spans records
	need := -1     // total handshake message length, once known
	off := 0
	for {
		if off >= MaxPeekSize {
			return nil, ErrTooLarge
		}
		rest := data[off:]
		if len(rest) == 0 {
			return nil, ErrNeedMore
		}
		if rest[0] != recordTypeHandshk {
			if off == 0 {
				return nil, ErrNotTLS
			}
			return nil, malformed("record type %d inside the ClientHello", rest[0])
		}
		if len(rest) < 2 {
			return nil, ErrNeedMore
		}
		if rest[1] != 3 {
			if off == 0 {
				return nil, ErrNotTLS
			}
			return nil, malformed("record version %d.x", rest[1])
		}
		if len(rest) < recordHeaderLen {
			return nil, ErrNeedMore
		}
		rlen := int(rest[3])<<8 | int(rest[4])
		if rlen == 0 {
			return nil, malformed("empty handshake record")
		}
		if rlen > maxRecordLen {
			return nil, malformed("record length %d over %d", rlen, maxRecordLen)
		}
		frag := rest[recordHeaderLen:]
		if len(frag) > rlen {
			frag = frag[:rlen]
		}
		complete := len(frag) == rlen
		// Fast path: the hello fits in the first record, so no copy.
		if off == 0 && complete && rlen >= 4 {
			hl := int(frag[1])<<16 | int(frag[2])<<8 | int(frag[3])
			if frag[0] == handshakeTypeHello && hl <= MaxHelloSize && 4+hl <= rlen {
				return frag[4 : 4+hl], nil
			}
		}
		msg = append(msg, frag...)
		if need < 0 && len(msg) >= 4 {
			if msg[0] != handshakeTypeHello {
				return nil, malformed("first handshake message is type %d, not ClientHello", msg[0])
			}
			hl := int(msg[1])<<16 | int(msg[2])<<8 | int(msg[3])
			if hl > MaxHelloSize {
				return nil, ErrTooLarge
			}
			need = 4 + hl
		}
		if need >= 0 && len(msg) >= need {
			// Complete even if its record is not: what follows the
			// hello in the record does not matter here.
			return msg[4:need], nil
		}
		if !complete {
			return nil, ErrNeedMore
		}
		off += recordHeaderLen + rlen
	}
}

// Extension numbers read from the hello.
const (
	extServerName        = 0
	extALPN              = 16
	extSupportedVersions = 43
)

// parseHelloBody parses a ClientHello handshake body (RFC 8446 §4.1.2,
// RFC 5246 §7.4.1.2).
func parseHelloBody(b []byte) (ClientHelloInfo, error) {
	var info ClientHelloInfo
	r := reader(b)
	legacyVersion, ok := r.u16()
	if !ok || !r.skip(32) {
		return info, malformed("truncated version or random")
	}
	if sid, ok := r.vec8(); !ok || len(sid) > 32 {
		return info, malformed("bad session id")
	}
	if cs, ok := r.vec16(); !ok || len(cs) < 2 || len(cs)%2 != 0 {
		return info, malformed("bad cipher suites")
	}
	if cm, ok := r.vec8(); !ok || len(cm) < 1 {
		return info, malformed("bad compression methods")
	}
	if len(r) > 0 {
		exts, ok := r.vec16()
		if !ok || len(r) != 0 {
			return info, malformed("bad extensions length")
		}
		if err := parseExtensions(&info, exts); err != nil {
			return ClientHelloInfo{}, err
		}
	}
	if info.SupportedVersions == nil {
		info.SupportedVersions = []uint16{legacyVersion}
	}
	return info, nil
}

func parseExtensions(info *ClientHelloInfo, exts reader) error {
	var seen [3]bool // server_name, ALPN, supported_versions
	once := func(i int, name string) error {
		if seen[i] {
			return malformed("duplicate %s extension", name)
		}
		seen[i] = true
		return nil
	}
	for len(exts) > 0 {
		typ, ok1 := exts.u16()
		data, ok2 := exts.vec16()
		if !ok1 || !ok2 {
			return malformed("truncated extension")
		}
		var err error
		switch typ {
		case extServerName:
			if err = once(0, "server_name"); err == nil {
				info.ServerName, err = parseServerName(data)
			}
		case extALPN:
			if err = once(1, "ALPN"); err == nil {
				info.ALPNProtocols, err = parseALPN(data)
			}
		case extSupportedVersions:
			if err = once(2, "supported_versions"); err == nil {
				info.SupportedVersions, err = parseVersions(data)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// parseServerName returns the host_name of a server_name extension
// (RFC 6066 §3), normalised as APISIX does: lowercased, one trailing dot
// removed. Bytes outside printable ASCII are refused so that names are safe
// to log and compare.
func parseServerName(data reader) (string, error) {
	list, ok := data.vec16()
	if !ok || len(data) != 0 || len(list) == 0 {
		return "", malformed("bad server_name list")
	}
	name := ""
	for len(list) > 0 {
		typ, ok1 := list.u8()
		n, ok2 := list.vec16()
		if !ok1 || !ok2 {
			return "", malformed("truncated server_name entry")
		}
		if typ != 0 { // only host_name is defined; skip others
			continue
		}
		if name != "" {
			return "", malformed("several host_name entries")
		}
		if len(n) == 0 {
			return "", malformed("empty host_name")
		}
		for _, c := range n {
			if c <= ' ' || c >= 0x7f {
				return "", malformed("host_name has byte 0x%02x", c)
			}
		}
		name = NormalizeSNI(string(n))
		if name == "" {
			return "", malformed("host_name is a lone dot")
		}
	}
	return name, nil
}

// NormalizeSNI lowercases a server name and removes one trailing dot, the
// form APISIX compares names in. It does not allocate when the name is
// already normal.
func NormalizeSNI(name string) string {
	name = strings.TrimSuffix(name, ".")
	for i := 0; i < len(name); i++ {
		if c := name[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(name)
		}
	}
	return name
}

func parseALPN(data reader) ([]string, error) {
	list, ok := data.vec16()
	if !ok || len(data) != 0 || len(list) == 0 {
		return nil, malformed("bad ALPN list")
	}
	var out []string
	for len(list) > 0 {
		p, ok := list.vec8()
		if !ok || len(p) == 0 {
			return nil, malformed("bad ALPN protocol")
		}
		out = append(out, string(p))
	}
	return out, nil
}

func parseVersions(data reader) ([]uint16, error) {
	list, ok := data.vec8()
	if !ok || len(data) != 0 || len(list) < 2 || len(list)%2 != 0 {
		return nil, malformed("bad supported_versions list")
	}
	out := make([]uint16, 0, len(list)/2)
	for len(list) > 0 {
		v, _ := list.u16()
		out = append(out, v)
	}
	return out, nil
}

// reader consumes big-endian TLS wire data; each method reports false when
// the data is too short and then leaves the reader unchanged.
type reader []byte

func (r *reader) u8() (uint8, bool) {
	if len(*r) < 1 {
		return 0, false
	}
	v := (*r)[0]
	*r = (*r)[1:]
	return v, true
}

func (r *reader) u16() (uint16, bool) {
	if len(*r) < 2 {
		return 0, false
	}
	v := uint16((*r)[0])<<8 | uint16((*r)[1])
	*r = (*r)[2:]
	return v, true
}

func (r *reader) skip(n int) bool {
	if len(*r) < n {
		return false
	}
	*r = (*r)[n:]
	return true
}

// vec8 and vec16 read a vector with a 1- or 2-byte length prefix.
func (r *reader) vec8() (reader, bool) {
	if len(*r) < 1 || len(*r) < 1+int((*r)[0]) {
		return nil, false
	}
	n := 1 + int((*r)[0])
	v := (*r)[1:n]
	*r = (*r)[n:]
	return v, true
}

func (r *reader) vec16() (reader, bool) {
	if len(*r) < 2 {
		return nil, false
	}
	n := 2 + (int((*r)[0])<<8 | int((*r)[1]))
	if len(*r) < n {
		return nil, false
	}
	v := (*r)[2:n]
	*r = (*r)[n:]
	return v, true
}
