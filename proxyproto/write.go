package proxyproto

import (
	"encoding/binary"
	"net/netip"
	"strconv"
)

// family picks the address family for a header and returns the addresses
// in it: IPv4 when both are IPv4 (or IPv4-mapped IPv6), else IPv6 with any
// IPv4 one mapped. ok is false when an address is invalid. Zones are
// dropped: they mean nothing to the receiver.
func family(src, dst netip.AddrPort) (s, d netip.AddrPort, v4, ok bool) {
	if !src.IsValid() || !dst.IsValid() {
		return src, dst, false, false
	}
	sa, da := src.Addr().WithZone(""), dst.Addr().WithZone("")
	if sa.Unmap().Is4() && da.Unmap().Is4() {
		sa, da, v4 = sa.Unmap(), da.Unmap(), true
	} else {
		if sa.Is4() {
			sa = netip.AddrFrom16(sa.As16())
		}
		if da.Is4() {
			da = netip.AddrFrom16(da.As16())
		}
	}
	return netip.AddrPortFrom(sa, src.Port()), netip.AddrPortFrom(da, dst.Port()), v4, true
}

// AppendV1 appends a v1 header for a TCP connection from src to dst: TCP4
// when both are IPv4, TCP6 otherwise (an IPv4 address then written
// IPv4-mapped), and "PROXY UNKNOWN" when either is invalid.
func AppendV1(buf []byte, src, dst netip.AddrPort) []byte {
	s, d, v4, ok := family(src, dst)
	if !ok {
		return append(buf, "PROXY UNKNOWN\r\n"...)
	}
	if v4 {
		buf = append(buf, "PROXY TCP4 "...)
	} else {
		buf = append(buf, "PROXY TCP6 "...)
	}
	buf = s.Addr().AppendTo(buf)
	buf = append(buf, ' ')
	buf = d.Addr().AppendTo(buf)
	buf = append(buf, ' ')
	buf = strconv.AppendUint(buf, uint64(s.Port()), 10)
	buf = append(buf, ' ')
	buf = strconv.AppendUint(buf, uint64(d.Port()), 10)
	return append(buf, "\r\n"...)
}

// AppendV2 appends a v2 PROXY header, TCP over IPv4 when both addresses are
// IPv4, else over IPv6 (IPv4 mapped), without TLVs; a LOCAL header when
// either address is invalid.
func AppendV2(buf []byte, src, dst netip.AddrPort) []byte {
	buf = append(buf, v2Sig...)
	s, d, v4, ok := family(src, dst)
	if !ok {
		return append(buf, v2Version<<4|cmdLocal, famUnspec<<4|protoUnspec, 0, 0)
	}
	buf = append(buf, v2Version<<4|cmdProxy)
	if v4 {
		buf = append(buf, famInet<<4|protoStream, 0, inetAddrLen)
		a, b := s.Addr().As4(), d.Addr().As4()
		buf = append(buf, a[:]...)
		buf = append(buf, b[:]...)
	} else {
		buf = append(buf, famInet6<<4|protoStream, 0, inet6AddrLen)
		a, b := s.Addr().As16(), d.Addr().As16()
		buf = append(buf, a[:]...)
		buf = append(buf, b[:]...)
	}
	buf = binary.BigEndian.AppendUint16(buf, s.Port())
	return binary.BigEndian.AppendUint16(buf, d.Port())
}
