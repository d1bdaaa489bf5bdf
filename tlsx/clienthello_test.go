package tlsx

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"slices"
	"testing"
	"time"
)

// ext is one raw extension for helloMsg.
type ext struct {
	typ  uint16
	data []byte
}

func u16(v int) []byte { return []byte{byte(v >> 8), byte(v)} }

func sniExt(names ...string) ext {
	var list []byte
	for _, n := range names {
		list = append(list, 0)
		list = append(list, u16(len(n))...)
		list = append(list, n...)
	}
	return ext{extServerName, append(u16(len(list)), list...)}
}

// helloMsg builds a ClientHello handshake message (type and length
// included) with the given extensions; exts nil means no extensions block.
func helloMsg(exts []ext) []byte {
	b := []byte{3, 3}
	b = append(b, make([]byte, 32)...) // random
	b = append(b, 0)                   // session id
	b = append(b, 0, 2, 0x13, 0x01)    // one cipher suite
	b = append(b, 1, 0)                // null compression
	if exts != nil {
		var e []byte
		for _, x := range exts {
			e = append(e, u16(int(x.typ))...)
			e = append(e, u16(len(x.data))...)
			e = append(e, x.data...)
		}
		b = append(b, u16(len(e))...)
		b = append(b, e...)
	}
	return append([]byte{1, 0, byte(len(b) >> 8), byte(len(b))}, b...)
}

// records splits a handshake message into handshake records of at most
// frag bytes each.
func records(msg []byte, frag int) []byte {
	var out []byte
	for len(msg) > 0 {
		n := min(frag, len(msg))
		out = append(out, 0x16, 3, 1)
		out = append(out, u16(n)...)
		out = append(out, msg[:n]...)
		msg = msg[n:]
	}
	return out
}

// captureHello returns the bytes a crypto/tls client sends first with cfg,
// read through PeekClientHello on a loopback connection.
func captureHello(t testing.TB, cfg *tls.Config) (ClientHelloInfo, []byte) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tc := tls.Client(c, cfg)
		_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
		_ = tc.Handshake() // fails when the server closes
	}()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	info, buf, err := PeekClientHello(s, time.Now().Add(10*time.Second))
	s.Close()
	c.Close()
	<-done
	if err != nil {
		t.Fatalf("PeekClientHello: %v", err)
	}
	return info, buf
}

func TestParseClientHelloReal(t *testing.T) {
	tests := []struct {
		name string
		cfg  *tls.Config
		want ClientHelloInfo
	}{
		{"sni and alpn", &tls.Config{ServerName: "Www.Example.COM", NextProtos: []string{"h2", "http/1.1"}},
			ClientHelloInfo{ServerName: "www.example.com", ALPNProtocols: []string{"h2", "http/1.1"}, SupportedVersions: []uint16{tls.VersionTLS13, tls.VersionTLS12}}},
		{"no sni", &tls.Config{InsecureSkipVerify: true},
			ClientHelloInfo{SupportedVersions: []uint16{tls.VersionTLS13, tls.VersionTLS12}}},
		{"ip gives no sni", &tls.Config{ServerName: "127.0.0.1"},
			ClientHelloInfo{SupportedVersions: []uint16{tls.VersionTLS13, tls.VersionTLS12}}},
		{"tls12 only", &tls.Config{ServerName: "a.test.com", MaxVersion: tls.VersionTLS12},
			ClientHelloInfo{ServerName: "a.test.com", SupportedVersions: []uint16{tls.VersionTLS12}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, raw := captureHello(t, tt.cfg)
			check := func(what string, got ClientHelloInfo, err error) {
				t.Helper()
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				if got.ServerName != tt.want.ServerName || !slices.Equal(got.ALPNProtocols, tt.want.ALPNProtocols) ||
					!slices.Equal(got.SupportedVersions, tt.want.SupportedVersions) {
					t.Fatalf("%s: got %+v, want %+v", what, got, tt.want)
				}
			}
			check("peek", got, nil)
			// The same hello split into small records, and every prefix.
			msg := raw[5 : 5+(int(raw[3])<<8|int(raw[4]))]
			for _, frag := range []int{1, 7, 100, 512} {
				split := records(msg, frag)
				info, err := ParseClientHello(split)
				check("fragmented", info, err)
				for _, k := range []int{0, 1, 4, 5, 6, len(split) / 2, len(split) - 1} {
					if _, err := ParseClientHello(split[:k]); !errors.Is(err, ErrNeedMore) {
						t.Fatalf("prefix %d of %d (frag %d): err = %v, want ErrNeedMore", k, len(split), frag, err)
					}
				}
			}
			info, err := ParseClientHello(append(slices.Clip(raw), "trailing garbage"...))
			check("trailing bytes", info, err)
		})
	}
}

