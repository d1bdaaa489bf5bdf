package integration

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

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
	cmd.Env = testEnv(dir)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	timer := time.AfterFunc(20*time.Second, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	err := cmd.Wait()
	return stdout.String(), stderr.String(), err
}

// oneShotBackend writes its name and a newline to each connection and
// closes it, so clients that read to EOF (openssl s_client) finish.
func oneShotBackend(t *testing.T, name string) string {
	return tcpServer(t, func(c *net.TCPConn) {
		_, _ = fmt.Fprintf(c, "%s\n", name)
	})
}

// lineTCP connects from src to dst and returns the first line, "" on a
// silent close.
func lineTCP(t *testing.T, src, dst string) string {
	t.Helper()
	c, line := firstLine(t, src, dst)
	c.Close()
	return line
}

// TestSeedDocWalkthrough replays the user document
// seed/apisix-stream-proxy.md with the real tools it uses: its
// stream_proxy config and its curl commands (bodies verbatim but for
// ports and node addresses), the mysql client's failure on a port whose
// filter fails, TLS with openssl s_client, and the upstream SNI.
func TestSeedDocWalkthrough(t *testing.T) {
	curl := needTool(t, "curl", "curl")
	mysql := needTool(t, "mysql", "mariadb-client")
	openssl := needTool(t, "openssl", "openssl")

	n1995, n3306, n5991 := oneShotBackend(t, "node-1995"), oneShotBackend(t, "node-3306"), oneShotBackend(t, "node-5991")
	cert := newTestCert(t, "a.test.com")
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, []byte(cert.CertPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	tlsNode := newTLSBackend(t, "tls-node", newTestCert(t, "upstream.internal"))
	p9100, p9101, p2000, p9102 := freePort(t), freePort(t), freePort(t), freePort(t)
	p := startCaddy(t, caddyConfig{Apisix: map[string]any{
		"stream_proxy": map[string]any{"tcp": []any{
			p9100, hostPort("127.0.0.10", p9101), hostPort("127.0.0.1", p2000),
			map[string]any{"addr": p9102, "tls": true},
		}},
		"ssls": []any{cert.sslObject("doc", "a.test.com")},
	}})
	subst := strings.NewReplacer(
		`"127.0.0.1:1995"`, fmt.Sprintf("%q", n1995),
		`"127.0.0.1:3306"`, fmt.Sprintf("%q", n3306),
		`"127.0.0.1:5991"`, fmt.Sprintf("%q", n5991),
		`"server_port": 2000`, fmt.Sprintf(`"server_port": %d`, p2000),
		`"server_port": 9101`, fmt.Sprintf(`"server_port": %d`, p9101),
	)
	docCurl := func(t *testing.T, body string) {
		t.Helper()
		out, errOut, err := runTool(t, "", curl, "-sS", "-w", "\n%{http_code}",
			fmt.Sprintf("http://%s/apisix/admin/stream_routes/1", p.admin),
			"-H", "X-API-KEY: "+adminKey, "-X", "PUT", "-d", subst.Replace(body))
		if err != nil {
			t.Fatalf("curl: %v\n%s%s", err, out, errOut)
		}
		if !strings.HasSuffix(out, "\n200") && !strings.HasSuffix(out, "\n201") {
			t.Fatalf("curl PUT: %s", out)
		}
	}
	openSSL := func(t *testing.T, port int, sni string) string {
		t.Helper()
		out, errOut, err := runTool(t, "", openssl, "s_client", "-connect", hostPort("127.0.0.1", port),
			"-servername", sni, "-CAfile", caFile, "-verify_return_error", "-quiet")
		if err != nil {
			t.Fatalf("openssl s_client: %v\n%s%s", err, out, errOut)
		}
		return strings.TrimSpace(out)
	}

	t.Run("server_addr and server_port", func(t *testing.T) {
		docCurl(t, `
{
"server_addr": "127.0.0.1",
"server_port": 2000,
"upstream": {
"nodes": {
"127.0.0.1:1995": 1
},
"type": "roundrobin"
}
}`)
		if got := lineTCP(t, "127.0.0.1", hostPort("127.0.0.1", p2000)); got != "node-1995" {
			t.Fatalf("answered by %q, want node-1995", got)
		}
		if got := whoTCP(t, "127.0.0.1", hostPort("127.0.0.1", p9100)); got != "" {
			t.Fatalf("port 9100 answered by %q, want a silent close", got)
		}
	})
	t.Run("mysql example", func(t *testing.T) {
		docCurl(t, `
{
"server_addr": "127.0.0.10",
"server_port": 9101,
"upstream": {
"nodes": {
"127.0.0.1:3306": 1
},
"type": "roundrobin"
}
}`)
		out, errOut, err := runTool(t, "", mysql, "--host=127.0.0.1", fmt.Sprintf("--port=%d", p9100),
			"-u", "root", "-ptoor", "--connect-timeout=5", "-e", "select 1")
		if err == nil {
			t.Fatalf("mysql through a port whose filter fails succeeded:\n%s", out)
		}
		if !strings.Contains(errOut, "ERROR 2013") || !strings.Contains(errOut, "reading initial communication packet") {
			t.Fatalf("mysql error %q, want the document's ERROR 2013 ... reading initial communication packet", errOut)
		}
		if got := lineTCP(t, "127.0.0.1", hostPort("127.0.0.10", p9101)); got != "node-3306" {
			t.Fatalf("127.0.0.10:9101 answered by %q, want node-3306", got)
		}
	})
	t.Run("TLS over TCP", func(t *testing.T) {
		docCurl(t, `
{
"upstream": {
"nodes": {
"127.0.0.1:1995": 1
},
"type": "roundrobin"
}
}`)
		if got := openSSL(t, p9102, "a.test.com"); got != "node-1995" {
			t.Fatalf("openssl s_client read %q, want node-1995", got)
		}
	})
	t.Run("route by SNI", func(t *testing.T) {
		docCurl(t, `
{
"sni": "a.test.com",
"upstream": {
"nodes": {
"127.0.0.1:5991": 1
},
"type": "roundrobin"
}
}`)
		if got := openSSL(t, p9102, "a.test.com"); got != "node-5991" {
			t.Fatalf("openssl s_client read %q, want node-5991", got)
		}
	})
	t.Run("TLS upstream", func(t *testing.T) {
		docCurl(t, strings.ReplaceAll(`
{
"upstream": {
"scheme": "tls",
"nodes": {
"127.0.0.1:1995": 1
},
"type": "roundrobin"
}
}`, `"127.0.0.1:1995"`, fmt.Sprintf("%q", tlsNode)))
		if got := whoTCP(t, "127.0.0.1", hostPort("127.0.0.1", p2000)); got != "tls-node sni=apisix_backend" {
			t.Fatalf("plain client: %q, want the dummy SNI apisix_backend", got)
		}
		if got := whoTLS(t, "127.0.0.1", hostPort("127.0.0.1", p9102), "a.test.com", cert.Pool); got != "tls-node sni=a.test.com" {
			t.Fatalf("TLS client: %q, want its SNI passed through", got)
		}
	})
}
