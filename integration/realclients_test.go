//go:build linux

package integration

import (
	"encoding/binary"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// The real clients and servers (mysql, MariaDB, redis, openssl, curl)
// are driven by ./realclients and ./admine2e; this package keeps the one
// check they do not make: dig asking over IPv6.

// needTool returns the path of a command-line client the test drives; a
// missing one fails the test (never skips) with what to install.
func needTool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is needed by this test and is not installed: apt-get install -y %s", name, debianPackage)
	}
	return path
}

// runTool runs a command-line client to completion (bounded) with stdin
// and returns its stdout and stderr.
func runTool(t *testing.T, stdin string, name string, args ...string) (string, string, error) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = e2e.Env(dir)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr e2e.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	timer := time.AfterFunc(20*time.Second, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	err := cmd.Wait()
	return stdout.String(), stderr.String(), err
}

// dnsServer answers every A query on a loopback UDP port with 127.0.0.53
// and returns the address. It understands just enough DNS for dig.
func dnsServer(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	t.Cleanup(func() { pc.Close(); wg.Wait() })
	go func() {
		defer wg.Done()
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if n < 12 {
				continue
			}
			// the question ends after the name's zero label and 4 bytes
			end := 12
			for end < n && buf[end] != 0 {
				end += int(buf[end]) + 1
			}
			end += 5
			if end > n {
				continue
			}
			resp := append([]byte{}, buf[:end]...)
			resp[2] = 0x84 | (buf[2] & 0x01) // QR, AA, keep RD
			resp[3] = 0x00                   // no error
			binary.BigEndian.PutUint16(resp[4:], 1)
			binary.BigEndian.PutUint16(resp[6:], 1)
			binary.BigEndian.PutUint16(resp[8:], 0)
			binary.BigEndian.PutUint16(resp[10:], 0)
			resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 53)
			_, _ = pc.WriteTo(resp, from)
		}
	}()
	return pc.LocalAddr().String()
}

// TestDigOverIPv6 sends dig's question to a UDP stream_proxy listener
// on a bare port from ::1: the listener binds all interfaces, IPv6
// included, and the answer comes back to the IPv6 client. (dig over
// 127.0.0.1, redis-cli, mysql and openssl run in ./realclients.)
func TestDigOverIPv6(t *testing.T) {
	dig := needTool(t, "dig", "dnsutils")
	dns := dnsServer(t)
	udpPort := freePort(t)
	p := startCaddy(t, caddyConfig{Apisix: map[string]any{
		"stream_proxy": map[string]any{"udp": []any{udpPort}},
	}})
	p.put(t, "stream_routes/dns", map[string]any{"server_port": udpPort,
		"upstream": map[string]any{"nodes": map[string]int{dns: 1}}})
	out, errOut, err := runTool(t, "", dig, "@::1", "-p", fmt.Sprint(udpPort), "+short", "+tries=1", "+time=3", "apisix.test", "A")
	if err != nil || strings.TrimSpace(out) != "127.0.0.53" {
		t.Fatalf("dig @::1: %q %q %v, want 127.0.0.53", out, errOut, err)
	}
}
