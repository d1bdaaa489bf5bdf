package proxyproto

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func v2(cmd, fam byte, body ...byte) []byte {
	b := append([]byte(nil), v2Sig...)
	b = append(b, 0x20|cmd, fam, byte(len(body)>>8), byte(len(body)))
	return append(b, body...)
}

var inet4Body = []byte{192, 0, 2, 1, 127, 0, 0, 1, 0x30, 0x39, 0x00, 0x50}

func TestReadHeader(t *testing.T) {
	inet6Body := make([]byte, 36)
	inet6Body[15], inet6Body[31] = 1, 2
	inet6Body[32], inet6Body[33], inet6Body[34], inet6Body[35] = 0, 1, 0, 2
	withTLV := append(append([]byte(nil), inet4Body...), 0x04, 0x00, 0x02, 'h', 'i')
	tests := []struct {
		name string
		in   string
		want Header
		err  error // wrapped sentinel, nil for success
	}{
		{"v1 tcp4", "PROXY TCP4 192.0.2.1 127.0.0.1 12345 80\r\n", Header{Version: 1, Src: ap("192.0.2.1:12345"), Dst: ap("127.0.0.1:80")}, nil},
		{"v1 tcp6", "PROXY TCP6 2001:db8::1 ::1 0 65535\r\n", Header{Version: 1, Src: ap("[2001:db8::1]:0"), Dst: ap("[::1]:65535")}, nil},
		{"v1 tcp6 mapped", "PROXY TCP6 ::ffff:1.2.3.4 ::1 1 2\r\n", Header{Version: 1, Src: ap("[::ffff:1.2.3.4]:1"), Dst: ap("[::1]:2")}, nil},
		{"v1 unknown", "PROXY UNKNOWN\r\n", Header{Version: 1, Local: true}, nil},
		{"v1 unknown with addrs", "PROXY UNKNOWN ffff::1 ::1 1 2\r\n", Header{Version: 1, Local: true}, nil},
		{"v1 max length", "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
			Header{Version: 1, Src: ap("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"), Dst: ap("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535")}, nil},
		{"v1 too long", "PROXY UNKNOWN " + string(bytes.Repeat([]byte("x"), 100)) + "\r\n", Header{}, ErrInvalid},
		{"v1 lf only", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", Header{}, ErrInvalid},
		{"v1 tcp4 with v6", "PROXY TCP4 ::1 ::1 1 2\r\n", Header{}, ErrInvalid},
		{"v1 tcp6 with v4", "PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n", Header{}, ErrInvalid},
		{"v1 zone", "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", Header{}, ErrInvalid},
		{"v1 double space", "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", Header{}, ErrInvalid},
		{"v1 missing port", "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", Header{}, ErrInvalid},
		{"v1 extra field", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", Header{}, ErrInvalid},
		{"v1 port range", "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", Header{}, ErrInvalid},
		{"v1 port leading zero", "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", Header{}, ErrInvalid},
		{"v1 port sign", "PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", Header{}, ErrInvalid},
		{"v1 udp", "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", Header{}, ErrInvalid},
		{"v1 unknownx", "PROXY UNKNOWNX\r\n", Header{}, ErrInvalid},
		{"v1 truncated", "PROXY TCP4 1.2.3.4", Header{}, io.ErrUnexpectedEOF},
		{"v1 lowercase", "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", Header{}, ErrNoHeader},
		{"no header", "GET / HTTP/1.1\r\n\r\n", Header{}, ErrNoHeader},
		{"empty", "", Header{}, io.EOF},
		{"short", "PROX", Header{}, io.ErrUnexpectedEOF},
		{"v2 inet", string(v2(cmdProxy, 0x11, inet4Body...)), Header{Version: 2, Src: ap("192.0.2.1:12345"), Dst: ap("127.0.0.1:80")}, nil},
		{"v2 inet6", string(v2(cmdProxy, 0x21, inet6Body...)), Header{Version: 2, Src: ap("[::1]:1"), Dst: ap("[::2]:2")}, nil},
		{"v2 inet with tlv", string(v2(cmdProxy, 0x11, withTLV...)), Header{Version: 2, Src: ap("192.0.2.1:12345"), Dst: ap("127.0.0.1:80")}, nil},
		{"v2 local", string(v2(cmdLocal, 0x00)), Header{Version: 2, Local: true}, nil},
		{"v2 local with addrs", string(v2(cmdLocal, 0x11, inet4Body...)), Header{Version: 2, Local: true}, nil},
		{"v2 proxy unspec", string(v2(cmdProxy, 0x00)), Header{Version: 2, Local: true}, nil},
		{"v2 proxy unix", string(v2(cmdProxy, 0x31, make([]byte, 216)...)), Header{Version: 2, Local: true}, nil},
		{"v2 inet short", string(v2(cmdProxy, 0x11, inet4Body[:11]...)), Header{}, ErrInvalid},
		{"v2 inet6 short", string(v2(cmdProxy, 0x21, inet4Body...)), Header{}, ErrInvalid},
		{"v2 dgram", string(v2(cmdProxy, 0x12, inet4Body...)), Header{}, ErrInvalid},
		{"v2 bad family", string(v2(cmdProxy, 0x41, inet4Body...)), Header{}, ErrInvalid},
		{"v2 bad command", string(v2(0x2, 0x11, inet4Body...)), Header{}, ErrInvalid},
		{"v2 bad version", "\r\n\r\n\x00\r\nQUIT\n\x11\x11\x00\x00", Header{}, ErrInvalid},
		{"v2 bad signature tail", "\r\n\r\n\x00\r\nQUIX\n\x21\x11\x00\x00", Header{}, ErrInvalid},
		{"v2 truncated body", string(v2(cmdProxy, 0x11, inet4Body...)[:20]), Header{}, io.ErrUnexpectedEOF},
		{"v2 truncated fixed", "\r\n\r\n\x00\r\nQU", Header{}, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const tail = "payload"
			// Both reader kinds: a plain io.Reader (byte-per-Read v1
			// path) and a bufio.Reader (ByteReader path).
			readers := map[string]func(string) io.Reader{
				"plain": func(s string) io.Reader { return struct{ io.Reader }{bytes.NewReader([]byte(s))} },
				"bufio": func(s string) io.Reader { return bufio.NewReader(bytes.NewReader([]byte(s))) },
			}
			for kind, mk := range readers {
				in := tt.in
				if tt.err == nil {
					in += tail
				}
				r := mk(in)
				got, err := ReadHeader(r)
				if tt.err != nil {
					if !errors.Is(err, tt.err) {
						t.Fatalf("%s: err = %v, want %v", kind, err, tt.err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s: err = %v", kind, err)
				}
				if got != tt.want {
					t.Fatalf("%s: got %+v, want %+v", kind, got, tt.want)
				}
				rest, _ := io.ReadAll(r)
				if string(rest) != tail {
					t.Fatalf("%s: bytes after header = %q, want %q", kind, rest, tail)
				}
			}
		})
	}
}

// TestReadHeaderConn reads headers from a real loopback connection where
// the client writes the header and the payload in one segment, and checks
// that the payload is still readable from the conn after ReadHeader.
func TestReadHeaderConn(t *testing.T) {
	src, dst := ap("192.0.2.7:4242"), ap("127.0.0.1:9100")
	tests := []struct {
		name   string
		header []byte
	}{
		{"v1", AppendV1(nil, src, dst)},
		{"v2", AppendV2(nil, src, dst)},
		{"v1 unknown", []byte("PROXY UNKNOWN\r\n")},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			s, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			const payload = "hello upstream"
			if _, err := c.Write(append(append([]byte(nil), tt.header...), payload...)); err != nil {
				t.Fatal(err)
			}
			if err := s.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatal(err)
			}
			h, err := ReadHeader(s)
			if err != nil {
				t.Fatal(err)
			}
			if !h.Local && (h.Src != src || h.Dst != dst) {
				t.Fatalf("got %+v", h)
			}
			buf := make([]byte, len(payload))
			if _, err := io.ReadFull(s, buf); err != nil || string(buf) != payload {
				t.Fatalf("payload %q, %v", buf, err)
			}
		})
	}
}

