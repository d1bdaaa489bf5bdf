// Package mqtt reads the CONNECT packet an MQTT client opens a session
// with, exactly as APISIX's mqtt-proxy stream plugin does
// (apisix/stream/plugins/mqtt-proxy.lua): MQTT 3.1.1 and 5, the MQTT 5
// properties skipped, the client id returned so that a chash upstream can
// balance on it. Nothing is consumed: the caller forwards every byte it
// read to the upstream untouched.
package mqtt

import (
	"errors"
	"fmt"
)

// MaxPacketSize bounds the CONNECT packet, fixed header included. APISIX
// peeks the whole packet from nginx's preread buffer, whose default size
// (preread_buffer_size) is 16k; a longer packet cannot be peeked there.
const MaxPacketSize = 16384

// headerPeek is how many bytes APISIX peeks before it looks at the fixed
// header (sock:peek(5)): the type byte and the longest remaining length.
const headerPeek = 5

// ErrIncomplete means the bytes so far are a valid beginning: read more
// and parse again.
var ErrIncomplete = errors.New("mqtt: incomplete CONNECT packet")

// PacketError is a packet mqtt-proxy refuses; the session is closed
// without a byte. Msg is APISIX's log text where it has one.
type PacketError struct {
	Msg string
}

func (e *PacketError) Error() string { return e.Msg }

func bad(format string, args ...any) error {
	return &PacketError{Msg: fmt.Sprintf(format, args...)}
}

// Connect is what mqtt-proxy reads of a CONNECT packet.
type Connect struct {
	// ProtocolName is the variable header's protocol name ("MQTT").
	ProtocolName string
	// ProtocolLevel is the protocol level: 4 for 3.1.1, 5 for MQTT 5.
	ProtocolLevel byte
	// ClientID is the payload's client identifier, possibly empty.
	ClientID string
	// Size is the length of the whole packet, fixed header included.
	Size int
}

// ParseConnect parses the CONNECT packet at the start of b. It returns
// ErrIncomplete while b is too short to decide (fewer than 5 bytes, or
// fewer than the fixed header announces) and a *PacketError for a packet
// APISIX refuses. Bytes after the packet are ignored.
//
// The checks are APISIX's, no more: the first byte may be anything from
// 16 to 32 (not only CONNECT's 0x10), the flags and keep-alive are
// skipped unread, and a packet whose fields run past its end is refused
// (the Lua reads nil there and errors out).
func ParseConnect(b []byte) (Connect, error) {
	if len(b) < headerPeek {
		return Connect{}, ErrIncomplete
	}
	if t := b[0]; t < 16 || t > 32 {
		return Connect{}, bad("Received unexpected MQTT packet type+flags: %d", t)
	}
	remain, n, _ := varint(b, 1) // the 4 bytes are there: never short
	hdr := 1 + n
	total := hdr + remain
	if total > MaxPacketSize {
		return Connect{}, bad("failed to read the Connect Command: packet of %d bytes exceeds %d", total, MaxPacketSize)
	}
	if len(b) < total {
		return Connect{}, ErrIncomplete
	}
	return parseVariable(b[:total], hdr)
}

// parseVariable is parse_mqtt: data is the whole packet, off the offset
// of the variable header.
func parseVariable(data []byte, off int) (Connect, error) {
	c := Connect{Size: len(data)}
	nameLen, ok := uint16At(data, off)
	if !ok {
		return Connect{}, bad("failed to parse mqtt request: no protocol name length")
	}
	off += 2
	// string.sub truncates a name that runs past the end.
	c.ProtocolName = string(data[min(off, len(data)):min(off+nameLen, len(data))])
	off += nameLen
	// A packet ending here or in the next four bytes fails below, at
	// the client id length, as the Lua does.
	if off < len(data) {
		c.ProtocolLevel = data[off]
	}
	off += 1 + 3 // level, then the connect flags and keep-alive, unread
	if c.ProtocolLevel == 5 {
		propLen, n, ok := varint(data, off)
		if !ok {
			return Connect{}, bad("failed to parse mqtt request: truncated properties length")
		}
		off += n + propLen
	}
	idLen, ok := uint16At(data, off)
	if !ok {
		return Connect{}, bad("failed to parse mqtt request: no client id length")
	}
	off += 2
	if off+idLen > len(data) {
		return Connect{}, bad("failed to parse mqtt request, expect len: %d but got %d", off+idLen, len(data))
	}
	c.ClientID = string(data[off : off+idLen])
	return c, nil
}

// Check is mqtt-proxy's conf check: the protocol name and level must be
// the configured ones. The error texts are APISIX's log lines.
func (c Connect) Check(protocolName string, protocolLevel int) error {
	if c.ProtocolName != protocolName {
		return bad("expect protocol name: %s, but got %s", protocolName, c.ProtocolName)
	}
	if int(c.ProtocolLevel) != protocolLevel {
		return bad("expect protocol level: %d, but got %d", protocolLevel, c.ProtocolLevel)
	}
	return nil
}

// varint decodes an MQTT variable byte integer at data[off:] as
// decode_variable_byte_int does: at most 4 bytes, the fourth ending it
// whatever its continuation bit. It returns the value and the number of
// bytes it took; ok is false when the bytes run out first.
func varint(data []byte, off int) (v, n int, ok bool) {
	mult := 1
	for n < 4 {
		if off+n >= len(data) {
			return 0, 0, false
		}
		c := data[off+n]
		n++
		v += int(c&127) * mult
		mult *= 128
		if c&128 == 0 {
			break
		}
	}
	return v, n, true
}

// uint16At is a big-endian two-byte length at data[off:].
func uint16At(data []byte, off int) (int, bool) {
	if off < 0 || off+2 > len(data) {
		return 0, false
	}
	return int(data[off])<<8 | int(data[off+1]), true
}
