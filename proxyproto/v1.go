package proxyproto

import (
	"bytes"
	"io"
	"net/netip"
	"strconv"
)

// readV1 reads the rest of a v1 line whose first bytes are start and
// parses it: "PROXY TCP4|TCP6 src dst sport dport\r\n" or
// "PROXY UNKNOWN...\r\n".
func readV1(r io.Reader, start []byte) (Header, error) {
	var line [v1MaxLen]byte
	n := copy(line[:], start)
	br, _ := r.(io.ByteReader)
	var one [1]byte
	for n < v1MaxLen {
		var c byte
		var err error
		if br != nil {
			c, err = br.ReadByte()
		} else {
			_, err = io.ReadFull(r, one[:])
			c = one[0]
		}
		if err != nil {
			return Header{}, eof(err)
		}
		line[n] = c
		n++
		if c == '\n' {
			return parseV1(line[:n])
		}
	}
	return Header{}, invalid("v1 line longer than %d bytes", v1MaxLen)
}

// parseV1 parses a complete v1 line, CRLF included.
func parseV1(line []byte) (Header, error) {
	body, ok := bytes.CutSuffix(line, []byte("\r\n"))
	if !ok {
		return Header{}, invalid("v1 line does not end in CRLF")
	}
	body = body[len(v1Prefix):]
	if rest, ok := bytes.CutPrefix(body, []byte("UNKNOWN")); ok {
		// The specification says to ignore whatever follows UNKNOWN.
		if len(rest) > 0 && rest[0] != ' ' {
			return Header{}, invalid("bad v1 protocol %q", body)
		}
		return Header{Version: 1, Local: true}, nil
	}
	f := bytes.Split(body, []byte(" "))
	if len(f) != 5 {
		return Header{}, invalid("v1 line has %d fields, want 6", len(f)+1)
	}
	var want4 bool
	switch string(f[0]) {
	case "TCP4":
		want4 = true
	case "TCP6":
	default:
		return Header{}, invalid("bad v1 protocol %q", f[0])
	}
	src, err := v1Addr(f[1], want4)
	if err != nil {
		return Header{}, err
	}
	dst, err := v1Addr(f[2], want4)
	if err != nil {
		return Header{}, err
	}
	sport, err := v1Port(f[3])
	if err != nil {
		return Header{}, err
	}
	dport, err := v1Port(f[4])
	if err != nil {
		return Header{}, err
	}
	return Header{Version: 1, Src: netip.AddrPortFrom(src, sport), Dst: netip.AddrPortFrom(dst, dport)}, nil
}

func v1Addr(b []byte, want4 bool) (netip.Addr, error) {
	a, err := netip.ParseAddr(string(b))
	if err != nil || a.Zone() != "" || a.Is4() != want4 {
		fam := "TCP6"
		if want4 {
			fam = "TCP4"
		}
		return netip.Addr{}, invalid("bad %s address %q", fam, b)
	}
	return a, nil
}

// v1Port accepts 0..65535 in plain decimal, without sign or leading zero.
func v1Port(b []byte) (uint16, error) {
	if len(b) == 0 || len(b) > 5 || (b[0] == '0' && len(b) > 1) {
		return 0, invalid("bad v1 port %q", b)
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, invalid("bad v1 port %q", b)
		}
	}
	p, err := strconv.ParseUint(string(b), 10, 16)
	if err != nil {
		return 0, invalid("bad v1 port %q", b)
	}
	return uint16(p), nil
}
