package integration

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startRedis runs redis-server on a free loopback port, without
// persistence, stopped by PID when the test ends; it returns the address.
func startRedis(t *testing.T) string {
	t.Helper()
	bin := needTool(t, "redis-server", "redis-server")
	cli := needTool(t, "redis-cli", "redis-tools")
	dir := t.TempDir()
	port := freePort(t)
	cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--dir", dir, "--daemonize", "no")
	cmd.Env = testEnv(dir)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	addr := hostPort("127.0.0.1", port)
	deadline := time.Now().Add(startWait)
	for {
		if o, _, err := runTool(t, "", cli, "-h", "127.0.0.1", "-p", fmt.Sprint(port), "ping"); err == nil && strings.TrimSpace(o) == "PONG" {
			return addr
		}
		select {
		case <-done:
			t.Fatalf("redis-server exited:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server not ready after %v:\n%s", startWait, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
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

// TestRealClients drives the proxy with real protocol clients: redis-cli
// against redis-server over TCP, and dig against a DNS server over UDP.
func TestRealClients(t *testing.T) {
	cli := needTool(t, "redis-cli", "redis-tools")
	dig := needTool(t, "dig", "dnsutils")
	redis := startRedis(t)
	dns := dnsServer(t)
	tcpPort, udpPort := freePort(t), freePort(t)
	p := startCaddy(t, caddyConfig{Apisix: map[string]any{
		"stream_proxy": map[string]any{"tcp": []any{hostPort("127.0.0.1", tcpPort)}, "udp": []any{udpPort}},
	}})
	p.put(t, "stream_routes/redis", map[string]any{"server_port": tcpPort,
		"upstream": map[string]any{"nodes": map[string]int{redis: 1}}})
	p.put(t, "stream_routes/dns", map[string]any{"server_port": udpPort,
		"upstream": map[string]any{"nodes": map[string]int{dns: 1}}})

	t.Run("redis-cli", func(t *testing.T) {
		for _, step := range []struct {
			args []string
			want string
		}{
			{[]string{"SET", "apisix", "stream"}, "OK"},
			{[]string{"GET", "apisix"}, "stream"},
			{[]string{"DEL", "apisix"}, "1"},
		} {
			out, errOut, err := runTool(t, "", cli, append([]string{"-h", "127.0.0.1", "-p", fmt.Sprint(tcpPort)}, step.args...)...)
			if err != nil || strings.TrimSpace(out) != step.want {
				t.Fatalf("redis-cli %v: %q %q %v, want %q", step.args, out, errOut, err, step.want)
			}
		}
	})
	t.Run("dig", func(t *testing.T) {
		for _, server := range []string{"127.0.0.1", "::1"} {
			out, errOut, err := runTool(t, "", dig, "@"+server, "-p", fmt.Sprint(udpPort), "+short", "+tries=1", "+time=3", "apisix.test", "A")
			if err != nil || strings.TrimSpace(out) != "127.0.0.53" {
				t.Fatalf("dig @%s: %q %q %v, want 127.0.0.53", server, out, errOut, err)
			}
		}
	})
}

// startMariaDB initialises a throwaway MariaDB data directory and runs
// mariadbd on a free loopback port (root, no password), stopped by PID
// when the test ends; it returns the port.
func startMariaDB(t *testing.T) int {
	t.Helper()
	install := needTool(t, "mariadb-install-db", "mariadb-server")
	server := needTool(t, "mariadbd", "mariadb-server")
	client := needTool(t, "mysql", "mariadb-client")
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	userArgs := []string{}
	if os.Geteuid() == 0 {
		userArgs = []string{"--user=root"}
	}
	args := append([]string{"--no-defaults", "--datadir=" + data, "--auth-root-authentication-method=normal", "--skip-test-db"}, userArgs...)
	if out, errOut, err := runTool(t, "", install, args...); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s%s", err, out, errOut)
	}
	port := freePort(t)
	cmd := exec.Command(server, append([]string{"--no-defaults", "--datadir=" + data,
		fmt.Sprintf("--port=%d", port), "--bind-address=127.0.0.1", "--socket=" + filepath.Join(dir, "mysqld.sock"),
		"--pid-file=" + filepath.Join(dir, "mysqld.pid"), "--skip-log-bin"}, userArgs...)...)
	cmd.Env = testEnv(dir)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(startWait)
	for {
		if _, _, err := runTool(t, "", client, "--host=127.0.0.1", fmt.Sprintf("--port=%d", port), "-u", "root", "-e", "select 1"); err == nil {
			return port
		}
		select {
		case <-done:
			t.Fatalf("mariadbd exited:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("mariadbd not ready after %v:\n%s", startWait, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestMySQLThroughProxy is the seed document's MySQL example with a real
// server: a route with server_addr 127.0.0.10 and server_port serves the
// mysql client; the bare port, whose filter fails, loses the connection
// with ERROR 2013.
func TestMySQLThroughProxy(t *testing.T) {
	client := needTool(t, "mysql", "mariadb-client")
	db := startMariaDB(t)
	bare, bound := freePort(t), freePort(t)
	p := startCaddy(t, caddyConfig{Apisix: map[string]any{
		"stream_proxy": map[string]any{"tcp": []any{bare, hostPort("127.0.0.10", bound)}},
	}})
	p.put(t, "stream_routes/1", map[string]any{"server_addr": "127.0.0.10", "server_port": bound,
		"upstream": map[string]any{"nodes": map[string]int{hostPort("127.0.0.1", db): 1}, "type": "roundrobin"}})
	out, errOut, err := runTool(t, "", client, "--host=127.0.0.10", fmt.Sprintf("--port=%d", bound), "-u", "root",
		"--batch", "--skip-column-names", "-e", "select 6*7")
	if err != nil || strings.TrimSpace(out) != "42" {
		t.Fatalf("mysql through the proxy: %q %q %v, want 42", out, errOut, err)
	}
	_, errOut, err = runTool(t, "", client, "--host=127.0.0.1", fmt.Sprintf("--port=%d", bare), "-u", "root",
		"--connect-timeout=5", "-e", "select 1")
	if err == nil || !strings.Contains(errOut, "ERROR 2013") {
		t.Fatalf("mysql on the bare port: %q %v, want ERROR 2013 (lost connection)", errOut, err)
	}
}
