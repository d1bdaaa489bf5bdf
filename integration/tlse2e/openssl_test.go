//go:build linux

package tlse2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// openssl returns the openssl binary. Without it the test is skipped,
// except in CI (CI=true), where scripts/test.sh installs it and its
// absence is a failure.
func openssl(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("openssl not found (CI=true): %v", err)
		}
		t.Skipf("openssl not found: %v", err)
	}
	return p
}

// sClient runs openssl s_client against port with args, sending "ping"
// and waiting for the server to close. It returns stdout and stderr
// together.
func sClient(t *testing.T, bin string, port int, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args = append([]string{"s_client", "-connect", addr(port), "-ign_eof"}, args...)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = strings.NewReader("ping\n")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	_ = cmd.Run() // the exit status varies with the failure; the output tells
	if ctx.Err() != nil {
		t.Fatalf("openssl %v did not finish in 30s:\n%s", args, out.String())
	}
	return out.String()
}

// TestOpenSSLClient drives the TLS listener with openssl s_client: the
// certificate chosen by -servername, the echoed data, and mTLS with
// -cert/-key accepted or, without them, refused.
func TestOpenSSLClient(t *testing.T) {
	bin := openssl(t)
	cs := newCertSet(t)
	clientCA := e2e.NewCA(t, "client CA")
	good := e2e.NewLeaf(t, "good client", clientCA)
	dir := t.TempDir()
	certPath, keyPath := good.Files(t, dir, "client")
	port := freePorts(t, 1)[0]
	mtls := e2e.NewLeaf(t, "mtls", e2e.NewCA(t, "server CA"), "m.test.com")
	mssl := sslObj("m", mtls, "m.test.com")
	mssl["client"] = obj{"ca": clientCA.CertPEM}
	startCaddy(t, obj{
		"stream_proxy":  obj{"tcp": list(tcpEntry(port, "tls"))},
		"ssls":          list(sslObj("exact", cs.exact, "a.test.com"), sslObj("wild", cs.wild, "*.test.com"), mssl),
		"stream_routes": list(obj{"id": "1", "upstream": upstream(lineServer(t, "up"), nil)}),
	}, true)

	tests := []struct {
		name    string
		args    []string
		want    []string
		notWant string
	}{
		{"exact", []string{"-servername", "a.test.com"}, []string{"subject=O = e2e, CN = exact", "up:ping"}, ""},
		{"wildcard", []string{"-servername", "b.test.com"}, []string{"subject=O = e2e, CN = wild", "up:ping"}, ""},
		{"TLS 1.2", []string{"-servername", "a.test.com", "-tls1_2"}, []string{"subject=O = e2e, CN = exact", "Protocol  : TLSv1.2", "up:ping"}, ""},
		{"unknown SNI", []string{"-servername", "unknown.org"}, []string{"no peer certificate available", "alert"}, "up:ping"},
		{"mTLS with -cert/-key", []string{"-servername", "m.test.com", "-cert", certPath, "-key", keyPath},
			[]string{"subject=O = e2e, CN = mtls", "up:ping"}, ""},
		{"mTLS without a certificate", []string{"-servername", "m.test.com"}, []string{"subject=O = e2e, CN = mtls", "alert certificate required"}, "up:ping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := sClient(t, bin, port, tt.args...)
			mustContain(t, out, tt.want...)
			if tt.notWant != "" && strings.Contains(out, tt.notWant) {
				t.Fatalf("unexpected %q in:\n%s", tt.notWant, out)
			}
		})
	}
}
