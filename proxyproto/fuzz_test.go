package proxyproto

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

func FuzzReadHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.1 127.0.0.1 12345 80\r\nrest"))
	f.Add([]byte("PROXY TCP6 ::1 ::2 1 2\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(v2(cmdProxy, 0x11, inet4Body...))
	f.Add(v2(cmdLocal, 0x00))
	f.Add(v2(cmdProxy, 0x21, make([]byte, 40)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		h, err := ReadHeader(r)
		if err != nil {
			return
		}
		used := len(data) - r.Len()
		switch h.Version {
		case 1:
			if used > v1MaxLen || !bytes.HasSuffix(data[:used], []byte("\r\n")) {
				t.Fatalf("v1 header used %d bytes: %q", used, data[:used])
			}
		case 2:
			if used != v2HeaderLen+int(binary.BigEndian.Uint16(data[14:16])) {
				t.Fatalf("v2 header used %d bytes", used)
			}
		default:
			t.Fatalf("version %d", h.Version)
		}
		if h.Local {
			if h.Src.IsValid() || h.Dst.IsValid() {
				t.Fatalf("local header with addresses: %+v", h)
			}
			return
		}
		// Writing the parsed addresses back must read back the same.
		for _, enc := range [][]byte{AppendV1(nil, h.Src, h.Dst), AppendV2(nil, h.Src, h.Dst)} {
			checkRoundTrip(t, enc, h.Src, h.Dst)
		}
	})
}

// FuzzAppendRoundTrip writes headers for arbitrary addresses and reads them
// back.
func FuzzAppendRoundTrip(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4}, uint16(1), []byte{5, 6, 7, 8}, uint16(2))
	f.Add(make([]byte, 16), uint16(0), []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4}, uint16(65535))
	f.Add([]byte{}, uint16(1), []byte{1, 2, 3, 4}, uint16(2))
	f.Fuzz(func(t *testing.T, a []byte, ap uint16, b []byte, bp uint16) {
		sa, _ := netip.AddrFromSlice(a)
		da, _ := netip.AddrFromSlice(b)
		src, dst := netip.AddrPortFrom(sa, ap), netip.AddrPortFrom(da, bp)
		for _, enc := range [][]byte{AppendV1(nil, src, dst), AppendV2(nil, src, dst)} {
			checkRoundTrip(t, enc, src, dst)
		}
	})
}

func checkRoundTrip(t *testing.T, enc []byte, src, dst netip.AddrPort) {
	t.Helper()
	s, d, _, ok := family(src, dst)
	got, err := ReadHeader(bytes.NewReader(append(enc, "tail"...)))
	if err != nil {
		t.Fatalf("read back %q: %v", enc, err)
	}
	if !ok {
		if !got.Local {
			t.Fatalf("invalid addresses gave %+v", got)
		}
		return
	}
	if got.Local || got.Src != s || got.Dst != d {
		t.Fatalf("read back %+v from %q, want %v %v", got, enc, s, d)
	}
}
