//go:build linux

package e2e

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestEnv(t *testing.T) {
	t.Setenv("HOME", "/root-of-user")
	t.Setenv("E2E_KEEP", "kept")
	env := Env("/tmp/x", "CURL_HOME=/tmp/x", "E2E_KEEP=replaced")
	count := func(key string) int {
		n := 0
		for _, kv := range env {
			if strings.HasPrefix(kv, key+"=") {
				n++
			}
		}
		return n
	}
	for _, tc := range []struct{ key, want string }{
		{"HOME", "/tmp/x"},
		{"XDG_DATA_HOME", "/tmp/x/data"},
		{"XDG_CONFIG_HOME", "/tmp/x/config"},
		{"XDG_CACHE_HOME", "/tmp/x/cache"},
		{"CURL_HOME", "/tmp/x"},
		{"E2E_KEEP", "replaced"},
	} {
		if !slices.Contains(env, tc.key+"="+tc.want) || count(tc.key) != 1 {
			t.Errorf("%s: want exactly %s=%s in %q", tc.key, tc.key, tc.want, env)
		}
	}
}

func TestFreePorts(t *testing.T) {
	ports := FreePorts(t, 5)
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || seen[p] {
			t.Fatalf("ports %v: want 5 distinct positive ports", ports)
		}
		seen[p] = true
		ln, err := net.Listen("tcp", HostPort("127.0.0.1", p))
		if err != nil {
			t.Fatalf("port %d is not free: %v", p, err)
		}
		ln.Close()
	}
}

func TestServeTCP(t *testing.T) {
	addr := ServeTCP(t, func(c net.Conn) {
		line, _ := bufio.NewReader(c).ReadString('\n')
		_, _ = io.WriteString(c, "echo:"+line)
	})
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "hi\n"); err != nil {
		t.Fatal(err)
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || got != "echo:hi\n" {
		t.Fatalf("got %q %v, want echo:hi", got, err)
	}
}

func TestCerts(t *testing.T) {
	self := NewCert(t, "a.test", "b.test")
	root := NewCA(t, "root")
	inter := NewSubCA(t, "inter", root)
	leaf := NewLeaf(t, "leaf", inter, "c.test")
	interPool := x509.NewCertPool()
	interPool.AddCert(inter.Cert)
	for _, tc := range []struct {
		name  string
		cert  *Cert
		host  string
		roots *x509.CertPool
		inter *x509.CertPool
		ok    bool
	}{
		{"self-signed, first name", self, "a.test", self.Pool(), nil, true},
		{"self-signed, second name", self, "b.test", self.Pool(), nil, true},
		{"self-signed, other name", self, "c.test", self.Pool(), nil, false},
		{"leaf through its intermediate", leaf, "c.test", root.Pool(), interPool, true},
		{"leaf without its intermediate", leaf, "c.test", root.Pool(), nil, false},
		{"leaf against another root", leaf, "c.test", self.Pool(), interPool, false},
	} {
		_, err := tc.cert.Cert.Verify(x509.VerifyOptions{DNSName: tc.host, Roots: tc.roots, Intermediates: tc.inter})
		if (err == nil) != tc.ok {
			t.Errorf("%s: verify error %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	if _, err := tls.X509KeyPair([]byte(leaf.CertPEM), []byte(leaf.KeyPEM)); err != nil {
		t.Errorf("PEM pair: %v", err)
	}
	if pair := leaf.TLS(); pair.Leaf != leaf.Cert || pair.PrivateKey != leaf.Key {
		t.Errorf("TLS() does not carry the certificate and key")
	}
	crt, key := leaf.Files(t, t.TempDir(), "leaf")
	if _, err := tls.LoadX509KeyPair(crt, key); err != nil {
		t.Errorf("Files: %v", err)
	}
}

func TestProc(t *testing.T) {
	for _, tc := range []struct {
		name  string
		group bool
	}{{"single process", false}, {"process group", true}} {
		t.Run(tc.name, func(t *testing.T) {
			p := Start(t, "sleep", exec.Command("sh", "-c", "echo started; exec sleep 60"), Options{StopWait: 5 * time.Second, Group: tc.group, CleanExit: false})
			p.WaitReady(10*time.Second, func() error {
				if !strings.Contains(p.Output(), "started") {
					return io.ErrNoProgress
				}
				return nil
			})
			if p.Exited() || p.PID() <= 0 {
				t.Fatalf("process not running (pid %d)", p.PID())
			}
			p.Stop()
			select {
			case <-p.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("Done not closed after Stop")
			}
			if !p.Exited() {
				t.Fatal("Exited is false after Stop")
			}
		})
	}
	t.Run("Kill", func(t *testing.T) {
		p := Start(t, "sleep", exec.Command("sleep", "60"), Options{})
		p.Kill()
		if !p.Exited() || p.Cmd.ProcessState.ExitCode() != -1 {
			t.Fatalf("after Kill: exited %v, state %v", p.Exited(), p.Cmd.ProcessState)
		}
	})
}