func TestAppend(t *testing.T) {
	tests := []struct {
		name     string
		src, dst netip.AddrPort
		v1       string
		v2       Header
	}{
		{"v4", ap("1.2.3.4:5"), ap("6.7.8.9:10"), "PROXY TCP4 1.2.3.4 6.7.8.9 5 10\r\n",
			Header{Version: 2, Src: ap("1.2.3.4:5"), Dst: ap("6.7.8.9:10")}},
		{"v6", ap("[2001:db8::1]:5"), ap("[::1]:10"), "PROXY TCP6 2001:db8::1 ::1 5 10\r\n",
			Header{Version: 2, Src: ap("[2001:db8::1]:5"), Dst: ap("[::1]:10")}},
		{"mapped both", ap("[::ffff:1.2.3.4]:5"), ap("[::ffff:6.7.8.9]:10"), "PROXY TCP4 1.2.3.4 6.7.8.9 5 10\r\n",
			Header{Version: 2, Src: ap("1.2.3.4:5"), Dst: ap("6.7.8.9:10")}},
		{"mixed", ap("1.2.3.4:5"), ap("[::1]:10"), "PROXY TCP6 ::ffff:1.2.3.4 ::1 5 10\r\n",
			Header{Version: 2, Src: ap("[::ffff:1.2.3.4]:5"), Dst: ap("[::1]:10")}},
		{"zone dropped", ap("[fe80::1%eth0]:5"), ap("[::1]:10"), "PROXY TCP6 fe80::1 ::1 5 10\r\n",
			Header{Version: 2, Src: ap("[fe80::1]:5"), Dst: ap("[::1]:10")}},
		{"invalid", netip.AddrPort{}, ap("[::1]:10"), "PROXY UNKNOWN\r\n", Header{Version: 2, Local: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(AppendV1([]byte("x"), tt.src, tt.dst)); got != "x"+tt.v1 {
				t.Fatalf("AppendV1 = %q, want %q", got, "x"+tt.v1)
			}
			h, err := ReadHeader(bytes.NewReader(AppendV2(nil, tt.src, tt.dst)))
			if err != nil || h != tt.v2 {
				t.Fatalf("AppendV2 read back %+v, %v; want %+v", h, err, tt.v2)
			}
		})
	}
}

// A client that sends fewer than 8 bytes that cannot begin a header is
// refused at once, without waiting for more.
func TestReadHeaderFailsFastWithoutSignature(t *testing.T) {
	for _, first := range []string{"ping", "P", "PROXX", "\r\n\r\n\x00\r\nX"} {
		client, server := net.Pipe()
		go func() { _, _ = client.Write([]byte(first)) }()
		_ = server.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		_, err := ReadHeader(server)
		if first == "P" {
			// a prefix of both signatures: ReadHeader must wait for more
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("%q: err = %v, want a deadline error", first, err)
			}
		} else if !errors.Is(err, ErrNoHeader) {
			t.Errorf("%q: err = %v, want ErrNoHeader", first, err)
		}
		client.Close()
		server.Close()
	}
}