func TestParseClientHello(t *testing.T) {
	big := helloMsg([]ext{{0xffff, make([]byte, MaxHelloSize)}})
	alpn := ext{extALPN, append(u16(6), 2, 'h', '2', 2, 'h', '3')}
	tests := []struct {
		name string
		data []byte
		sni  string
		err  error
	}{
		{"exact", records(helloMsg([]ext{sniExt("a.test.com")}), 1<<14), "a.test.com", nil},
		{"trailing dot and case", records(helloMsg([]ext{sniExt("A.Test.COM.")}), 1<<14), "a.test.com", nil},
		{"no extensions", records(helloMsg(nil), 1<<14), "", nil},
		{"empty extensions", records(helloMsg([]ext{}), 1<<14), "", nil},
		{"alpn only", records(helloMsg([]ext{alpn}), 1<<14), "", nil},
		{"unknown name type skipped", records(helloMsg([]ext{{extServerName, []byte{0, 5, 1, 0, 2, 'x', 'y'}}}), 1<<14), "", nil},
		{"empty", nil, "", ErrNeedMore},
		{"http", []byte("GET / HTTP/1.1\r\n"), "", ErrNotTLS},
		{"sslv2 hello", []byte{0x80, 0x2e, 0x01, 0x03, 0x01}, "", ErrNotTLS},
		{"record version 2", []byte{0x16, 2, 0, 0, 4}, "", ErrNotTLS},
		{"alert record", []byte{0x15, 3, 1, 0, 2, 2, 40}, "", ErrNotTLS},
		{"empty record", []byte{0x16, 3, 1, 0, 0}, "", ErrMalformed},
		{"record too long", []byte{0x16, 3, 1, 0x40, 0x01}, "", ErrMalformed},
		{"not a client hello", records([]byte{2, 0, 0, 0}, 100), "", ErrMalformed},
		{"other record inside", append(records(helloMsg(nil)[:10], 100), 0x17, 3, 3, 0, 1, 0), "", ErrMalformed},
		{"hello too large", records(big, 1<<14), "", ErrTooLarge},
		{"duplicate sni ext", records(helloMsg([]ext{sniExt("a"), sniExt("b")}), 1<<14), "", ErrMalformed},
		{"two host names", records(helloMsg([]ext{sniExt("a", "b")}), 1<<14), "", ErrMalformed},
		{"empty host name", records(helloMsg([]ext{sniExt("")}), 1<<14), "", ErrMalformed},
		{"lone dot", records(helloMsg([]ext{sniExt(".")}), 1<<14), "", ErrMalformed},
		{"space in name", records(helloMsg([]ext{sniExt("a b")}), 1<<14), "", ErrMalformed},
		{"nul in name", records(helloMsg([]ext{sniExt("a\x00b")}), 1<<14), "", ErrMalformed},
		{"sni list overrun", records(helloMsg([]ext{{extServerName, []byte{0, 9, 0, 0, 1, 'a'}}}), 1<<14), "", ErrMalformed},
		{"empty alpn proto", records(helloMsg([]ext{{extALPN, []byte{0, 1, 0}}}), 1<<14), "", ErrMalformed},
		{"odd versions", records(helloMsg([]ext{{extSupportedVersions, []byte{1, 3}}}), 1<<14), "", ErrMalformed},
		{"truncated body", records(append([]byte{1, 0, 0, 16, 3, 3}, make([]byte, 14)...), 1<<14), "", ErrMalformed},
	}
	// A hello whose declared length overruns its message.
	bad := helloMsg(nil)
	bad[3] += 10
	bad = append(bad, make([]byte, 10)...)
	bad[len(bad)-11] = 0xff // extensions length where none fit
	tests = append(tests, struct {
		name string
		data []byte
		sni  string
		err  error
	}{"bad extensions length", records(bad, 1<<14), "", ErrMalformed})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := ParseClientHello(tt.data)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if info.ServerName != tt.sni {
				t.Fatalf("ServerName = %q, want %q", info.ServerName, tt.sni)
			}
		})
	}
}

