//go:build linux

package clustere2e

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

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// etcdBin finds the etcd server, skipping (or failing with CI=true) when
// it is not installed.
func etcdBin(t testing.TB) string {
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

// member is one etcd server process.
type member struct {
	name       string
	client     string // http(s)://127.0.0.1:port
	peer       string
	dataDir    string
	extraFlags []string
	proc       *e2e.Proc
}

// cluster is a set of etcd members started together.
type cluster struct {
	t       testing.TB
	bin     string
	members []*member
	scheme  string
}

// startEtcd starts an n-member cluster on free ports. flags are added to
// every member (TLS, auth).
func startEtcd(t testing.TB, n int, scheme string, flags ...string) *cluster {
	t.Helper()
	c := newEtcd(t, n, scheme, flags...)
	c.startAll()
	c.waitHealthy()
	return c
}

// newEtcd allocates an n-member cluster without starting it.
func newEtcd(t testing.TB, n int, scheme string, flags ...string) *cluster {
	t.Helper()
	c := &cluster{t: t, bin: etcdBin(t), scheme: scheme}
	dir := t.TempDir()
	ports := e2e.FreePorts(t, 2*n)
	var initial []string
	for i := range n {
		m := &member{
			name:       fmt.Sprintf("m%d", i),
			client:     fmt.Sprintf("%s://127.0.0.1:%d", scheme, ports[2*i]),
			peer:       fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
			dataDir:    filepath.Join(dir, fmt.Sprintf("m%d", i)),
			extraFlags: flags,
		}
		initial = append(initial, m.name+"="+m.peer)
		c.members = append(c.members, m)
	}
	for _, m := range c.members {
		m.extraFlags = append(slices.Clone(m.extraFlags), "--initial-cluster", strings.Join(initial, ","))
	}
	return c
}

// startAll starts every member.
func (c *cluster) startAll() {
	for _, m := range c.members {
		c.start(m)
	}
}

func (c *cluster) start(m *member) {
	args := []string{
		"--name", m.name, "--data-dir", m.dataDir,
		"--listen-client-urls", m.client, "--advertise-client-urls", m.client,
		"--listen-peer-urls", m.peer, "--initial-advertise-peer-urls", m.peer,
		"--initial-cluster-state", "new", "--initial-cluster-token", "clustere2e",
		"--heartbeat-interval", "50", "--election-timeout", "500",
		"--log-level", "warn", "--logger", "zap",
	}
	args = append(args, m.extraFlags...)
	cmd := exec.Command(c.bin, args...)
	cmd.Env = append(os.Environ(), "ETCD_UNSUPPORTED_ARCH=")
	m.proc = e2e.Start(c.t, "etcd "+m.name, cmd, e2e.Options{StopWait: 5 * time.Second})
}

// hosts are the client URLs.
func (c *cluster) hosts() []string {
	var out []string
	for _, m := range c.members {
		out = append(out, m.client)
	}
	return out
}

// client is a raw etcd client for the test (what an APISIX node writes).
func (c *cluster) client(opts ...func(*clientv3.Config)) *clientv3.Client {
	c.t.Helper()
	cfg := clientv3.Config{Endpoints: c.hosts(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()}
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

// waitHealthy waits until a write succeeds.
func (c *cluster) waitHealthy(opts ...func(*clientv3.Config)) {
	c.t.Helper()
	cli := c.client(opts...)
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cli.Put(ctx, "/clustere2e-health", "1")
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			for _, m := range c.members {
				c.t.Logf("%s output:\n%s", m.name, m.proc.Output())
			}
			c.t.Fatalf("etcd not healthy: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop stops member i (SIGTERM, then SIGKILL).
func (c *cluster) stop(i int) { c.members[i].proc.Stop() }

// restart starts member i again on the same data (or wiped data when wipe
// is set, which is a new single-member cluster).
func (c *cluster) restart(i int, wipe bool) {
	m := c.members[i]
	if wipe {
		if err := os.RemoveAll(m.dataDir); err != nil {
			c.t.Fatal(err)
		}
	}
	c.start(m)
}

// clientConfig is the raw client's config, for client options.
type clientConfig = clientv3.Config
