//go:build linux

package realclients

import (
	"encoding/hex"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// sniHeader starts openssl s_server -tlsextdebug's dump of a ClientHello's
// server_name extension; the extension's bytes follow as hex dump lines.
var sniHeader = regexp.MustCompile(`^TLS client extension "server name" \(id=0\), len=(\d+)$`)

// dumpLine is one BIO_dump line: offset, " - ", 16 bytes as "xx " with a
// '-' after the eighth, padding, two spaces and the printable bytes.
var dumpLine = regexp.MustCompile(`^\s*[0-9a-f]{4} - (.{48})`)

// hexByte is one byte inside a dump line's hex columns.
var hexByte = regexp.MustCompile(`[0-9a-f]{2}`)

// parseSNIDump returns the host names of every server_name extension in
// openssl s_server -tlsextdebug output, in order. The names are decoded
// from the hex columns (RFC 6066: list length, type 0, name length,
// name), not read from the printable column, which wraps and hides
// bytes.
func parseSNIDump(out string) ([]string, error) {
	var names []string
	lines := strings.Split(out, "\n")
	for i := 0; i < len(lines); i++ {
		m := sniHeader.FindStringSubmatch(strings.TrimRight(lines[i], "\r"))
		if m == nil {
			continue
		}
		want, err := strconv.Atoi(m[1])
		if err != nil || want > 1<<16 {
			return nil, fmt.Errorf("line %d: bad length %q", i+1, m[1])
		}
		var ext []byte
		for len(ext) < want {
			i++
			if i == len(lines) {
				return nil, fmt.Errorf("server name extension: %d of %d bytes", len(ext), want)
			}
			d := dumpLine.FindStringSubmatch(lines[i])
			if d == nil {
				return nil, fmt.Errorf("line %d: not a dump line: %q", i+1, lines[i])
			}
			for _, h := range hexByte.FindAllString(d[1], -1) {
				b, _ := hex.DecodeString(h)
				ext = append(ext, b...)
			}
		}
		if len(ext) != want {
			return nil, fmt.Errorf("server name extension: %d bytes, header says %d", len(ext), want)
		}
		name, err := decodeServerName(ext)
		if err != nil {
			return nil, err
		}
		names = append(names, name)
	}
	return names, nil
}

// decodeServerName returns the host_name of a server_name extension body.
func decodeServerName(ext []byte) (string, error) {
	if len(ext) < 5 {
		return "", fmt.Errorf("server name extension too short: % x", ext)
	}
	list := int(ext[0])<<8 | int(ext[1])
	n := int(ext[3])<<8 | int(ext[4])
	if list != len(ext)-2 || ext[2] != 0 || n != len(ext)-5 {
		return "", fmt.Errorf("server name extension malformed: % x", ext)
	}
	return string(ext[5:]), nil
}

func TestParseSNIDump(t *testing.T) {
	// Real s_server -tlsextdebug output (OpenSSL 3.0) for -servername hello.example.
	real := `ACCEPT
TLS client extension "server name" (id=0), len=18
0000 - 00 10 00 00 0d 68 65 6c-6c 6f 2e 65 78 61 6d 70   .....hello.examp
0010 - 6c 65                                             le
TLS client extension "EC point formats" (id=11), len=4
0000 - 03 00 01 02                                       ....
`
	tests := []struct {
		name string
		in   string
		want []string
		err  bool
	}{
		{"real", real, []string{"hello.example"}, false},
		{"two connections", real + real, []string{"hello.example", "hello.example"}, false},
		{"none", "ACCEPT\n", nil, false},
		{"cut short", strings.Join(strings.Split(real, "\n")[:3], "\n"), nil, true},
		{"bad length", strings.Replace(real, "len=18", "len=17", 1), nil, true},
		{"not a dump", strings.Replace(real, "0010 - ", "0010 ", 1), nil, true},
	}
	for _, tt := range tests {
		got, err := parseSNIDump(tt.in)
		if (err != nil) != tt.err {
			t.Errorf("%s: error %v, want error %v", tt.name, err, tt.err)
			continue
		}
		if !tt.err && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

func FuzzParseSNIDump(f *testing.F) {
	f.Add("TLS client extension \"server name\" (id=0), len=8\n0000 - 00 06 00 00 03 61 62 63                           .....abc\n")
	f.Add("TLS client extension \"server name\" (id=0), len=99999\n")
	f.Fuzz(func(t *testing.T, s string) {
		names, err := parseSNIDump(s)
		if err == nil && len(names) > strings.Count(s, "server name") {
			t.Fatalf("%d names from %d extensions", len(names), strings.Count(s, "server name"))
		}
	})
}
