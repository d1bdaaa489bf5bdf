//go:build linux

package integration

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

// proxyV2 builds a PROXY protocol v2 header for a TCP over IPv4 connection.
func proxyV2(src, dst netip.AddrPort) []byte {
	b := []byte("\r\n\r\n\x00\r\nQUIT\n")
	b = append(b, 0x21, 0x11, 0, 12)
	s, d := src.Addr().As4(), dst.Addr().As4()
	b = append(b, s[:]...)
	b = append(b, d[:]...)
	b = binary.BigEndian.AppendUint16(b, src.Port())
	return binary.BigEndian.AppendUint16(b, dst.Port())
}

// TestProxyProtocol checks proxy_protocol listeners (the header's source
// becomes remote_addr; a client without a header is closed) and
// proxy_protocol_to_upstream (the node receives a v1 header naming the
// real client and listener).
func TestProxyProtocol(t *testing.T) {
	viaPP := newBackend(t, "via-pp")
	headers := make(chan string, 1)
	headerEcho := tcpServer(t, func(c *net.TCPConn) {
		_ = c.SetDeadline(time.Now().Add(answerWait))
		line, _ := bufio.NewReader(c).ReadString('\n')
		headers <- line
		_, _ = io.WriteString(c, "seen\n")
	})
	in, out := freePort(t), freePort(t)
	startCaddy(t, caddyConfig{Apisix: map[string]any{
		"stream_proxy": map[string]any{"tcp": []any{
			map[string]any{"addr": hostPort("127.0.0.1", in), "proxy_protocol": true},
			map[string]any{"addr": hostPort("127.0.0.1", out), "proxy_protocol_to_upstream": true},
		}},
		"stream_routes": []any{
			route("1", map[string]any{"remote_addr": "127.0.0.99", "server_port": in}, viaPP),
			map[string]any{"id": "2", "server_port": out, "upstream": map[string]any{"nodes": map[string]int{headerEcho: 1}}},
		},
	}})
	inAddr := hostPort("127.0.0.1", in)
	tests := []struct {
		name   string
		header []byte
		want   string
	}{
		{"v1 header", []byte(fmt.Sprintf("PROXY TCP4 127.0.0.99 127.0.0.1 5555 %d\r\n", in)), "via-pp"},
		{"v2 header", proxyV2(netip.MustParseAddrPort("127.0.0.99:5555"), netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(in))), "via-pp"},
		{"header with another source: no route", []byte(fmt.Sprintf("PROXY TCP4 127.0.0.98 127.0.0.1 5555 %d\r\n", in)), ""},
		{"no header: closed", []byte("hello there\r\n"), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := dialFrom("127.0.0.1", inAddr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write(tc.header); err != nil {
				t.Fatal(err)
			}
			got, err := greeting(c)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("answered by %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("to upstream", func(t *testing.T) {
		c, err := dialFrom("127.0.0.7", hostPort("127.0.0.1", out))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got, err := greeting(c); err != nil || got != "seen" {
			t.Fatalf("greeting %q, %v", got, err)
		}
		srcPort := c.LocalAddr().(*net.TCPAddr).Port
		want := fmt.Sprintf("PROXY TCP4 127.0.0.7 127.0.0.1 %d %d\r\n", srcPort, out)
		if got := <-headers; got != want {
			t.Fatalf("upstream received %q, want %q", got, want)
		}
	})
}
