package proxyproto

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/netip"
)

// v2 command, family and transport nibbles.
const (
	v2Version   = 0x2
	cmdLocal    = 0x0
	cmdProxy    = 0x1
	famUnspec   = 0x0
	famInet     = 0x1
	famInet6    = 0x2
	famUnix     = 0x3
	protoUnspec = 0x0
	protoStream = 0x1
	protoDgram  = 0x2

	inetAddrLen  = 4 + 4 + 2 + 2
	inet6AddrLen = 16 + 16 + 2 + 2
)

// readV2 reads the address block and TLVs after the fixed 16 bytes in hdr
// and parses them. TLVs are read and skipped.
func readV2(r io.Reader, hdr *[v2HeaderLen]byte) (Header, error) {
	if !bytes.Equal(hdr[:12], v2Sig) {
		return Header{}, invalid("bad v2 signature")
	}
	ver, cmd := hdr[12]>>4, hdr[12]&0x0f
	fam, proto := hdr[13]>>4, hdr[13]&0x0f
	n := int(binary.BigEndian.Uint16(hdr[14:16]))
	if ver != v2Version {
		return Header{}, invalid("v2 version %d", ver)
	}
	if cmd != cmdLocal && cmd != cmdProxy {
		return Header{}, invalid("v2 command %d", cmd)
	}
	if fam > famUnix || proto > protoDgram {
		return Header{}, invalid("v2 family/transport 0x%02x", hdr[13])
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return Header{}, eof(err)
	}
	h := Header{Version: 2, Local: true}
	if cmd == cmdLocal {
		return h, nil // addresses, if any, are to be ignored
	}
	switch fam {
	case famInet, famInet6:
		if proto != protoStream {
			return Header{}, invalid("v2 transport %d on a stream connection", proto)
		}
	default:
		return h, nil // no IP endpoints: use the connection's own
	}
	if fam == famInet {
		if n < inetAddrLen {
			return Header{}, invalid("v2 AF_INET block of %d bytes", n)
		}
		src := netip.AddrFrom4([4]byte(body[0:4]))
		dst := netip.AddrFrom4([4]byte(body[4:8]))
		h.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(body[8:10]))
		h.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(body[10:12]))
	} else {
		if n < inet6AddrLen {
			return Header{}, invalid("v2 AF_INET6 block of %d bytes", n)
		}
		src := netip.AddrFrom16([16]byte(body[0:16]))
		dst := netip.AddrFrom16([16]byte(body[16:32]))
		h.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(body[32:34]))
		h.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(body[34:36]))
	}
	h.Local = false
	return h, nil
}