// TestPeekClientHelloReplay peeks a hello that arrives in pieces, then
// replays the buffered bytes into a TLS server, which must complete the
// handshake: nothing was lost or changed.
func TestPeekClientHelloReplay(t *testing.T) {
	leaf := newCert(t, "replay.test.com", nil, false, false)
	pair, err := ParseKeyPair(leaf.certPEM, leaf.keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	// Split the client's writes into tiny pieces so the peek needs several
	// reads.
	client := tls.Client(&splitWriter{Conn: raw, n: 50}, &tls.Config{ServerName: "replay.test.com", InsecureSkipVerify: true})
	errc := make(chan error, 1)
	go func() {
		_ = client.SetDeadline(time.Now().Add(10 * time.Second))
		errc <- client.Handshake()
	}()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	info, buf, err := PeekClientHello(s, time.Now().Add(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if info.ServerName != "replay.test.com" {
		t.Fatalf("ServerName %q", info.ServerName)
	}
	server := tls.Server(&prefixConn{Conn: s, prefix: buf}, &tls.Config{Certificates: []tls.Certificate{pair}})
	_ = server.SetDeadline(time.Now().Add(10 * time.Second))
	if err := server.Handshake(); err != nil {
		t.Fatalf("server handshake after replay: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("client handshake: %v", err)
	}
}

func TestPeekClientHelloErrors(t *testing.T) {
	hello := records(helloMsg([]ext{sniExt("a.test.com")}), 1<<14)
	tests := []struct {
		name  string
		send  []byte
		close bool // close the client side after sending
		want  func(error) bool
	}{
		{"not tls", []byte("SSH-2.0-OpenSSH\r\n"), false, func(err error) bool { return errors.Is(err, ErrNotTLS) }},
		{"eof mid hello", hello[:30], true, func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }},
		{"eof at start", nil, true, func(err error) bool { return errors.Is(err, io.EOF) }},
		{"fragmented past the limit", records(helloMsg([]ext{{0xffff, make([]byte, 8<<10)}}), 1), false,
			func(err error) bool { return errors.Is(err, ErrTooLarge) }},
		{"deadline", hello[:30], false, func(err error) bool {
			var ne net.Error
			return errors.As(err, &ne) && ne.Timeout()
		}},
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
			if _, err := c.Write(tt.send); err != nil {
				t.Fatal(err)
			}
			if tt.close {
				c.Close()
			}
			s, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			_, buf, err := PeekClientHello(s, time.Now().Add(200*time.Millisecond))
			if !tt.want(err) {
				t.Fatalf("err = %v", err)
			}
			if !bytes.HasPrefix(tt.send, buf) {
				t.Fatalf("buffered %q is not a prefix of what was sent", buf)
			}
		})
	}
}

// splitWriter writes at most n bytes per underlying Write.
type splitWriter struct {
	net.Conn
	n int
}

func (w *splitWriter) Write(p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		k := min(w.n, len(p))
		m, err := w.Conn.Write(p[:k])
		total += m
		if err != nil {
			return total, err
		}
		p = p[k:]
	}
	return total, nil
}

// prefixConn replays prefix before reading from Conn.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

func FuzzParseClientHello(f *testing.F) {
	f.Add(records(helloMsg([]ext{sniExt("a.test.com")}), 1<<14))
	f.Add(records(helloMsg([]ext{sniExt("A.b."), {extALPN, []byte{0, 3, 2, 'h', '2'}}, {extSupportedVersions, []byte{2, 3, 4}}}), 9))
	f.Add(records(helloMsg(nil), 3))
	f.Add([]byte("GET /"))
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := ParseClientHello(data)
		if errors.Is(err, ErrNeedMore) && len(data) >= MaxPeekSize {
			t.Fatalf("ErrNeedMore with %d bytes", len(data))
		}
		if err != nil {
			return
		}
		if info.ServerName != NormalizeSNI(info.ServerName) {
			t.Fatalf("ServerName %q not normalised", info.ServerName)
		}
		// Bytes after a complete hello do not change the result.
		again, err := ParseClientHello(append(slices.Clip(data), 0x17, 3, 3, 0, 1, 0))
		if err != nil || again.ServerName != info.ServerName {
			t.Fatalf("with trailing bytes: %+v, %v; before %+v", again, err, info)
		}
	})
}
