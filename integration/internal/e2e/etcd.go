//go:build linux

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// EtcdBin finds the etcd server, skipping (or failing with CI=true) when
// it is not installed.
func EtcdBin(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("etcd")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("etcd not found: install the etcd-server package (scripts/test.sh does)")
		}
		t.Skip("etcd not found: install the etcd-server package (scripts/test.sh does)")
	}
	return p
}

// EtcdMember is one etcd server process.
type EtcdMember struct {
	Name       string
	ClientURL  string // http(s)://127.0.0.1:port
	Peer       string
	DataDir    string
	extraFlags []string
	Proc       *Proc
}

// Etcd is a set of etcd members started together.
type Etcd struct {
	t       testing.TB
	bin     string
	Members []*EtcdMember
	scheme  string
}

// StartEtcd starts an n-member cluster on free ports. flags are added to
// every member (TLS, auth).
func StartEtcd(t testing.TB, n int, scheme string, flags ...string) *Etcd {
	t.Helper()
	c := NewEtcd(t, n, scheme, flags...)
	c.StartAll()
	c.WaitHealthy()
	return c
}

// NewEtcd allocates an n-member cluster without starting it.
func NewEtcd(t testing.TB, n int, scheme string, flags ...string) *Etcd {
	t.Helper()
	c := &Etcd{t: t, bin: EtcdBin(t), scheme: scheme}
	dir := t.TempDir()
	ports := FreePorts(t, 2*n)
	var initial []string
	for i := range n {
		m := &EtcdMember{
			Name:       fmt.Sprintf("m%d", i),
			ClientURL:  fmt.Sprintf("%s://127.0.0.1:%d", scheme, ports[2*i]),
			Peer:       fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
			DataDir:    filepath.Join(dir, fmt.Sprintf("m%d", i)),
			extraFlags: flags,
		}
		initial = append(initial, m.Name+"="+m.Peer)
		c.Members = append(c.Members, m)
	}
	for _, m := range c.Members {
		m.extraFlags = append(slices.Clone(m.extraFlags), "--initial-cluster", strings.Join(initial, ","))
	}
	return c
}

// StartAll starts every member.
func (c *Etcd) StartAll() {
	for _, m := range c.Members {
		c.Start(m)
	}
}

// Start starts member m.
func (c *Etcd) Start(m *EtcdMember) {
	args := []string{
		"--name", m.Name, "--data-dir", m.DataDir,
		"--listen-client-urls", m.ClientURL, "--advertise-client-urls", m.ClientURL,
		"--listen-peer-urls", m.Peer, "--initial-advertise-peer-urls", m.Peer,
		"--initial-cluster-state", "new", "--initial-cluster-token", "e2e",
		"--heartbeat-interval", "50", "--election-timeout", "500",
		"--log-level", "warn", "--logger", "zap",
	}
	args = append(args, m.extraFlags...)
	cmd := exec.Command(c.bin, args...)
	cmd.Env = append(os.Environ(), "ETCD_UNSUPPORTED_ARCH=")
	m.Proc = Start(c.t, "etcd "+m.Name, cmd, Options{StopWait: 5 * time.Second})
}

// Hosts are the client URLs.
func (c *Etcd) Hosts() []string {
	var out []string
	for _, m := range c.Members {
		out = append(out, m.ClientURL)
	}
	return out
}

// Client is a raw etcd client for the test (what an APISIX node writes).
func (c *Etcd) Client(opts ...func(*clientv3.Config)) *clientv3.Client {
	c.t.Helper()
	cfg := clientv3.Config{Endpoints: c.Hosts(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()}
	for _, o := range opts {
		o(&cfg)
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// WaitHealthy waits until a write succeeds.
func (c *Etcd) WaitHealthy(opts ...func(*clientv3.Config)) {
	c.t.Helper()
	cli := c.Client(opts...)
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cli.Put(ctx, "/e2e-health", "1")
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			for _, m := range c.Members {
				c.t.Logf("%s output:\n%s", m.Name, m.Proc.Output())
			}
			c.t.Fatalf("etcd not healthy: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops member i (SIGTERM, then SIGKILL).
func (c *Etcd) Stop(i int) { c.Members[i].Proc.Stop() }

// Kill kills member i with SIGKILL.
func (c *Etcd) Kill(i int) { c.Members[i].Proc.Kill() }

// Restart starts member i again on the same data (or wiped data when wipe
// is set, which is a new single-member cluster).
func (c *Etcd) Restart(i int, wipe bool) {
	m := c.Members[i]
	if wipe {
		if err := os.RemoveAll(m.DataDir); err != nil {
			c.t.Fatal(err)
		}
	}
	c.Start(m)
}
