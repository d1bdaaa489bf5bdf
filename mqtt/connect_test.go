package mqtt

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
)

// Packets captured from mosquitto_pub 2.0 (Debian bookworm) against a
// plain listener, and the ones t/stream-plugin/mqtt-proxy.t sends.
var (
	mosquitto311  = mustHex("101400044d5154540402003c000873656e736f722d31")
	mosquitto5    = mustHex("102400044d5154540502003c0f1100000e102600016b000176210014000873656e736f722d35")
	mosquittoWill = mustHex("101e00044d51545404c6003c00017800017700036279650003626f6200027077")
	mosquitto5Nil = mustHex("101000044d5154540502003c032100140000")
	apisix311     = []byte("\x10\x0f\x00\x04\x4d\x51\x54\x54\x04\x02\x00\x3c\x00\x03\x66\x6f\x6f")
	apisix5Empty  = []byte("\x10\x0d\x00\x04\x4d\x51\x54\x54\x05\x02\x00\x3c\x00\x00\x00")
	apisix5Props  = []byte("\x10\x1b\x00\x04\x4d\x51\x54\x54\x05\x02\x00\x3c\x05\x11\x00\x00\x0e\x10\x00\x09\x63\x6c\x69\x6e\x74\x2d\x31\x31\x31")
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// connect builds a CONNECT packet by hand: props is the MQTT 5 property
// block (level 5 only), and the remaining length is encoded as a varint.
func connect(name string, level byte, props []byte, id string) []byte {
	var v []byte
	v = append(v, byte(len(name)>>8), byte(len(name)))
	v = append(v, name...)
	v = append(v, level, 0x02, 0x00, 0x3c)
	if level == 5 {
		v = append(v, encodeVarint(len(props))...)
		v = append(v, props...)
	}
	v = append(v, byte(len(id)>>8), byte(len(id)))
	v = append(v, id...)
	return append(append([]byte{0x10}, encodeVarint(len(v))...), v...)
}

func encodeVarint(n int) []byte {
	var out []byte
	for {
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 128
		}
		out = append(out, b)
		if n == 0 {
			return out
		}
	}
}

