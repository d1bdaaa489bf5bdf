//go:build linux

package integration

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// tcpListening reports whether something accepts TCP connections at addr.
func tcpListening(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// TestLayer4StaticModules runs the plugin's modules inside hand-written
// layer4 servers: layer4.matchers.apisix with layer4.handlers.apisix_proxy
// (a static upstream with two nodes), and layer4.handlers.apisix serving
// the live stream routes over TCP and UDP.
func TestLayer4StaticModules(t *testing.T) {
	a, b, live := newBackend(t, "static-a"), newBackend(t, "static-b"), newBackend(t, "live")
	staticPort, dispatchPort, udpPort, apisixPort := freePort(t), freePort(t), freePort(t), freePort(t)
	static := hostPort("127.0.0.1", staticPort)
	dispatch := hostPort("127.0.0.1", dispatchPort)
	server := func(listen string, route map[string]any) map[string]any {
		return map[string]any{"listen": []string{listen}, "routes": []any{route}}
	}
	p := startCaddy(t, caddyConfig{
		Apisix: map[string]any{"stream_proxy": map[string]any{"tcp": []any{hostPort("127.0.0.1", apisixPort)}}},
		Apps: map[string]any{"layer4": map[string]any{"servers": map[string]any{
			"static": server(static, map[string]any{
				"match": []any{map[string]any{"apisix": map[string]any{"remote_addr": "127.0.0.2/31"}}},
				"handle": []any{map[string]any{"handler": "apisix_proxy",
					"upstream": map[string]any{"type": "roundrobin", "nodes": nodes(a, b)}}},
			}),
			"dispatch": server(dispatch, map[string]any{"handle": []any{map[string]any{"handler": "apisix"}}}),
			"dispatch-udp": server("udp/"+hostPort("127.0.0.1", udpPort),
				map[string]any{"handle": []any{map[string]any{"handler": "apisix"}}}),
		}}},
		Ready: func(p *caddyProc) error {
			if err := e2e.ApisixReady(p.admin, adminKey)(); err != nil {
				return err
			}
			if err := tcpListening(static); err != nil {
				return err
			}
			return tcpListening(dispatch)
		},
	})

	t.Run("apisix matcher and apisix_proxy", func(t *testing.T) {
		seen := map[string]int{}
		for i := range 10 {
			src := fmt.Sprintf("127.0.0.%d", 2+i%2)
			seen[whoTCP(t, src, static)]++
		}
		if seen["static-a"] != 5 || seen["static-b"] != 5 {
			t.Fatalf("10 connections reached %v, want 5 each on static-a and static-b", seen)
		}
		if got := whoTCP(t, "127.0.0.1", static); got != "" {
			t.Fatalf("a client outside remote_addr was answered by %q, want the connection closed", got)
		}
	})
	t.Run("apisix handler serves the live routes", func(t *testing.T) {
		if got := whoTCP(t, "127.0.0.1", dispatch); got != "" {
			t.Fatalf("before any route: answered by %q, want a silent close", got)
		}
		p.put(t, "stream_routes/tcp", map[string]any{"server_port": dispatchPort, "upstream": upstreamOf(live)})
		p.put(t, "stream_routes/udp", map[string]any{"server_port": udpPort, "upstream": upstreamOf(live)})
		if got := whoTCP(t, "127.0.0.1", dispatch); got != "live" {
			t.Fatalf("tcp: answered by %q, want live", got)
		}
		if got := whoUDP(t, "127.0.0.1", hostPort("127.0.0.1", udpPort)); got != "live" {
			t.Fatalf("udp: answered by %q, want live", got)
		}
		// the apisix listener is a separate port: the route filter keeps it out
		if got := whoTCP(t, "127.0.0.1", hostPort("127.0.0.1", apisixPort)); got != "" {
			t.Fatalf("stream_proxy port: answered by %q, want a silent close", got)
		}
	})
}

// TestLayer4Prefetched checks that bytes caddy-l4 read ahead for its
// matchers reach the upstream: a ClientHello that the apisix matcher's
// sni read (the backend's certificate, verified by the client, proves the
// TLS stream arrived intact), and data a client sends before the backend
// speaks. It also runs UDP sessions (one per client, 8 KiB datagrams)
// through the apisix handler in a layer4 server.
func TestLayer4Prefetched(t *testing.T) {
	certA := newTestCert(t, "a.test.com")
	tlsA := newTLSBackend(t, "tls-a", certA)
	plainBe, udpBe := newBackend(t, "plain"), newBackend(t, "udp-l4")
	tlsPort, plainPort, udpPort, apisixPort := freePort(t), freePort(t), freePort(t), freePort(t)
	tlsAddr, plainAddr := hostPort("127.0.0.1", tlsPort), hostPort("127.0.0.1", plainPort)
	proxyRoute := func(match map[string]any, up map[string]any) map[string]any {
		r := map[string]any{"handle": []any{map[string]any{"handler": "apisix_proxy", "upstream": up}}}
		if match != nil {
			r["match"] = []any{map[string]any{"apisix": match}}
		}
		return r
	}
	p := startCaddy(t, caddyConfig{
		Apisix: map[string]any{"stream_proxy": map[string]any{"tcp": []any{hostPort("127.0.0.1", apisixPort)}}},
		Apps: map[string]any{"layer4": map[string]any{"servers": map[string]any{
			"sni": map[string]any{"listen": []string{tlsAddr}, "routes": []any{
				proxyRoute(map[string]any{"sni": "a.test.com"}, map[string]any{"nodes": map[string]int{tlsA: 1}}),
			}},
			"plain": map[string]any{"listen": []string{plainAddr}, "routes": []any{
				proxyRoute(map[string]any{"remote_addr": "127.0.0.0/8"}, upstreamOf(plainBe)),
			}},
			"udp": map[string]any{"listen": []string{"udp/" + hostPort("127.0.0.1", udpPort)}, "routes": []any{
				map[string]any{"handle": []any{map[string]any{"handler": "apisix"}}},
			}},
		}}},
		Ready: func(p *caddyProc) error {
			if err := e2e.ApisixReady(p.admin, adminKey)(); err != nil {
				return err
			}
			if err := tcpListening(tlsAddr); err != nil {
				return err
			}
			return tcpListening(plainAddr)
		},
	})
	t.Run("ClientHello read by the sni matcher", func(t *testing.T) {
		if got := whoTLS(t, "127.0.0.1", tlsAddr, "a.test.com", certA.Pool()); got != "tls-a sni=a.test.com" {
			t.Fatalf("answered %q", got)
		}
	})
	t.Run("client speaks first", func(t *testing.T) {
		c, err := dialFrom("127.0.0.1", plainAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(answerWait))
		if _, err := io.WriteString(c, "early\n"); err != nil {
			t.Fatal(err)
		}
		want := "plain\nearly\n"
		got := make([]byte, len(want))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != want {
			t.Fatalf("read %q, %v; want %q", got, err, want)
		}
	})
	t.Run("udp sessions", func(t *testing.T) {
		p.put(t, "stream_routes/udp", map[string]any{"server_port": udpPort, "upstream": upstreamOf(udpBe)})
		addr := hostPort("127.0.0.1", udpPort)
		// caddy-l4 reads datagrams into 9000-byte buffers (layer4/server.go
		// udpBufPool), so larger ones cannot pass a user's layer4 server
		big := make([]byte, 8<<10)
		if _, err := pattern(5).Read(big); err != nil {
			t.Fatal(err)
		}
		for i, msg := range [][]byte{[]byte("one"), []byte("two"), big} {
			c := udpFrom(t, "127.0.0.1", addr)
			name, echo, ok := udpAsk(t, c, msg, answerWait)
			if !ok || name != udpBe.Name || !bytes.Equal(echo, msg) {
				t.Fatalf("client %d: reply from %q with %d bytes (ok %v); want %q echoing %d bytes", i, name, len(echo), ok, udpBe.Name, len(msg))
			}
		}
		if n := udpBe.Peers(); n != 3 {
			t.Fatalf("the backend saw %d upstream sockets, want 3 (one per client)", n)
		}
	})
}