func TestParseConnect(t *testing.T) {
	long := strings.Repeat("c", 300)
	bigProps := bytes.Repeat([]byte{0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v'}, 30) // 210 bytes of user properties
	tests := []struct {
		name  string
		in    []byte
		want  Connect
		err   string // "" ok; "incomplete"; else the PacketError text
		check string // Check("MQTT", level) error, "" for none
		level int
	}{
		{name: "mosquitto_pub 3.1.1", in: mosquitto311, want: Connect{"MQTT", 4, "sensor-1", 22}, level: 4},
		{name: "mosquitto_pub 5 with properties", in: mosquitto5, want: Connect{"MQTT", 5, "sensor-5", 38}, level: 5},
		{name: "mosquitto_pub 3.1.1 with will and password", in: mosquittoWill, want: Connect{"MQTT", 4, "x", 32}, level: 4},
		{name: "mosquitto_pub 5 empty client id", in: mosquitto5Nil, want: Connect{"MQTT", 5, "", 18}, level: 5},
		{name: "apisix 3.1.1", in: apisix311, want: Connect{"MQTT", 4, "foo", 17}, level: 4},
		{name: "apisix 5 empty properties", in: apisix5Empty, want: Connect{"MQTT", 5, "", 15}, level: 5},
		{name: "apisix 5 properties", in: apisix5Props, want: Connect{"MQTT", 5, "clint-111", 29}, level: 5},
		{name: "two-byte remaining length", in: connect("MQTT", 4, nil, long), want: Connect{"MQTT", 4, long, 3 + 12 + 300}, level: 4},
		{name: "two-byte properties length", in: connect("MQTT", 5, bigProps, "p"), want: Connect{"MQTT", 5, "p", 3 + 13 + 2 + 210}, level: 5},
		{name: "MQIsdp 3.1", in: connect("MQIsdp", 3, nil, "old"), want: Connect{"MQIsdp", 3, "old", 2 + 17}, level: 3,
			check: "expect protocol name: MQTT, but got MQIsdp"},
		{name: "level mismatch", in: apisix311, want: Connect{"MQTT", 4, "foo", 17}, level: 5,
			check: "expect protocol level: 5, but got 4"},
		{name: "trailing bytes ignored", in: append(append([]byte{}, apisix311...), 0x30, 0x02, 'a', 'b'), want: Connect{"MQTT", 4, "foo", 17}, level: 4},
		{name: "first byte 32 accepted as APISIX", in: append([]byte{32}, apisix311[1:]...), want: Connect{"MQTT", 4, "foo", 17}, level: 4},
		{name: "first byte 0x12 accepted as APISIX", in: append([]byte{0x12}, apisix311[1:]...), want: Connect{"MQTT", 4, "foo", 17}, level: 4},

		{name: "empty", in: nil, err: "incomplete"},
		{name: "fixed header only", in: []byte("\x10\x0f"), err: "incomplete"},
		{name: "four bytes", in: apisix311[:4], err: "incomplete"},
		{name: "half a packet", in: apisix311[:10], err: "incomplete"},
		{name: "all but one byte", in: mosquitto5[:len(mosquitto5)-1], err: "incomplete"},

		{name: "mmm", in: []byte("mmmmm"), err: "Received unexpected MQTT packet type+flags: 109"},
		{name: "first byte 15", in: append([]byte{15}, apisix311[1:]...), err: "Received unexpected MQTT packet type+flags: 15"},
		{name: "first byte 33", in: append([]byte{33}, apisix311[1:]...), err: "Received unexpected MQTT packet type+flags: 33"},
		{name: "PUBLISH", in: []byte("\x30\x05\x00\x01tab"), err: "Received unexpected MQTT packet type+flags: 48"},
		{name: "TLS ClientHello passes the type check", in: []byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc"), err: "failed to parse mqtt request: no client id length"},
		{name: "too large", in: []byte("\x10\xff\xff\x01\x00"), err: "failed to read the Connect Command: packet of 32771 bytes exceeds 16384"},
		{name: "five-byte varint stops at four", in: []byte("\x10\xff\xff\xff\xff\x7f"), err: "failed to read the Connect Command: packet of 268435460 bytes exceeds 16384"},
		{name: "client id past the end", in: []byte("\x10\x0f\x00\x04MQTT\x04\x02\x00\x3c\x00\x04foo"),
			err: "failed to parse mqtt request, expect len: 18 but got 17"},
		{name: "no room for client id length", in: []byte("\x10\x0a\x00\x04MQTT\x04\x02\x00\x3c"),
			err: "failed to parse mqtt request: no client id length"},
		{name: "remaining length 0", in: []byte("\x10\x00\x10\x00\x00"), err: "failed to parse mqtt request: no protocol name length"},
		{name: "name past the end", in: []byte("\x10\x06\x00\x09MQTT"), err: "failed to parse mqtt request: no client id length"},
		{name: "properties past the end", in: []byte("\x10\x0f\x00\x04MQTT\x05\x02\x00\x3c\x09\x00\x00\x00\x00"),
			err: "failed to parse mqtt request: no client id length"},
		{name: "properties length cut", in: []byte("\x10\x0b\x00\x04MQTT\x05\x02\x00\x3c\x80"),
			err: "failed to parse mqtt request: truncated properties length"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConnect(tt.in)
			switch {
			case tt.err == "incomplete":
				if !errors.Is(err, ErrIncomplete) {
					t.Fatalf("err = %v, want ErrIncomplete", err)
				}
				return
			case tt.err != "":
				var pe *PacketError
				if !errors.As(err, &pe) || pe.Msg != tt.err {
					t.Fatalf("err = %v, want PacketError %q", err, tt.err)
				}
				return
			case err != nil:
				t.Fatalf("err = %v", err)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			cerr := got.Check("MQTT", tt.level)
			if (cerr == nil) != (tt.check == "") || (cerr != nil && cerr.Error() != tt.check) {
				t.Fatalf("Check = %v, want %q", cerr, tt.check)
			}
		})
	}
}

// chunks is a reader that hands out its bytes n at a time.
type chunks struct {
	b []byte
	n int
}

func (c *chunks) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	k := min(c.n, len(p), len(c.b))
	copy(p, c.b[:k])
	c.b = c.b[k:]
	return k, nil
}

func TestReadConnect(t *testing.T) {
	big := connect("MQTT", 5, bytes.Repeat([]byte{0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v'}, 2000), "big-one")
	tests := []struct {
		name    string
		in      []byte
		chunk   int
		id      string
		readAll bool // every byte of in is returned
		err     string
	}{
		{name: "one read", in: mosquitto311, chunk: 4096, id: "sensor-1", readAll: true},
		{name: "byte by byte", in: mosquitto5, chunk: 1, id: "sensor-5", readAll: true},
		{name: "three at a time", in: apisix5Props, chunk: 3, id: "clint-111", readAll: true},
		{name: "14k packet in 1000-byte reads", in: big, chunk: 1000, id: "big-one", readAll: true},
		{name: "pipelined PUBLISH kept", in: append(append([]byte{}, apisix311...), 0x30, 0x03, 0x00, 0x01, 't'), chunk: 4096, id: "foo", readAll: true},
		{name: "ends after the fixed header", in: []byte("\x10\x0f"), chunk: 4096, err: io.ErrUnexpectedEOF.Error()},
		{name: "ends mid packet", in: mosquitto5[:20], chunk: 7, err: io.ErrUnexpectedEOF.Error()},
		{name: "bad packet", in: []byte("mmm\n\n"), chunk: 4096, err: "Received unexpected MQTT packet type+flags: 109"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, raw, err := ReadConnect(&chunks{b: tt.in, n: tt.chunk})
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.ClientID != tt.id {
				t.Fatalf("client id %q, want %q", c.ClientID, tt.id)
			}
			if !bytes.HasPrefix(tt.in, raw) || len(raw) < c.Size || (tt.readAll && tt.chunk >= len(tt.in) && !bytes.Equal(raw, tt.in)) {
				t.Fatalf("raw bytes %x are not the input's %x", raw, tt.in)
			}
			if tt.chunk < len(tt.in) && len(raw) != c.Size && len(raw)-c.Size >= tt.chunk {
				t.Fatalf("read %d bytes past the %d-byte packet", len(raw)-c.Size, c.Size)
			}
		})
	}
}

func FuzzParseConnect(f *testing.F) {
	for _, p := range [][]byte{mosquitto311, mosquitto5, mosquittoWill, mosquitto5Nil, apisix311, apisix5Empty, apisix5Props,
		[]byte("mmmmm"), []byte("\x10\x0f"), connect("MQTT", 5, []byte{0x11, 0, 0, 0, 1}, "z")} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConnect(b)
		if err != nil {
			var pe *PacketError
			if !errors.Is(err, ErrIncomplete) && !errors.As(err, &pe) {
				t.Fatalf("unexpected error type %T", err)
			}
			if errors.Is(err, ErrIncomplete) && len(b) > MaxPacketSize {
				t.Fatalf("incomplete after %d bytes", len(b))
			}
			return
		}
		if c.Size > len(b) || c.Size > MaxPacketSize || !bytes.Contains(b[:c.Size], []byte(c.ClientID)) {
			t.Fatalf("result %+v does not fit the input", c)
		}
		// The packet alone parses the same, and every prefix of it that
		// has the fixed header is incomplete.
		if again, err := ParseConnect(b[:c.Size]); err != nil || again != c {
			t.Fatalf("the packet alone gives %+v, %v", again, err)
		}
		for k := 0; k < c.Size; k++ {
			if _, err := ParseConnect(b[:k]); !errors.Is(err, ErrIncomplete) {
				t.Fatalf("prefix of %d bytes: %v", k, err)
			}
		}
		// Reading it in pieces finds the same packet.
		got, raw, err := ReadConnect(&chunks{b: b, n: 1 + len(b)%7})
		if err != nil || got != c || !bytes.HasPrefix(b, raw) {
			t.Fatalf("ReadConnect: %+v, %v", got, err)
		}
	})
}

func BenchmarkParseConnect(b *testing.B) {
	b.ReportAllocs()
	for range b.N {
		if _, err := ParseConnect(mosquitto5); err != nil {
			b.Fatal(err)
		}
	}
}
